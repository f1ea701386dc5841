//! [`Lines`]: encoded lines in units that must travel together (a line, or
//! a negative gauge's pair), each counter line with the baseline to commit
//! once it is delivered; and their packing into datagrams.

use crate::registry::SeriesId;
use std::ops::Range;

/// Encoded lines in units that must travel together, each with the
/// baseline to commit once it is delivered.
#[derive(Debug, Default)]
pub(super) struct Lines {
    /// Every unit's text, one after the other.
    pub(super) text: String,
    /// Baseline keys of the commits, one after the other.
    pub(super) keys: String,
    pub(super) units: Vec<Unit>,
}

#[derive(Debug)]
pub(super) struct Unit {
    pub(super) text: Range<usize>,
    /// Counter key range in `keys`, the value to commit, and the series.
    pub(super) commit: Option<(Range<usize>, u64, Option<SeriesId>)>,
}

impl Lines {
    pub(super) fn clear(&mut self) {
        self.text.clear();
        self.keys.clear();
        self.units.clear();
    }

    pub(super) fn text(&self, unit: usize) -> &str {
        &self.text[self.units[unit].text.clone()]
    }

    /// The baseline `unit` moves once delivered: its key, the value sent
    /// and the series; `None` for lines that are not counters.
    pub(super) fn commit(&self, unit: usize) -> Option<(&str, u64, Option<&SeriesId>)> {
        let (key, value, series) = self.units[unit].commit.as_ref()?;
        Some((&self.keys[key.clone()], *value, series.as_ref()))
    }

    /// Ends a unit: the text written since `start`, with no baseline.
    pub(super) fn push(&mut self, start: usize) {
        self.units.push(Unit {
            text: start..self.text.len(),
            commit: None,
        });
    }

    /// Ends a counter's unit: the text written since `start`, and the
    /// baseline to commit (its key is `keys[key..]`).
    pub(super) fn push_counter(
        &mut self,
        start: usize,
        key: usize,
        value: u64,
        series: Option<SeriesId>,
    ) {
        self.units.push(Unit {
            text: start..self.text.len(),
            commit: Some((key..self.keys.len(), value, series)),
        });
    }

    /// Packs units into datagrams of at most `max` bytes, joined by `\n`;
    /// calls `send` with each datagram and its unit range.
    pub(super) fn pack(
        &self,
        max: usize,
        datagram: &mut String,
        mut send: impl FnMut(&str, Range<usize>),
    ) {
        let mut first = 0;
        datagram.clear();
        for unit in 0..self.units.len() {
            let text = self.text(unit);
            if !datagram.is_empty() && datagram.len() + 1 + text.len() > max {
                send(datagram, first..unit);
                datagram.clear();
                first = unit;
            }
            if !datagram.is_empty() {
                datagram.push('\n');
            }
            datagram.push_str(text);
        }
        if !datagram.is_empty() {
            send(datagram, first..self.units.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Lines {
        let mut l = Lines::default();
        for t in texts {
            let start = l.text.len();
            l.text.push_str(t);
            l.push(start);
        }
        l
    }

    fn packed(l: &Lines, max: usize) -> Vec<(String, Range<usize>)> {
        let mut out = Vec::new();
        l.pack(max, &mut String::new(), |d, r| out.push((d.to_string(), r)));
        out
    }

    #[test]
    fn packing_fills_datagrams_without_splitting_lines() {
        let l = lines(&["aaaa", "bbbb", "cc", "dddddddddddd", "e"]);
        assert_eq!(
            packed(&l, 9),
            vec![
                ("aaaa\nbbbb".to_string(), 0..2),
                ("cc".to_string(), 2..3),
                ("dddddddddddd".to_string(), 3..4),
                ("e".to_string(), 4..5),
            ]
        );
        assert_eq!(packed(&l, 1).len(), 5);
        assert_eq!(packed(&l, 1000).len(), 1);
        assert!(packed(&lines(&[]), 10).is_empty());
    }
}
