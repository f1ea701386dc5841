//! Encoders: formatting lives here, walking the registry's collection;
//! metrics never format themselves.

pub(crate) mod prometheus;
