//! [`Deltas`]: the state a StatsD sink keeps between encodings. Per counter
//! series, the value last delivered (the baseline its next delta is taken
//! from), found by a key of the series' name and label values and checked
//! against the series' identity ([`SeriesId`]).

use super::lines::Lines;
use crate::registry::SeriesId;
use std::collections::HashMap;

/// Per counter series, the value last delivered: the baselines of
/// delta encoding. Series no longer in the registry are forgotten at the
/// next encoding. Also lends [`encode`](fn@super::encode) its line
/// buffers, so that a warm encode allocates nothing.
///
/// ```
/// let deltas = metricz::export::statsd::Deltas::new();
/// assert!(deltas.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Deltas {
    baselines: HashMap<Box<str>, Baseline>,
    generation: u64,
    /// The buffers of [`encode`](fn@super::encode), reused between its calls
    /// (empty between them).
    pub(super) lines: Lines,
}

#[derive(Debug)]
struct Baseline {
    value: u64,
    /// The last encoding that saw the series.
    seen: u64,
    /// Which series the baseline belongs to (kept, so the identity cannot
    /// be reused): a series removed and created again under the same
    /// labels is a new series whose whole value is new, even when it has
    /// already grown past the old baseline. `None` for a family's overflow
    /// series and the overflow report, whose key alone identifies them.
    series: Option<SeriesId>,
}

impl Deltas {
    /// No baselines: the first encoding sends every counter's whole value.
    ///
    /// ```
    /// let deltas = metricz::export::statsd::Deltas::new();
    /// assert_eq!(deltas.len(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of counter series with a baseline.
    ///
    /// ```
    /// let reg = metricz::Registry::new();
    /// reg.counter("a_total", "A.")?.inc();
    /// let mut deltas = metricz::export::statsd::Deltas::new();
    /// let mut buf = String::new();
    /// metricz::export::statsd::encode(&reg, &Default::default(), &mut deltas, &mut buf);
    /// assert_eq!(deltas.len(), 1);
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.baselines.len()
    }

    /// Whether there is no baseline.
    ///
    /// ```
    /// assert!(metricz::export::statsd::Deltas::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }

    /// Starts an encoding: the series it sees are the ones kept by
    /// [`prune`](Self::prune).
    pub(super) fn begin(&mut self) {
        self.generation += 1;
    }

    /// The baseline of the series with `key` and identity `series` (0 if
    /// there is none, or it belongs to another series); marks it seen.
    pub(super) fn baseline(&mut self, key: &str, series: Option<&SeriesId>) -> u64 {
        match self.baselines.get_mut(key) {
            Some(b) => {
                b.seen = self.generation;
                if b.series.as_ref() == series {
                    b.value
                } else {
                    0
                }
            }
            None => 0,
        }
    }

    /// Moves the baseline of `unit` of `lines` (if it is a counter's) to
    /// the value it sent.
    pub(super) fn commit(&mut self, lines: &Lines, unit: usize) {
        let Some((key, value, series)) = lines.commit(unit) else {
            return;
        };
        match self.baselines.get_mut(key) {
            Some(b) => {
                b.value = value;
                b.series = series.cloned();
            }
            None => {
                self.baselines.insert(
                    key.into(),
                    Baseline {
                        value,
                        seen: self.generation,
                        series: series.cloned(),
                    },
                );
            }
        }
    }

    /// Forgets the series the last encoding did not see.
    pub(super) fn prune(&mut self) {
        let generation = self.generation;
        self.baselines.retain(|_, b| b.seen == generation);
    }
}

/// Appends the key of a counter series in [`Deltas`] to `key`: the name,
/// then each label value with its length (unambiguous for any values), or
/// a mark for a family's overflow series (`values` is `None`).
pub(super) fn push_series_key<'a>(
    key: &mut String,
    name: &str,
    values: Option<impl Iterator<Item = &'a str>>,
) {
    key.push_str(name);
    match values {
        Some(values) => {
            for value in values {
                key.push('\0');
                key.push_str(itoa::Buffer::new().format(value.len()));
                key.push(':');
                key.push_str(value);
            }
        }
        None => key.push_str("\0overflow"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_are_unambiguous() {
        let (mut a, mut b) = (String::new(), String::new());
        push_series_key(&mut a, "n", Some(["a\0", "b"].into_iter()));
        push_series_key(&mut b, "n", Some(["a", "\0b"].into_iter()));
        assert_ne!(a, b);
        let mut c = String::new();
        push_series_key(&mut c, "n", None::<std::iter::Empty<&str>>);
        assert_eq!(c, "n\0overflow");
    }
}
