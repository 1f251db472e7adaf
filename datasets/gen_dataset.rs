//! `gen-dataset`: generates reproducible test datasets (see datasets/README.md).

fn main() {
    eprintln!("gen-dataset: not implemented yet");
    std::process::exit(2);
}
