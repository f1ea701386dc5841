//! The collection walk: the one read-only path every exporter reads a
//! [`Registry`](super::Registry) through.
//!
//! [`Registry::collect`](super::Registry::collect) calls its closure with each family in name order
//! as a [`FamilyView`] (name, help, unit, kind, label names, export
//! settings); [`FamilyView::for_each_series`] then calls its closure with
//! each series in label-value order as a [`SeriesView`] (labels, and a
//! [`Value`]). After the registered families, when any family routed
//! lookups to its overflow series, the walk shows one more counter family,
//! `metricz_cardinality_overflow_total`, with a series per such family
//! (label `family`): the registry's own report of its bounds, so every
//! format exports it the same way.
//!
//! The walk never blocks recording: it reads metrics while they are
//! written. Registration waits only for a copy of the family handles. Once
//! warm (the registry keeps the family list and the bucket buffers between
//! walks, and each family its sorted series list) a walk of an unchanged
//! registry allocates nothing, unless a closure does (a histogram
//! [`Snapshot`] allocates; bucket counts do not).
//!
//! Values are what the metrics hold, derived but not formatted: a counter's
//! count, a gauge's value, and for histograms and timers a
//! [`Distribution`] that derives cumulative bucket counts at the family's
//! export bounds and converts recorded integers to the family's base unit
//! (timers record nanoseconds and export seconds). Formatting is the
//! encoders' business (`metricz::export`).
//!
//! ```
//! use metricz::registry::Value;
//!
//! let reg = metricz::Registry::new();
//! let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
//! jobs.with(&["mail"])?.add(3);
//! jobs.with(&["sms"])?.inc();
//! reg.gauge("load", "Load.")?.set(0.5);
//!
//! let mut lines = Vec::new();
//! reg.collect(|family| {
//!     let name = family.name().to_string();
//!     family.for_each_series(|mut series| {
//!         let labels: Vec<String> = series.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
//!         let value = match series.value() {
//!             Value::Counter(n) => n.to_string(),
//!             Value::Gauge(x) => x.to_string(),
//!             Value::Distribution(d) => d.histogram().count().to_string(),
//!         };
//!         lines.push(format!("{name}{labels:?} {value}"));
//!         Ok::<(), std::convert::Infallible>(())
//!     })
//! })
//! .unwrap();
//! assert_eq!(lines, [
//!     r#"jobs_total["queue=mail"] 3"#,
//!     r#"jobs_total["queue=sms"] 1"#,
//!     r#"load[] 0.5"#,
//! ]);
//! # Ok::<(), metricz::RegistryError>(())
//! ```

use super::buckets::{scaled, Buckets, ExportOptions, NativeSettings};
use super::error::{MetricKind, OVERFLOW_LABEL};
use super::family::{Family, Metric, SortedList};
use super::stored::AnyFamily;
use crate::counter::arena::Arena;
use crate::primitive::Arc;
use crate::{Counter, Histogram, Snapshot};
use std::fmt;

/// The name of the family that reports overflowed lookups.
pub const OVERFLOW_FAMILY: &str = "metricz_cardinality_overflow_total";
const OVERFLOW_HELP: &str = "Lookups of new label values routed to a family's overflow series.";
const OVERFLOW_FAMILY_LABEL: &str = "family";

/// Buffers a walk reuses: the family list, bucket thresholds and counts,
/// and the counter families' series lists with their arena's row sums.
#[derive(Default)]
pub(crate) struct Scratch {
    families: Vec<AnyFamily>,
    buckets: Buckets,
    /// The sorted series list of each counter family of `families`, in
    /// order, taken before the arena's rows are summed.
    counters: Vec<Arc<SortedList<Counter>>>,
    /// The registry arena's row sums ([`Arena::sum_rows`]).
    totals: Vec<u64>,
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("families", &self.families.len())
            .field("totals", &self.totals.len())
            .finish_non_exhaustive()
    }
}

impl Scratch {
    /// The list a walk's families are copied into (sorted by name).
    pub(super) fn families(&mut self) -> &mut Vec<AnyFamily> {
        &mut self.families
    }
}

/// How a walk reads one counter family: its series list, and the row sums
/// of the registry's arena.
#[derive(Clone, Copy)]
struct CounterRead<'a> {
    list: &'a SortedList<Counter>,
    arena: &'a Arena,
    totals: &'a [u64],
}

/// Walks the families copied into `scratch` (see [`Scratch::families`]),
/// then the overflow report; drops the copied handles after, so a family
/// removed meanwhile is not kept alive by the scratch.
///
/// Counter values stream: the counter families' series lists are taken
/// first, then `arena`'s rows are summed once, page by page, into
/// per-slot totals ([`Arena::sum_rows`]), and each series reads its total
/// ([`Counter::get_summed`]) instead of gathering one word from each of
/// the arena's rows. The lists are taken before the sums so that every
/// listed counter held its slot when the rows were read: a slot leased
/// after the sums could still show its previous holder's count there.
pub(super) fn walk<E>(
    scratch: &mut Scratch,
    arena: &Arena,
    mut f: impl FnMut(&mut FamilyView<'_>) -> Result<(), E>,
) -> Result<(), E> {
    // A walk whose closure panicked left its lists behind (the scratch
    // outlives a poisoned lock): start from none, or each family would be
    // paired with another's list.
    scratch.counters.clear();
    for family in &scratch.families {
        if let AnyFamily::Counter(fam) = family {
            scratch.counters.push(fam.sorted());
        }
    }
    if !scratch.counters.is_empty() {
        arena.sum_rows(&mut scratch.totals);
    }
    let result = walk_families(scratch, arena, &mut f);
    scratch.families.clear();
    scratch.counters.clear();
    result
}

fn walk_families<E>(
    scratch: &mut Scratch,
    arena: &Arena,
    f: &mut impl FnMut(&mut FamilyView<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let Scratch {
        families,
        buckets,
        counters,
        totals,
    } = scratch;
    let mut lists = counters.iter();
    let mut any_overflow = false;
    for family in families.iter() {
        let export = match family {
            AnyFamily::Histogram(fam) => Some(fam.export_options()),
            AnyFamily::Timer(fam) => Some(fam.export_options()),
            _ => None,
        };
        if let Some(export) = &export {
            buckets.prepare(export);
        }
        let counter = match family {
            AnyFamily::Counter(_) => Some(CounterRead {
                list: lists.next().expect("one list per counter family"),
                arena,
                totals,
            }),
            _ => None,
        };
        any_overflow |= family.overflowed() > 0;
        f(&mut FamilyView {
            source: Source::Family(family),
            export,
            counter,
            buckets,
        })?;
    }
    if any_overflow {
        f(&mut FamilyView {
            source: Source::Overflow(families),
            export: None,
            counter: None,
            buckets,
        })?;
    }
    Ok(())
}

/// One family, as a walk shows it; see [`Registry::collect`](super::Registry::collect).
pub struct FamilyView<'a> {
    source: Source<'a>,
    /// Histograms and timers: how they are exported.
    export: Option<ExportOptions>,
    /// Counters: the series list and row sums the walk reads.
    counter: Option<CounterRead<'a>>,
    buckets: &'a mut Buckets,
}

enum Source<'a> {
    Family(&'a AnyFamily),
    /// The overflow report over these families.
    Overflow(&'a [AnyFamily]),
}

impl<'a> FamilyView<'a> {
    /// The family name as registered.
    pub fn name(&self) -> &'a str {
        match self.source {
            Source::Family(f) => f.name(),
            Source::Overflow(_) => OVERFLOW_FAMILY,
        }
    }

    /// The help text as registered (possibly empty).
    pub fn help(&self) -> &'a str {
        match self.source {
            Source::Family(f) => f.help(),
            Source::Overflow(_) => OVERFLOW_HELP,
        }
    }

    /// The family's unit, if one was declared (`seconds` for timers).
    pub fn unit(&self) -> Option<&'a str> {
        match self.source {
            Source::Family(f) => f.unit(),
            Source::Overflow(_) => None,
        }
    }

    /// The kind of metric the family holds.
    pub fn kind(&self) -> MetricKind {
        match self.source {
            Source::Family(f) => f.kind(),
            Source::Overflow(_) => MetricKind::Counter,
        }
    }

    /// The label names, in order (the overflow report's is `family`).
    pub fn label_names(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        let names: &'a [String] = match self.source {
            Source::Family(f) => f.label_names(),
            Source::Overflow(_) => &[],
        };
        let report = matches!(self.source, Source::Overflow(_));
        names
            .iter()
            .map(String::as_str)
            .chain(report.then_some(OVERFLOW_FAMILY_LABEL))
            .collect_exact(names.len() + usize::from(report))
    }

    /// Whether this is the registry's overflow report rather than a
    /// registered family.
    pub fn is_overflow_report(&self) -> bool {
        matches!(self.source, Source::Overflow(_))
    }

    /// Lookups of this family routed to its overflow series (0 for the
    /// overflow report itself).
    pub fn overflowed(&self) -> u64 {
        match self.source {
            Source::Family(f) => f.overflowed(),
            Source::Overflow(_) => 0,
        }
    }

    /// Histograms and timers: whether the family is exported as a summary
    /// (quantiles) rather than buckets; see
    /// [`Family::set_summary`](crate::Family::set_summary).
    pub fn exported_as_summary(&self) -> bool {
        self.export.as_ref().is_some_and(|e| e.summary)
    }

    /// Histograms and timers: the upper bounds of the exported buckets, in
    /// the family's base unit (`+Inf` implied); empty for other kinds.
    pub fn bucket_bounds(&self) -> &[f64] {
        self.export.as_ref().map_or(&[], |e| &e.buckets[..])
    }

    /// Histograms and timers: their native histogram settings; `None` for
    /// other kinds.
    pub fn native(&self) -> Option<NativeSettings> {
        self.export.as_ref().map(|e| e.native)
    }

    /// Calls `f` with each series in label-value order, then the overflow
    /// series if it was used. Stops at the first error `f` returns.
    pub fn for_each_series<E>(
        &mut self,
        mut f: impl FnMut(SeriesView<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let buckets = &mut *self.buckets;
        match self.source {
            Source::Family(AnyFamily::Counter(fam)) => {
                let read = self.counter.expect("set for counters");
                let names = fam.label_names();
                fam.visit(read.list, |values, c| {
                    f(SeriesView {
                        labels: match values {
                            Some(values) => Labels::Series { names, values },
                            None => Labels::Overflow,
                        },
                        value: Value::Counter(c.get_summed(read.arena, read.totals)),
                    })
                })
            }
            Source::Family(AnyFamily::Gauge(fam)) => series(fam, |labels, g| {
                f(SeriesView {
                    labels,
                    value: Value::Gauge(g.get()),
                })
            }),
            Source::Family(AnyFamily::Histogram(fam)) => {
                let export = self.export.as_ref().expect("set for histograms");
                series(fam, |labels, h| {
                    f(SeriesView {
                        labels,
                        value: Value::Distribution(distribution(h, export, buckets)),
                    })
                })
            }
            Source::Family(AnyFamily::Timer(fam)) => {
                let export = self.export.as_ref().expect("set for timers");
                series(fam, |labels, t| {
                    f(SeriesView {
                        labels,
                        value: Value::Distribution(distribution(t.histogram(), export, buckets)),
                    })
                })
            }
            Source::Overflow(families) => {
                for family in families {
                    let count = family.overflowed();
                    if count > 0 {
                        f(SeriesView {
                            labels: Labels::Report(family.name()),
                            value: Value::Counter(count),
                        })?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A family's series in order, each with its labels.
#[inline]
fn series<M: Metric + Clone, E>(
    family: &Family<M>,
    mut f: impl FnMut(Labels<'_>, &M) -> Result<(), E>,
) -> Result<(), E> {
    let names = family.label_names();
    family.try_visit_sorted(|values, m| match values {
        Some(values) => f(Labels::Series { names, values }, m),
        None => f(Labels::Overflow, m),
    })
}

fn distribution<'a>(
    histogram: &'a Histogram,
    export: &'a ExportOptions,
    buckets: &'a mut Buckets,
) -> Distribution<'a> {
    Distribution {
        histogram,
        export,
        buckets,
    }
}

impl fmt::Debug for FamilyView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FamilyView")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// One series, as a walk shows it; see [`FamilyView::for_each_series`].
#[derive(Debug)]
pub struct SeriesView<'a> {
    labels: Labels<'a>,
    value: Value<'a>,
}

/// A series' labels; from [`SeriesView::labels`]. Iterate it for
/// `(name, value)` pairs in the family's label order; a family's overflow
/// series has the one label `metricz_overflow="true"`.
#[derive(Debug, Clone, Copy)]
pub struct LabelSet<'a>(Labels<'a>);

#[derive(Debug, Clone, Copy)]
enum Labels<'a> {
    Series {
        names: &'a [String],
        values: &'a Arc<[Box<str>]>,
    },
    /// A family's overflow series.
    Overflow,
    /// A series of the overflow report: the family it reports on.
    Report(&'a str),
}

impl<'a> LabelSet<'a> {
    /// The `(name, value)` pairs.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + 'a {
        let (names, values, extra): (&'a [String], &'a [Box<str>], _) = match self.0 {
            Labels::Series { names, values } => (names, &values[..], None),
            Labels::Overflow => (&[], &[], Some((OVERFLOW_LABEL, "true"))),
            Labels::Report(family) => (&[], &[], Some((OVERFLOW_FAMILY_LABEL, family))),
        };
        names
            .iter()
            .zip(values.iter())
            .map(|(n, v)| (n.as_str(), &**v))
            .chain(extra)
            .collect_exact(names.len() + usize::from(extra.is_some()))
    }

    /// Calls `f` with each `(name, value)` pair, stopping at the first
    /// error (what [`iter`](Self::iter) yields, as a plain loop).
    #[inline]
    pub fn try_for_each<E>(
        &self,
        mut f: impl FnMut(&'a str, &'a str) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.0 {
            Labels::Series { names, values } => {
                for (n, v) in names.iter().zip(values.iter()) {
                    f(n, v)?;
                }
                Ok(())
            }
            Labels::Overflow => f(OVERFLOW_LABEL, "true"),
            Labels::Report(family) => f(OVERFLOW_FAMILY_LABEL, family),
        }
    }

    /// How many labels.
    pub fn len(&self) -> usize {
        self.iter().len()
    }

    /// Whether there is no label (an unlabelled metric).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> SeriesView<'a> {
    /// The series' labels (a copyable handle: read them before borrowing
    /// the [`value`](Self::value)).
    pub fn labels(&self) -> LabelSet<'a> {
        LabelSet(self.labels)
    }

    /// Whether this is a family's overflow series (the label values of
    /// every lookup past the cardinality limit).
    pub fn is_overflow(&self) -> bool {
        matches!(self.labels, Labels::Overflow)
    }

    /// The series' identity, for exporters that keep state per series
    /// (StatsD's delta baselines): equal for as long as the series lives,
    /// different for a series removed and created again under the same
    /// label values. `None` for overflow series and the overflow report.
    /// The identity is the series', not the metric's: a metric adopted with
    /// [`Registry::register`](super::Registry::register) whose series is
    /// removed and looked up again is the same metric under a new identity
    /// (so a delta exporter sends its whole value again).
    pub fn id(&self) -> Option<SeriesId> {
        match self.labels {
            Labels::Series { values, .. } => Some(SeriesId(Arc::clone(values))),
            _ => None,
        }
    }

    /// The value.
    pub fn value(&mut self) -> Value<'_> {
        match &mut self.value {
            Value::Counter(n) => Value::Counter(*n),
            Value::Gauge(x) => Value::Gauge(*x),
            Value::Distribution(d) => Value::Distribution(d.reborrow()),
        }
    }

    /// The value, consuming the view.
    pub fn into_value(self) -> Value<'a> {
        self.value
    }
}

/// A series' identity; see [`SeriesView::id`]. Keeping one keeps the
/// series' label values alive (not the metric), so an identity is never
/// reused while it is held.
#[derive(Clone)]
pub struct SeriesId(Arc<[Box<str>]>);

impl PartialEq for SeriesId {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SeriesId {}

impl fmt::Debug for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SeriesId").field(&self.0).finish()
    }
}

/// A series' value.
#[derive(Debug)]
pub enum Value<'a> {
    /// A counter's count.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram's or timer's records.
    Distribution(Distribution<'a>),
}

/// A histogram's or timer's records, with the family's export settings: see
/// [`Value::Distribution`].
pub struct Distribution<'a> {
    histogram: &'a Histogram,
    export: &'a ExportOptions,
    buckets: &'a mut Buckets,
}

impl Distribution<'_> {
    fn reborrow(&mut self) -> Distribution<'_> {
        Distribution {
            histogram: self.histogram,
            export: self.export,
            buckets: self.buckets,
        }
    }

    /// The histogram (a timer's holds nanoseconds), for snapshots and
    /// quantiles in recorded units.
    pub fn histogram(&self) -> &Histogram {
        self.histogram
    }

    /// A recorded integer in the family's base unit (nanoseconds to
    /// seconds for timers; see [`Family::set_scale`]).
    pub fn scaled(&self, recorded: u64) -> f64 {
        scaled(recorded, self.export.scale)
    }

    /// The records' count and sum (in the base unit) and the cumulative
    /// count at each export bound ([`FamilyView::bucket_bounds`]), derived
    /// from the HDR counts now. A record counts towards the first bound at
    /// or above the lower edge of its HDR bucket. Allocates nothing.
    pub fn buckets(&mut self) -> BucketCounts<'_> {
        self.buckets_with(|_, _| {})
    }

    /// [`buckets`](Self::buckets), and from the same read of the counts,
    /// `f(high, n)` for every HDR bucket holding records, in ascending
    /// order: `high` is the bucket's highest equivalent value in the base
    /// unit, `n` its count (since the last interval take). The `n` add up
    /// to the returned count, so other bucketings derived in `f` (native
    /// histograms) agree with the classic buckets exactly. Allocates
    /// nothing. `f` runs while the histogram's interval baseline is held:
    /// it must not read or take an interval of the same histogram (a
    /// clone of it included), which would wait for itself.
    ///
    /// ```
    /// use metricz::registry::Value;
    ///
    /// let reg = metricz::Registry::new();
    /// let h = reg.histogram("size_bytes", "Sizes.")?;
    /// h.record(3);
    /// h.record(3);
    /// h.record(1000);
    /// reg.collect(|family| {
    ///     family.for_each_series(|mut series| {
    ///         if let Value::Distribution(mut d) = series.value() {
    ///             let mut seen = Vec::new();
    ///             let buckets = d.buckets_with(|high, n| seen.push((high, n)));
    ///             assert_eq!(buckets.count(), 3);
    ///             assert_eq!(seen, [(3.0, 2), (1000.0, 1)]);
    ///         }
    ///         Ok::<(), std::convert::Infallible>(())
    ///     })
    /// }).unwrap();
    /// # Ok::<(), metricz::RegistryError>(())
    /// ```
    pub fn buckets_with(&mut self, mut f: impl FnMut(f64, u64)) -> BucketCounts<'_> {
        let scale = self.export.scale;
        let buckets = &mut *self.buckets;
        buckets.counts.iter_mut().for_each(|c| *c = 0);
        let (thresholds, counts) = (&buckets.thresholds, &mut buckets.counts);
        let (count, sum) = self.histogram.for_each_bucket(|low, high, n| {
            let k = thresholds.partition_point(|&b| b < low);
            if let Some(bucket) = counts.get_mut(k) {
                *bucket = bucket.wrapping_add(n);
            }
            f(scaled(high, scale), n);
        });
        BucketCounts {
            count,
            sum: scaled(sum, scale),
            bounds: &self.export.buckets,
            counts: &buckets.counts,
        }
    }
}

impl fmt::Debug for Distribution<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Distribution")
            .field("count", &self.histogram.count())
            .field("scale", &self.export.scale)
            .finish_non_exhaustive()
    }
}

/// Counts at a family's export bounds; from [`Distribution::buckets`].
#[derive(Debug)]
pub struct BucketCounts<'a> {
    count: u64,
    sum: f64,
    bounds: &'a [f64],
    counts: &'a [u64],
}

impl<'a> BucketCounts<'a> {
    /// Every record (the `+Inf` bucket).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the records, in the family's base unit.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, records at or below it)` per export bound, ascending;
    /// `+Inf` is not included (its count is [`count`](Self::count)).
    pub fn cumulative(&self) -> impl ExactSizeIterator<Item = (f64, u64)> + 'a {
        let mut total = 0u64;
        self.bounds
            .iter()
            .zip(self.counts)
            .map(move |(&bound, &n)| {
                total = total.wrapping_add(n);
                (bound, total)
            })
            .collect_exact(self.bounds.len())
    }
}

impl Distribution<'_> {
    /// A snapshot of the records (allocates: a merged copy of the counts),
    /// in recorded units; convert with [`scaled`](Self::scaled).
    pub fn snapshot(&self) -> Snapshot {
        self.histogram.snapshot()
    }
}

/// An iterator with a known length (for `ExactSizeIterator` over chains,
/// which std does not give).
trait CollectExact: Iterator + Sized {
    fn collect_exact(self, len: usize) -> Exact<Self> {
        Exact { iter: self, len }
    }
}
impl<I: Iterator> CollectExact for I {}

struct Exact<I> {
    iter: I,
    len: usize,
}

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.iter.next()?;
        self.len -= 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}
impl<I: Iterator> ExactSizeIterator for Exact<I> {}
