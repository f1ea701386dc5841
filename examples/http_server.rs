//! Being written (issue 5): the HTTP endpoint example.
fn main() {}
