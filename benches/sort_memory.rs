//! Criterion benchmarks of the in-memory sort at sizes where criterion's statistics are
//! affordable; `benches/sort_ratios.rs` runs the 10^8-element comparison.
fn main() {}
