//! A registry as line protocol: [`encode`] and [`encode_with_tags`], one
//! point per series of the collection walk ([`Registry::collect`]),
//! including its overflow report (see the [module docs](super)).

use super::line::Point;
use crate::registry::{FamilyView, LabelSet, Registry, Value, OVERFLOW_LABEL};
use crate::Snapshot;
use std::convert::Infallible;

/// Appends the line protocol of every series of `registry` to `buf`, each
/// point stamped `timestamp_ns` (nanoseconds since the Unix epoch). See the
/// [module docs](super) for the mapping. Walks [`Registry::collect`], so,
/// like every collection, runs an idle-eviction pass first when eviction is
/// on ([`Registry::set_idle_eviction`]).
///
/// ```
/// let reg = metricz::Registry::new();
/// reg.counter("jobs_total", "Jobs.")?.add(3);
/// let mut buf = String::new();
/// metricz::export::influx::encode(&reg, 5, &mut buf);
/// assert_eq!(buf, "jobs_total value=3i 5\n");
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn encode(registry: &Registry, timestamp_ns: i64, buf: &mut String) {
    encode_with_tags::<&str, &str>(registry, &[], timestamp_ns, buf);
}

/// [`encode`] with `tags` added to every point (a series' own label of the
/// same key wins).
///
/// ```
/// let reg = metricz::Registry::new();
/// reg.gauge_vec("temp", "Temperature.", &["room"])?.with(&["hall"])?.set(20.5);
/// let mut buf = String::new();
/// metricz::export::influx::encode_with_tags(&reg, &[("host", "web 1"), ("room", "x")], 5, &mut buf);
/// assert_eq!(buf, "temp,host=web\\ 1,room=hall value=20.5 5\n");
/// # Ok::<(), metricz::RegistryError>(())
/// ```
pub fn encode_with_tags<K: AsRef<str>, V: AsRef<str>>(
    registry: &Registry,
    tags: &[(K, V)],
    timestamp_ns: i64,
    buf: &mut String,
) {
    let mut global: Vec<(&str, &str)> =
        tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    global.sort_by(|a, b| a.0.cmp(b.0));
    global.dedup_by(|a, b| a.0 == b.0);
    let result = registry.collect(|family| {
        encode_family(family, &global, Some(timestamp_ns), buf);
        Ok::<(), Infallible>(())
    });
    match result {
        Ok(()) => {}
        Err(never) => match never {},
    }
}

/// The points of one family of the walk (a registered family or the
/// overflow report, which is a counter family like any other here).
fn encode_family(
    family: &mut FamilyView<'_>,
    global: &[(&str, &str)],
    ts: Option<i64>,
    buf: &mut String,
) {
    let name = family.name();
    let plan = TagPlan::new(family.label_names(), global);
    let result = family.for_each_series(|series| {
        let point = plan.point(buf, name, series.labels(), series.is_overflow());
        // A point that fails (a NaN gauge, a non-finite sum) leaves nothing
        // and is left out.
        let _ = match series.into_value() {
            Value::Counter(n) => point
                .integer("value", i64::try_from(n).unwrap_or(i64::MAX))
                .finish(ts),
            Value::Gauge(x) => point.float("value", x).finish(ts),
            Value::Distribution(d) => summary(point, &d.snapshot(), |v| d.scaled(v)).finish(ts),
        };
        Ok::<(), Infallible>(())
    });
    match result {
        Ok(()) => {}
        Err(never) => match never {},
    }
}

/// Histogram fields, recorded values converted to the family's base unit
/// by `scaled` (a timer's nanoseconds to seconds).
fn summary<'a>(point: Point<'a>, s: &Snapshot, scaled: impl Fn(u64) -> f64) -> Point<'a> {
    let count = i64::try_from(s.count()).unwrap_or(i64::MAX);
    let point = point.integer("count", count).float("sum", scaled(s.sum()));
    if s.count() == 0 {
        return point;
    }
    point
        .float("min", scaled(s.min()))
        .float("max", scaled(s.max()))
        .float("p50", scaled(s.value_at_quantile(0.5)))
        .float("p90", scaled(s.value_at_quantile(0.9)))
        .float("p99", scaled(s.value_at_quantile(0.99)))
}

/// Where each tag of a family's points comes from, in key order.
struct TagPlan<'g> {
    /// Label tags: (key as written, label index), merged with the global
    /// tags whose keys no label has.
    tags: Vec<TagSource<'g>>,
    /// The overflow series' tags.
    overflow: Vec<TagSource<'g>>,
}

enum TagSource<'g> {
    Label(String, usize),
    Fixed(&'g str, &'g str),
}

impl<'g> TagSource<'g> {
    fn key(&self) -> &str {
        match self {
            TagSource::Label(k, _) => k,
            TagSource::Fixed(k, _) => k,
        }
    }
}

impl<'g> TagPlan<'g> {
    fn new<'n>(label_names: impl Iterator<Item = &'n str>, global: &[(&'g str, &'g str)]) -> Self {
        let merge = |mut tags: Vec<TagSource<'g>>| {
            for &(k, v) in global {
                if !tags.iter().any(|t| t.key() == k) {
                    tags.push(TagSource::Fixed(k, v));
                }
            }
            tags.sort_by(|a, b| a.key().cmp(b.key()));
            tags
        };
        let labels = label_names
            .enumerate()
            .map(|(i, name)| {
                // InfluxDB 1.x refuses a tag key `time`: `time`, `time_`,
                // `time__`, … each get one more underscore, so the mapping
                // stays one-to-one (a family may have both `time` and
                // `time_`).
                let key = if name.starts_with("time") && name[4..].bytes().all(|b| b == b'_') {
                    format!("{name}_")
                } else {
                    name.to_string()
                };
                TagSource::Label(key, i)
            })
            .collect();
        TagPlan {
            tags: merge(labels),
            overflow: merge(vec![TagSource::Fixed(OVERFLOW_LABEL, "true")]),
        }
    }

    /// A point of `name` with the series' tags; `labels` are in the
    /// family's label order (the walk's order), `overflow` says whether
    /// this is the family's overflow series.
    fn point<'b>(
        &self,
        buf: &'b mut String,
        name: &str,
        labels: LabelSet<'_>,
        overflow: bool,
    ) -> Point<'b> {
        let mut point = Point::new(buf, name);
        let tags = if overflow { &self.overflow } else { &self.tags };
        for tag in tags {
            point = match tag {
                TagSource::Label(key, i) => {
                    point.tag(key, labels.iter().nth(*i).map_or("", |(_, v)| v))
                }
                TagSource::Fixed(key, value) => point.tag(key, value),
            };
        }
        point
    }
}
