//! Empty: this package exists for its test target, `tests/rseq_stress.rs`
//! of the main package, built alone (see `Cargo.toml`).
