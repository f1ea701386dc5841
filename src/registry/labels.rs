//! Label values as a family's lookups take them: string slices, arrays,
//! tuples, and values that are not strings (integers, `bool`, `char`, or
//! anything [`Display`](fmt::Display) through [`display`]), formatted on
//! the stack so that the lookup of an existing series allocates nothing.
//!
//! ```
//! let reg = metricz::Registry::new();
//! let responses = reg.counter_vec("responses_total", "Responses.", &["method", "status"])?;
//! responses.with(&["GET", "200"])?.inc();          // an array of &str
//! responses.with(&("GET", 200))?.inc();            // a tuple: no allocation for 200
//! let method = String::from("GET");
//! responses.with(&[method.as_str(), "200"][..])?.inc(); // a slice
//! assert_eq!(responses.find(&["GET", "200"])?.map(|c| c.get()), Some(3));
//! # Ok::<(), metricz::RegistryError>(())
//! ```

use std::fmt::{self, Write};

/// A label value: anything with a text form. Implemented for `str`,
/// `String`, the integer types, `bool`, `char`, references to them, and
/// [`Display`] (through [`display`]); sealed: any other type goes through
/// [`display`].
pub trait LabelValue: sealed::Value {
    /// The value as text: borrowed when it is text already, formatted into
    /// an inline buffer otherwise (a heap string only for [`display`]
    /// values longer than the buffer).
    fn text(&self) -> Text<'_>;

    /// Whether the value is text already ([`borrowed`](Self::borrowed)
    /// returns it): lookups then take the values as they are.
    #[doc(hidden)]
    const BORROWED: bool = false;

    /// The value's own text when [`BORROWED`](Self::BORROWED).
    #[doc(hidden)]
    #[inline]
    fn borrowed(&self) -> &str {
        ""
    }
}

/// A label value's text; see [`LabelValue::text`].
#[derive(Debug)]
pub struct Text<'a>(Repr<'a>);

#[derive(Debug)]
enum Repr<'a> {
    Borrowed(&'a str),
    Inline(Inline),
    Owned(String),
}

/// Up to 40 bytes of text on the stack: any integer up to 128 bits fits.
#[derive(Debug, Clone, Copy)]
struct Inline {
    buf: [u8; 40],
    len: u8,
}

impl<'a> Text<'a> {
    /// Text borrowed from the value.
    pub fn borrowed(text: &'a str) -> Self {
        Text(Repr::Borrowed(text))
    }

    /// The value formatted with its [`Display`](fmt::Display) impl, on the
    /// stack when it fits in 40 bytes.
    pub fn display(value: &dyn fmt::Display) -> Self {
        let mut inline = Inline {
            buf: [0; 40],
            len: 0,
        };
        if write!(inline, "{value}").is_ok() {
            return Text(Repr::Inline(inline));
        }
        Text(Repr::Owned(value.to_string()))
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Borrowed(s) => s,
            Repr::Inline(i) => {
                // Only `write_str` fills the buffer, with whole `&str`s.
                std::str::from_utf8(&i.buf[..usize::from(i.len)]).unwrap_or_default()
            }
            Repr::Owned(s) => s,
        }
    }
}

impl Write for Inline {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[start..end].copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

/// Text types: passed on as they are.
macro_rules! texts {
    ($($ty:ty)*) => {$(
        impl LabelValue for $ty {
            #[inline]
            fn text(&self) -> Text<'_> {
                Text::borrowed(self)
            }
            const BORROWED: bool = true;
            #[inline]
            fn borrowed(&self) -> &str {
                self
            }
        }
    )*};
}
texts!(str String);

impl<T: LabelValue + ?Sized> LabelValue for &T {
    #[inline]
    fn text(&self) -> Text<'_> {
        (**self).text()
    }
    const BORROWED: bool = T::BORROWED;
    #[inline]
    fn borrowed(&self) -> &str {
        (**self).borrowed()
    }
}

impl LabelValue for bool {
    #[inline]
    fn text(&self) -> Text<'_> {
        Text::borrowed(if *self { "true" } else { "false" })
    }
}

impl LabelValue for char {
    fn text(&self) -> Text<'_> {
        let mut inline = Inline {
            buf: [0; 40],
            len: 0,
        };
        let _ = inline.write_char(*self);
        Text(Repr::Inline(inline))
    }
}

macro_rules! integers {
    ($($ty:ty)*) => {$(
        impl LabelValue for $ty {
            fn text(&self) -> Text<'_> {
                let mut inline = Inline { buf: [0; 40], len: 0 };
                let _ = inline.write_str(itoa::Buffer::new().format(*self));
                Text(Repr::Inline(inline))
            }
        }
    )*};
}
integers!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

/// A label value from anything [`Display`](fmt::Display): formatted on the
/// stack when its text fits in 40 bytes.
///
/// ```
/// use metricz::registry::display;
/// use std::net::Ipv4Addr;
///
/// let reg = metricz::Registry::new();
/// let peers = reg.counter_vec("peer_bytes_total", "Bytes by peer.", &["peer"])?;
/// peers.with(&[display(Ipv4Addr::LOCALHOST)])?.add(512);
/// assert_eq!(peers.find(&["127.0.0.1"])?.map(|c| c.get()), Some(512));
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn display<T: fmt::Display>(value: T) -> Display<T> {
    Display(value)
}

/// A [`Display`](fmt::Display) value as a label value; from [`display`].
#[derive(Debug, Clone, Copy)]
pub struct Display<T>(pub T);

impl<T: fmt::Display> LabelValue for Display<T> {
    fn text(&self) -> Text<'_> {
        Text::display(&self.0)
    }
}

/// A series' label values, one per label name, in order: `[&str]`,
/// `[T; N]`, `[T]` and `Vec<T>` for any [`LabelValue`] `T`, tuples of up to
/// six label values of any types, and `()` for none. Sealed.
pub trait LabelValues: sealed::Values {
    /// How many values.
    fn count(&self) -> usize;

    /// Calls `f` with the values as text (formatted on the stack).
    fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R;
}

impl<T: LabelValue, const N: usize> LabelValues for [T; N] {
    #[inline]
    fn count(&self) -> usize {
        N
    }

    #[inline]
    fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        if T::BORROWED {
            // Text already (decided at compile time): no formatting.
            return f(&self.each_ref().map(LabelValue::borrowed));
        }
        let texts: [Text<'_>; N] = self.each_ref().map(LabelValue::text);
        let strs: [&str; N] = texts.each_ref().map(Text::as_str);
        f(&strs)
    }
}

/// Values of a slice are formatted into a stack array of this many; longer
/// slices of non-text values take a heap list.
const STACK_VALUES: usize = 8;

/// Text values of a slice are passed on from a stack array of this many;
/// longer slices take a heap list.
const STACK_TEXTS: usize = 32;

impl<T: LabelValue> LabelValues for [T] {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        if T::BORROWED && self.len() <= STACK_TEXTS {
            let strs: [&str; STACK_TEXTS] =
                std::array::from_fn(|i| self.get(i).map_or("", LabelValue::borrowed));
            return f(&strs[..self.len()]);
        }
        if self.len() <= STACK_VALUES {
            let texts: [Option<Text<'_>>; STACK_VALUES] =
                std::array::from_fn(|i| self.get(i).map(LabelValue::text));
            let strs: [&str; STACK_VALUES] =
                std::array::from_fn(|i| texts[i].as_ref().map_or("", Text::as_str));
            f(&strs[..self.len()])
        } else {
            let texts: Vec<Text<'_>> = self.iter().map(LabelValue::text).collect();
            let strs: Vec<&str> = texts.iter().map(Text::as_str).collect();
            f(&strs)
        }
    }
}

impl<T: LabelValue> LabelValues for Vec<T> {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }

    #[inline]
    fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        self[..].with_text(f)
    }
}

impl<L: LabelValues + ?Sized> LabelValues for &L {
    #[inline]
    fn count(&self) -> usize {
        (**self).count()
    }

    #[inline]
    fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        (**self).with_text(f)
    }
}

/// No label values: the lookup of an unlabelled family's series
/// (`family.with(&())`).
impl LabelValues for () {
    #[inline]
    fn count(&self) -> usize {
        0
    }

    #[inline]
    fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
        f(&[])
    }
}

macro_rules! tuples {
    ($(($n:expr; $($t:ident $i:tt),+))*) => {$(
        impl<$($t: LabelValue),+> LabelValues for ($($t,)+) {
            #[inline]
            fn count(&self) -> usize {
                $n
            }

            #[inline]
            fn with_text<R>(&self, f: impl FnOnce(&[&str]) -> R) -> R {
                let texts = ($(self.$i.text(),)+);
                f(&[$(texts.$i.as_str()),+])
            }
        }
    )*};
}
tuples! {
    (1; A 0)
    (2; A 0, B 1)
    (3; A 0, B 1, C 2)
    (4; A 0, B 1, C 2, D 3)
    (5; A 0, B 1, C 2, D 3, E 4)
    (6; A 0, B 1, C 2, D 3, E 4, F 5)
}

/// The seals: the label traits are implemented here only, so their hidden
/// contracts (the text fast path, the count matching the values) hold.
mod sealed {
    use super::{Display, LabelValue};
    use std::fmt;

    pub trait Value {}
    impl Value for str {}
    impl Value for String {}
    impl<T: Value + ?Sized> Value for &T {}
    impl Value for bool {}
    impl Value for char {}
    impl<T: fmt::Display> Value for Display<T> {}
    macro_rules! values {
        ($($ty:ty)*) => {$(impl Value for $ty {})*};
    }
    values!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

    pub trait Values {}
    impl<T: LabelValue, const N: usize> Values for [T; N] {}
    impl<T: LabelValue> Values for [T] {}
    impl<T: LabelValue> Values for Vec<T> {}
    impl<L: Values + ?Sized> Values for &L {}
    impl Values for () {}
    impl<A: LabelValue> Values for (A,) {}
    impl<A: LabelValue, B: LabelValue> Values for (A, B) {}
    impl<A: LabelValue, B: LabelValue, C: LabelValue> Values for (A, B, C) {}
    impl<A: LabelValue, B: LabelValue, C: LabelValue, D: LabelValue> Values for (A, B, C, D) {}
    impl<A: LabelValue, B: LabelValue, C: LabelValue, D: LabelValue, E: LabelValue> Values
        for (A, B, C, D, E)
    {
    }
    impl<
            A: LabelValue,
            B: LabelValue,
            C: LabelValue,
            D: LabelValue,
            E: LabelValue,
            F: LabelValue,
        > Values for (A, B, C, D, E, F)
    {
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(values: &impl LabelValues) -> Vec<String> {
        values.with_text(|s| s.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn every_kind_of_value_reads_as_its_text() {
        assert_eq!(texts(&["a", "b"]), ["a", "b"]);
        assert_eq!(
            texts(&("GET", 200u16, true, 'x', -7i64)),
            ["GET", "200", "true", "x", "-7"]
        );
        assert_eq!(texts(&[u128::MAX]), [u128::MAX.to_string()]);
        assert_eq!(texts(&[i128::MIN]), [i128::MIN.to_string()]);
        assert_eq!(texts(&[display(1.5f64)]), ["1.5"]);
        let long = "x".repeat(100);
        assert_eq!(texts(&[display(&long)]), [long]);
        let many: Vec<u32> = (0..20).collect();
        assert_eq!(
            texts(&many),
            (0..20).map(|i| i.to_string()).collect::<Vec<_>>()
        );
        let few: &[u32] = &[1, 2, 3];
        assert_eq!(texts(&few), ["1", "2", "3"]);
        assert_eq!(few.count(), 3);
        assert_eq!(texts(&[display('é')]), ["é"]);
    }
}
