//! outcore's benchmark package: the benches in this folder (`cargo bench -p outcore-bench
//! --bench NAME`) and the peers they compare against. It is a package of its own so that
//! `cargo run` and `cargo test` of the library never compile criterion, voracious or extsort.
