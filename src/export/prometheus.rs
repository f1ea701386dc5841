//! The text encoders' shared pieces under their old path (see [`text`](super::text)).

#[allow(unused_imports)]
pub(crate) use super::text::{escape_label_value, float};
