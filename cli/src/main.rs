//! `outcore`: inspect, summarise, sort, generate and convert `.npy` and raw files of any
//! size, from the shell. Every subcommand has `--help` with an example.
//!
//! Conventions, as in GNU tools: results on stdout, progress bars and messages on stderr
//! (bars only when stderr is a terminal; `--quiet` silences them), `--json` for machine-
//! readable output, human sizes (`512MiB`, `4GiB`). A failure is one line on stderr,
//! `outcore: error: ...`, with exit status 2 for usage errors, 1 for failures and 130 after
//! Ctrl-C; outputs appear under their final name only when complete, and an existing output
//! is refused unless `--force`.
#![warn(clippy::undocumented_unsafe_blocks)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod error;
mod files;
mod interrupt;
mod progress;
mod size;
mod zarr;

use error::CliError;

/// Typed arrays larger than memory: inspect, summarise, sort, generate and convert .npy and
/// raw files.
#[derive(Debug, Parser)]
#[command(name = "outcore", version, propagate_version = true, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    global: Global,
}

/// Options every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Worker threads [default: all cores]
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    /// No progress bars
    #[arg(long, short, global = true)]
    quiet: bool,
}

impl Global {
    /// The progress settings.
    pub fn ui(&self) -> progress::Ui {
        progress::Ui::new(self.quiet)
    }

    /// Threads asked for (`None`: all cores).
    pub fn threads(&self) -> Option<usize> {
        self.threads
    }
}

const AFTER_HELP: &str = "\
Examples:
  outcore gen --dtype f64 --dist normal --size 1GiB --out x.npy
  outcore info x.npy
  outcore stats x.npy --bins 20 --percentiles 1,50,99
  outcore sort x.npy sorted.npy --memory 256MiB --verify
  outcore convert x.npy x32.npy --dtype f32
  outcore convert x.npy x.zarr --chunks 1048576   # Zarr: built with --features zarr
  outcore head sorted.npy -n 5
  outcore demo";

#[derive(Debug, Subcommand)]
enum Command {
    Info(cmd::info::Args),
    Stats(cmd::stats::Args),
    Sort(cmd::sort::Args),
    Gen(cmd::gen::Args),
    Convert(cmd::convert::Args),
    Head(cmd::head::Args),
    Demo(cmd::demo::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    if let Err(e) = setup_threads(&cli.global) {
        return report(e);
    }
    let g = &cli.global;
    let r = match cli.command {
        Command::Info(a) => cmd::info::run(a, g),
        Command::Stats(a) => cmd::stats::run(a, g),
        Command::Sort(a) => cmd::sort::run(a, g),
        Command::Gen(a) => cmd::gen::run(a, g),
        Command::Convert(a) => cmd::convert::run(a, g),
        Command::Head(a) => cmd::head::run(a, g),
        Command::Demo(a) => cmd::demo::run(a, g),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

/// Prints `outcore: error: ...` and returns the error's exit status.
fn report(e: CliError) -> ExitCode {
    eprintln!("outcore: error: {e}");
    ExitCode::from(e.exit_code())
}

/// `--help` and `--version` print as usual; an argument error becomes one line, exit 2.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(if e.exit_code() == 0 { 0 } else { 2 })
        }
        _ => {
            let text = e.render().to_string();
            // The first paragraph, on one line ("... not provided: --key-size <K>").
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = match first.trim_start_matches("error: ") {
                "" => "invalid arguments",
                f => f,
            };
            eprintln!(
                "outcore: error: {first} (see `outcore --help`, or `outcore COMMAND --help`)"
            );
            ExitCode::from(2)
        }
    }
}

/// Sizes rayon's global pool to `--threads`: 0 is refused, and more threads than cores
/// are capped at the core count (extra threads only contend for the same cores).
fn setup_threads(g: &Global) -> error::Result<()> {
    let Some(n) = g.threads else { return Ok(()) };
    if n == 0 {
        return Err(error::usage("--threads must be at least 1"));
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let n = n.min(cores);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| error::fail(format!("cannot start {n} worker threads: {e}")))
}
