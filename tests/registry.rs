//! The registry: registration rules, series lookup, removal, the cardinality
//! limit, concurrent growth and churn with exact totals, and the Prometheus
//! text exposition.

mod support;
use metricz::registry::MetricKind;
use metricz::{Counter, Registry, RegistryError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn expose(reg: &Registry) -> String {
    let mut buf = String::new();
    reg.encode_prometheus(&mut buf).expect("encode");
    buf
}

/// The value of the sample line that starts with exactly `series` (name and
/// labels), if there is one; panics if there are several.
fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    let mut found = text
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
    let first = found.next();
    assert!(found.next().is_none(), "{series} appears twice in\n{text}");
    first
}

/// The sample lines of family `name` (exactly that name, any labels).
fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            !l.starts_with('#')
                && l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

/// Sum of the integer values of every sample line of family `name`.
fn sum_of(text: &str, name: &str) -> u64 {
    lines_of(text, name)
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

// ---------------------------------------------------------------- registration

#[test]
fn same_name_kind_and_labels_is_the_same_family() -> TestResult {
    let reg = Registry::new();
    let a = reg.counter_vec("requests_total", "Requests.", &["method", "status"])?;
    let b = reg.counter_vec("requests_total", "Other help.", &["method", "status"])?;
    a.with(&["GET", "200"])?.add(3);
    b.with(&["GET", "200"])?.add(4);
    assert_eq!(a.with(&["GET", "200"])?.get(), 7);
    assert_eq!(b.with(&["GET", "200"])?.get(), 7);
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    // The first help text stays.
    assert_eq!(b.help(), "Requests.");
    let text = expose(&reg);
    assert_eq!(text.matches("# TYPE requests_total counter").count(), 1);
    assert_eq!(
        sample(&text, "requests_total{method=\"GET\",status=\"200\"}"),
        Some("7")
    );

    // A clone of a family shares too.
    let c = a.clone();
    c.with(&["PUT", "201"])?.inc();
    assert_eq!(b.with(&["PUT", "201"])?.get(), 1);
    assert_eq!(a.len(), 2);

    // Registry clones share the families.
    let reg2 = reg.clone();
    let d = reg2.counter_vec("requests_total", "x", &["method", "status"])?;
    assert_eq!(d.with(&["GET", "200"])?.get(), 7);
    Ok(())
}

#[test]
fn kind_conflicts_are_reported_with_both_kinds() -> TestResult {
    let reg = Registry::new();
    reg.counter_vec("m", "", &["a"])?;
    assert_eq!(
        reg.gauge_vec("m", "", &["a"]).unwrap_err(),
        RegistryError::KindConflict {
            name: "m".into(),
            registered: MetricKind::Counter,
            requested: MetricKind::Gauge,
        }
    );
    reg.histogram("h", "")?;
    assert_eq!(
        reg.timer("h", "").unwrap_err(),
        RegistryError::KindConflict {
            name: "h".into(),
            registered: MetricKind::Histogram,
            requested: MetricKind::Timer,
        }
    );
    reg.timer_vec("t", "", &["op"])?;
    assert_eq!(
        reg.histogram_vec("t", "", &["op"]).unwrap_err(),
        RegistryError::KindConflict {
            name: "t".into(),
            registered: MetricKind::Timer,
            requested: MetricKind::Histogram,
        }
    );
    reg.gauge("g", "")?;
    assert_eq!(
        reg.counter("g", "").unwrap_err(),
        RegistryError::KindConflict {
            name: "g".into(),
            registered: MetricKind::Gauge,
            requested: MetricKind::Counter,
        }
    );
    // The failed registrations changed nothing.
    let text = expose(&reg);
    assert!(text.contains("# TYPE m counter\n"), "{text}");
    assert!(text.contains("# TYPE g gauge\n"), "{text}");
    assert!(!text.contains("# TYPE m gauge"), "{text}");
    Ok(())
}

#[test]
fn label_name_conflicts_are_reported_with_both_sets() -> TestResult {
    let reg = Registry::new();
    reg.counter_vec("m", "", &["a", "b"])?;
    // Other names, other order, fewer, more: all conflicts.
    for requested in [&["a", "c"][..], &["b", "a"], &["a"], &["a", "b", "c"], &[]] {
        assert_eq!(
            reg.counter_vec("m", "", requested).unwrap_err(),
            RegistryError::LabelNamesConflict {
                name: "m".into(),
                registered: vec!["a".into(), "b".into()],
                requested: requested.iter().map(|s| s.to_string()).collect(),
            }
        );
    }
    assert_eq!(
        reg.counter("m", "").unwrap_err(),
        RegistryError::LabelNamesConflict {
            name: "m".into(),
            registered: vec!["a".into(), "b".into()],
            requested: vec![],
        }
    );
    // And the other way round: a plain counter, then labels.
    reg.counter("plain", "")?;
    assert_eq!(
        reg.counter_vec("plain", "", &["x"]).unwrap_err(),
        RegistryError::LabelNamesConflict {
            name: "plain".into(),
            registered: vec![],
            requested: vec!["x".into()],
        }
    );
    // A plain counter is the label-less family.
    let fam = reg.counter_vec("plain", "", &[])?;
    reg.counter("plain", "")?.add(5);
    assert_eq!(fam.with(&())?.get(), 5);
    Ok(())
}

#[test]
fn names_label_names_and_units_are_validated() {
    let reg = Registry::new();
    for bad in ["", "9lives", "a-b", "a b", "é", "a.b", "a{b}"] {
        assert_eq!(
            reg.counter(bad, "").unwrap_err(),
            RegistryError::InvalidMetricName(bad.into()),
            "{bad:?}"
        );
        assert_eq!(
            reg.gauge_vec(bad, "", &["x"]).unwrap_err(),
            RegistryError::InvalidMetricName(bad.into()),
            "{bad:?}"
        );
    }
    for ok in ["_x", "ns:rule:rate5m", "A9", "a_b_c"] {
        assert!(reg.counter(ok, "").is_ok(), "{ok:?}");
    }
    for bad in ["", "9a", "a:b", "a-b", "é", "a b"] {
        assert_eq!(
            reg.counter_vec("m1", "", &["ok", bad]).unwrap_err(),
            RegistryError::InvalidLabelName(bad.into()),
            "{bad:?}"
        );
    }
    for reserved in ["__x", "__", "__name__", "metricz_overflow"] {
        assert_eq!(
            reg.counter_vec("m2", "", &[reserved]).unwrap_err(),
            RegistryError::ReservedLabelName(reserved.into()),
            "{reserved:?}"
        );
    }
    // One underscore is fine.
    assert!(reg.counter_vec("m3", "", &["_x", "x_"]).is_ok());
    assert_eq!(
        reg.histogram_vec("m4", "", &["a", "b", "a"]).unwrap_err(),
        RegistryError::DuplicateLabelName("a".into())
    );
    for bad in ["", "m/s", "sec onds", "µs"] {
        assert_eq!(
            reg.describe("m5", "")
                .unit(bad)
                .labels(&[])
                .counter_vec()
                .unwrap_err(),
            RegistryError::InvalidUnit(bad.into()),
            "{bad:?}"
        );
        assert_eq!(
            reg.describe("m6", "")
                .unit(bad)
                .labels(&[])
                .gauge_vec()
                .unwrap_err(),
            RegistryError::InvalidUnit(bad.into())
        );
        assert_eq!(
            reg.describe("m7", "")
                .unit(bad)
                .labels(&[])
                .histogram_vec()
                .unwrap_err(),
            RegistryError::InvalidUnit(bad.into())
        );
    }
    let f = reg
        .describe("bytes_total", "")
        .unit("bytes")
        .labels(&["dir"])
        .counter_vec()
        .unwrap();
    assert_eq!(f.unit(), Some("bytes"));
    assert_eq!(
        reg.timer_vec("lat", "", &[]).unwrap().unit(),
        Some("seconds")
    );
    assert_eq!(reg.counter_vec("nounit", "", &[]).unwrap().unit(), None);
    // Nothing invalid got registered.
    let text = expose(&reg);
    for never in ["m1", "m2", "m4", "m5", "m6", "m7"] {
        assert!(
            !text.contains(&format!("# TYPE {never} ")),
            "{never} registered:\n{text}"
        );
    }
}

#[test]
fn label_count_must_match_on_with_and_remove() -> TestResult {
    let reg = Registry::new();
    let fam = reg.counter_vec("m", "", &["a", "b"])?;
    for values in [&[][..], &["x"], &["x", "y", "z"]] {
        assert_eq!(
            fam.with(values).err().map(|e| e.to_string()),
            Some(format!("expected 2 label values, got {}", values.len()))
        );
        assert!(matches!(
            fam.with(values),
            Err(RegistryError::LabelCountMismatch { expected: 2, got }) if got == values.len()
        ));
        assert_eq!(
            fam.remove(values),
            Err(RegistryError::LabelCountMismatch {
                expected: 2,
                got: values.len()
            })
        );
    }
    assert_eq!(fam.len(), 0, "a refused lookup created a series");
    let plain = reg.counter_vec("p", "", &[])?;
    assert!(matches!(
        plain.with(&["x"]),
        Err(RegistryError::LabelCountMismatch {
            expected: 0,
            got: 1
        })
    ));
    Ok(())
}

#[test]
fn label_values_are_any_utf8_and_distinct() -> TestResult {
    let reg = Registry::new();
    let fam = reg.counter_vec("v", "", &["a", "b"])?;
    let sets: [[&str; 2]; 12] = [
        ["", ""],
        ["", "x"],
        ["x", ""],
        ["ab", "c"],
        ["a", "bc"],
        ["é", "日本"],
        ["\"", "\\"],
        ["\\", "\""],
        ["\n", "line\nbreak"],
        ["a\0b", "tab\there"],
        ["GET", "200"],
        ["get", "200"],
    ];
    for (i, set) in sets.iter().enumerate() {
        fam.with(set)?.add(i as u64 + 1);
    }
    assert_eq!(fam.len(), sets.len());
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(fam.with(set)?.get(), i as u64 + 1, "{set:?}");
    }
    assert_eq!(fam.len(), sets.len());
    // A long value (several hash words) differing only in the last byte.
    let long_a = "x".repeat(100) + "a";
    let long_b = "x".repeat(100) + "b";
    fam.with(&[&long_a, "1"])?.add(10);
    fam.with(&[&long_b, "1"])?.add(20);
    assert_eq!(fam.with(&[&long_a, "1"])?.get(), 10);
    assert_eq!(fam.with(&[&long_b, "1"])?.get(), 20);
    assert_eq!(fam.len(), sets.len() + 2);
    Ok(())
}

#[test]
fn single_metric_handles_share_the_registered_metric() -> TestResult {
    let reg = Registry::new();
    let c1 = reg.counter("c_total", "C.")?;
    let c2 = reg.counter("c_total", "C.")?;
    c1.add(2);
    c2.add(3);
    assert_eq!(c1.get(), 5);

    let g1 = reg.gauge("g", "G.")?;
    let g2 = reg.gauge("g", "G.")?;
    g1.set(1.5);
    g2.add(1.0);
    assert_eq!(g1.get(), 2.5);

    let h1 = reg.histogram("h", "H.")?;
    let h2 = reg.histogram("h", "H.")?;
    h1.record(5);
    h2.record(7);
    assert_eq!(h1.snapshot().count(), 2);

    let t1 = reg.timer("t", "T.")?;
    let t2 = reg.timer("t", "T.")?;
    t1.record(Duration::from_millis(1));
    t2.record(Duration::from_millis(3));
    assert_eq!(t1.snapshot().sum(), 4_000_000);

    let text = expose(&reg);
    assert_eq!(sample(&text, "c_total"), Some("5"), "{text}");
    assert_eq!(sample(&text, "g"), Some("2.5"), "{text}");
    assert_eq!(sample(&text, "h_count"), Some("2"), "{text}");
    assert_eq!(sample(&text, "h_bucket{le=\"10\"}"), Some("2"), "{text}");
    assert_eq!(sample(&text, "h_sum"), Some("12"), "{text}");
    assert_eq!(sample(&text, "t_count"), Some("2"), "{text}");
    assert_eq!(sample(&text, "t_sum"), Some("0.004"), "{text}");
    Ok(())
}

// --------------------------------------------------------------- remove/clear

#[test]
fn remove_detaches_series_and_readding_starts_at_zero() -> TestResult {
    let reg = Registry::new();
    let fam = reg.counter_vec("r_total", "", &["k"])?;
    fam.with(&["a"])?.add(5);
    fam.with(&["b"])?.add(7);
    let kept: Counter = (*fam.with(&["a"])?).clone();
    assert_eq!(fam.len(), 2);

    assert_eq!(fam.remove(&["a"]), Ok(true));
    assert_eq!(fam.remove(&["a"]), Ok(false));
    assert_eq!(fam.remove(&["never"]), Ok(false));
    assert_eq!(fam.len(), 1);
    let text = expose(&reg);
    assert_eq!(sample(&text, "r_total{k=\"a\"}"), None, "{text}");
    assert_eq!(sample(&text, "r_total{k=\"b\"}"), Some("7"));

    // The kept handle still works, counting into the detached metric.
    kept.add(100);
    assert_eq!(kept.get(), 105);
    assert_eq!(sample(&expose(&reg), "r_total{k=\"a\"}"), None);
    assert_eq!(fam.len(), 1);

    // Re-adding makes a fresh series at 0, independent of the detached one.
    assert_eq!(fam.with(&["a"])?.get(), 0);
    assert_eq!(fam.len(), 2);
    fam.with(&["a"])?.inc();
    kept.inc();
    assert_eq!(fam.with(&["a"])?.get(), 1);
    assert_eq!(kept.get(), 106);
    let text = expose(&reg);
    assert_eq!(sample(&text, "r_total{k=\"a\"}"), Some("1"), "{text}");

    // clear removes everything, returns how many, detaches the same way.
    let kept_b: Counter = (*fam.with(&["b"])?).clone();
    fam.with(&["c"])?.inc();
    assert_eq!(fam.clear(), 3);
    assert_eq!(fam.len(), 0);
    assert!(fam.is_empty());
    assert_eq!(fam.clear(), 0);
    let text = expose(&reg);
    assert!(lines_of(&text, "r_total").is_empty(), "{text}");
    assert!(text.contains("# TYPE r_total counter"), "the family stays");
    kept_b.inc();
    assert_eq!(kept_b.get(), 8);
    assert_eq!(fam.with(&["b"])?.get(), 0);
    assert_eq!(fam.len(), 1);
    Ok(())
}

#[test]
fn remove_and_clear_of_other_kinds() -> TestResult {
    let reg = Registry::new();
    let gauges = reg.gauge_vec("gv", "", &["k"])?;
    gauges.with(&["x"])?.set(4.0);
    let kept = (*gauges.with(&["x"])?).clone();
    assert_eq!(gauges.remove(&["x"]), Ok(true));
    kept.add(1.0);
    assert_eq!(kept.get(), 5.0);
    assert_eq!(gauges.with(&["x"])?.get(), 0.0);

    let timers = reg.timer_vec("tv", "", &["k"])?;
    timers.with(&["x"])?.record(Duration::from_millis(1));
    timers.with(&["y"])?.record(Duration::from_millis(1));
    assert_eq!(timers.clear(), 2);
    let text = expose(&reg);
    assert!(lines_of(&text, "tv").is_empty(), "{text}");
    assert!(lines_of(&text, "tv_count").is_empty(), "{text}");
    Ok(())
}

#[test]
fn many_series_survive_growth_and_removal() -> TestResult {
    // Enough series to grow the table several times, with tombstones mixed
    // in: every surviving series keeps its own value.
    let reg = Registry::new();
    let fam = reg.counter_vec("g_total", "", &["i"])?;
    let n = if cfg!(miri) { 100 } else { 2000u64 };
    for i in 0..n {
        fam.with(&[&i.to_string()])?.add(i + 1);
    }
    for i in (0..n).step_by(3) {
        assert_eq!(fam.remove(&[&i.to_string()]), Ok(true), "{i}");
    }
    let removed = n.div_ceil(3) as usize;
    assert_eq!(fam.len(), n as usize - removed);
    for i in 0..n {
        let expected = if i % 3 == 0 { 0 } else { i + 1 };
        assert_eq!(fam.with(&[&i.to_string()])?.get(), expected, "{i}");
    }
    assert_eq!(fam.len(), n as usize);
    Ok(())
}

// ---------------------------------------------------------- cardinality limit

#[test]
fn cardinality_limit_routes_new_values_to_overflow() -> TestResult {
    let reg = Registry::with_cardinality_limit(3);
    let fam = reg.counter_vec("lim_total", "", &["method", "code"])?;
    assert_eq!(fam.cardinality_limit(), 3);
    fam.with(&["a", "1"])?.add(1);
    fam.with(&["b", "1"])?.add(2);
    fam.with(&["c", "1"])?.add(3);
    assert_eq!(fam.len(), 3);
    assert_eq!(fam.overflowed(), 0);
    // No overflow line until the overflow series is used.
    let text = expose(&reg);
    assert!(!text.contains("metricz_overflow"), "{text}");
    assert!(
        !text.contains("metricz_cardinality_overflow_total"),
        "{text}"
    );

    fam.with(&["d", "1"])?.add(10);
    fam.with(&["d", "1"])?.add(20);
    fam.with(&["e", "2"])?.add(40);
    assert_eq!(fam.len(), 3);
    assert_eq!(fam.overflowed(), 3);
    // A lookup past the limit sees the shared overflow value.
    assert_eq!(fam.with(&["f", "3"])?.get(), 70);
    assert_eq!(fam.overflowed(), 4);

    // Existing series still resolve to themselves.
    fam.with(&["b", "1"])?.add(100);
    assert_eq!(fam.with(&["a", "1"])?.get(), 1);
    assert_eq!(fam.with(&["b", "1"])?.get(), 102);
    assert_eq!(fam.with(&["c", "1"])?.get(), 3);
    assert_eq!(fam.overflowed(), 4);

    let text = expose(&reg);
    assert_eq!(
        sample(&text, "lim_total{metricz_overflow=\"true\"}"),
        Some("70"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "metricz_cardinality_overflow_total{family=\"lim_total\"}"
        ),
        Some("4"),
        "{text}"
    );
    assert_eq!(sample(&text, "lim_total{method=\"d\",code=\"1\"}"), None);
    assert_eq!(lines_of(&text, "lim_total").len(), 4, "{text}");
    assert!(text.contains("# TYPE metricz_cardinality_overflow_total counter\n"));

    // Removing a series frees a place: the next new values get a series.
    assert_eq!(fam.remove(&["a", "1"]), Ok(true));
    fam.with(&["d", "1"])?.add(5);
    assert_eq!(fam.len(), 3);
    assert_eq!(fam.overflowed(), 4);
    assert_eq!(fam.with(&["d", "1"])?.get(), 5);
    // And the overflow series is not removable by values, nor cleared.
    assert_eq!(fam.clear(), 3);
    let text = expose(&reg);
    assert_eq!(
        sample(&text, "lim_total{metricz_overflow=\"true\"}"),
        Some("70"),
        "{text}"
    );
    Ok(())
}

#[test]
fn cardinality_limit_is_per_family_and_at_least_one() -> TestResult {
    let reg = Registry::with_cardinality_limit(2);
    let a = reg.counter_vec("a_total", "", &["k"])?;
    let b = reg.gauge_vec("b", "", &["k"])?;
    for k in ["1", "2", "3"] {
        a.with(&[k])?.inc();
        b.with(&[k])?.inc();
    }
    assert_eq!((a.len(), a.overflowed()), (2, 1));
    assert_eq!((b.len(), b.overflowed()), (2, 1));
    let text = expose(&reg);
    assert_eq!(sample(&text, "b{metricz_overflow=\"true\"}"), Some("1"));
    assert_eq!(
        sample(
            &text,
            "metricz_cardinality_overflow_total{family=\"a_total\"}"
        ),
        Some("1")
    );
    assert_eq!(
        sample(&text, "metricz_cardinality_overflow_total{family=\"b\"}"),
        Some("1")
    );

    let one = Registry::with_cardinality_limit(0);
    let f = one.counter_vec("f_total", "", &["k"])?;
    assert_eq!(f.cardinality_limit(), 1);
    f.with(&["x"])?.inc();
    f.with(&["y"])?.inc();
    assert_eq!((f.len(), f.overflowed()), (1, 1));

    assert_eq!(
        Registry::new()
            .counter_vec("d", "", &[])?
            .cardinality_limit(),
        metricz::registry::DEFAULT_CARDINALITY_LIMIT
    );
    Ok(())
}

#[test]
fn cardinality_limit_holds_under_racing_inserts() -> TestResult {
    const THREADS: usize = 4;
    const PER_THREAD: usize = if cfg!(miri) { 12 } else { 200 };
    const LIMIT: usize = 37;
    let reg = Registry::with_cardinality_limit(LIMIT);
    let fam = reg.counter_vec("race_total", "", &["t", "i"])?;
    let barrier = Barrier::new(THREADS + 1);
    let done = AtomicBool::new(false);
    // The largest `len()` any thread saw, checked after the totals.
    let max_len = AtomicUsize::new(0);
    thread::scope(|s| {
        let (fam, barrier, done, max_len) = (&fam, &barrier, &done, &max_len);
        let watcher = s.spawn(move || {
            barrier.wait();
            while !done.load(Ordering::Relaxed) {
                max_len.fetch_max(fam.len(), Ordering::Relaxed);
                thread::yield_now();
            }
        });
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    barrier.wait();
                    let t = t.to_string();
                    for i in 0..PER_THREAD {
                        // Each label set looked up once, adding 1 + i % 3.
                        fam.with(&[&t, &i.to_string()])
                            .unwrap()
                            .add(1 + (i % 3) as u64);
                        max_len.fetch_max(fam.len(), Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        done.store(true, Ordering::Relaxed);
        watcher.join().unwrap();
        for r in results {
            r.unwrap();
        }
    });
    let per_thread: u64 = (0..PER_THREAD).map(|i| 1 + (i % 3) as u64).sum();
    let total = per_thread * THREADS as u64;
    assert_eq!(fam.len(), LIMIT);
    assert_eq!(fam.overflowed(), (THREADS * PER_THREAD - LIMIT) as u64);
    let text = expose(&reg);
    let lines = lines_of(&text, "race_total");
    assert_eq!(lines.len(), LIMIT + 1, "{text}");
    assert_eq!(sum_of(&text, "race_total"), total, "{text}");
    let overflow: u64 = sample(&text, "race_total{metricz_overflow=\"true\"}")
        .unwrap()
        .parse()?;
    assert!(overflow > 0 && overflow < total);
    // `len()` is the number of series: never above the limit, not even
    // while inserts race.
    let max_len = max_len.load(Ordering::Relaxed);
    assert!(max_len <= LIMIT, "len() read {max_len} > limit {LIMIT}");
    Ok(())
}

// -------------------------------------------------------------------- growth

#[test]
fn concurrent_growth_keeps_every_series() -> TestResult {
    const WRITERS: usize = 4;
    // 5000 series in all (32 under Miri, still past the first growth).
    const PER_WRITER: usize = if cfg!(miri) { 8 } else { 1250 };
    let incs = |i: usize| 1 + (i % 5) as u64;
    let reg = Registry::new();
    let fam = reg.counter_vec("grow_total", "", &["w", "i"])?;
    // How many of each writer's series are complete (Release/Acquire).
    let progress: Vec<AtomicUsize> = (0..WRITERS).map(|_| AtomicUsize::new(0)).collect();
    let writers_done = AtomicUsize::new(0);
    let checked = AtomicUsize::new(0);
    thread::scope(|s| {
        for w in 0..WRITERS {
            let (fam, progress, writers_done) = (&fam, &progress, &writers_done);
            s.spawn(move || {
                // Counts this writer done even if it panics, so the reader
                // stops.
                struct Done<'a>(&'a AtomicUsize);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, Ordering::Release);
                    }
                }
                let _done = Done(writers_done);
                let w_label = w.to_string();
                for i in 0..PER_WRITER {
                    let i_label = i.to_string();
                    for _ in 0..incs(i) {
                        fam.with(&[&w_label, &i_label]).unwrap().inc();
                    }
                    progress[w].store(i + 1, Ordering::Release);
                }
            });
        }
        let (fam, progress, writers_done, checked) = (&fam, &progress, &writers_done, &checked);
        s.spawn(move || {
            // Looks up completed series (never creating: their values must
            // be exact) while the table grows under it.
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            loop {
                let finished = writers_done.load(Ordering::Acquire) == WRITERS;
                for _ in 0..64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let w = (x % WRITERS as u64) as usize;
                    let upto = progress[w].load(Ordering::Acquire);
                    if upto == 0 {
                        continue;
                    }
                    let i = ((x >> 8) % upto as u64) as usize;
                    let got = fam.with(&[&w.to_string(), &i.to_string()]).unwrap().get();
                    assert_eq!(got, incs(i), "series ({w}, {i}) during growth");
                    checked.fetch_add(1, Ordering::Relaxed);
                }
                if finished {
                    break;
                }
            }
        });
    });
    assert!(checked.load(Ordering::Relaxed) > 0);
    assert_eq!(fam.len(), WRITERS * PER_WRITER);
    for w in 0..WRITERS {
        for i in 0..PER_WRITER {
            assert_eq!(
                fam.with(&[&w.to_string(), &i.to_string()])?.get(),
                incs(i),
                "({w}, {i})"
            );
        }
    }
    // Every lookup above found an existing series.
    assert_eq!(fam.len(), WRITERS * PER_WRITER);
    let text = expose(&reg);
    assert_eq!(lines_of(&text, "grow_total").len(), WRITERS * PER_WRITER);
    let expected: u64 = (0..PER_WRITER).map(incs).sum::<u64>() * WRITERS as u64;
    assert_eq!(sum_of(&text, "grow_total"), expected);
    Ok(())
}

// -------------------------------------------------------------------- stress

/// Issue item 9: threads create, increment and remove overlapping label sets;
/// the totals at the end are exact.
///
/// Every thread increments every label set (`family.with(&v)?.add(d)`, and
/// sometimes through a handle it kept from an earlier lookup, which may have
/// been removed since). Each label set has one designated remover thread, so
/// between that thread's `clone = (*with(&v)?).clone()` and its
/// `remove(&v)` nobody else can remove `v`: the node it clones is the node
/// it removes (`remove` must return `true`). Every series that ever existed
/// is therefore either live at the end (exported) or removed exactly once
/// and held by its remover's clone; every increment, however it raced with
/// removal, landed in exactly one of them. So
/// `sum(exported) + sum(removed clones) == sum(increments)`; a lost
/// increment, a series counted twice, a duplicate series for one label set,
/// or a removal that unlinked the wrong node breaks the equality or one of
/// the checks beside it.
#[test]
fn stress_create_increment_remove_exact_totals() -> TestResult {
    const THREADS: usize = 8;
    // Fewer sets under Miri: the checks scan the exposition once per set.
    const SETS: usize = if cfg!(miri) { 16 } else { 48 };
    const OPS: usize = if cfg!(miri) { 40 } else { 60_000 };
    let reg = Registry::new();
    let fam = reg.counter_vec("stress_total", "", &["method", "path"])?;
    let sets: Vec<[String; 2]> = (0..SETS)
        .map(|i| [format!("m{}", i % 4), format!("/p/{}", i / 4)])
        .collect();
    let barrier = Barrier::new(THREADS);
    let results: Vec<(u64, Vec<Counter>, usize)> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (fam, sets, barrier) = (&fam, &sets, &barrier);
                s.spawn(move || {
                    let mut x = 0x2545_f491_4f6c_dd1du64 ^ ((t as u64 + 1) * 0x9e37_79b9);
                    let mut next = move || {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x
                    };
                    let mut incremented = 0u64;
                    let mut removed: Vec<Counter> = Vec::new();
                    let mut kept: Option<Counter> = None;
                    let mut removals = 0usize;
                    barrier.wait();
                    for _ in 0..OPS {
                        let r = next();
                        let i = (r % SETS as u64) as usize;
                        let v = [sets[i][0].as_str(), sets[i][1].as_str()];
                        match (r >> 32) % 16 {
                            // Remove, if this thread is the set's remover.
                            0 | 1 if i % THREADS == t => {
                                let clone: Counter = (*fam.with(&v).unwrap()).clone();
                                assert_eq!(
                                    fam.remove(&v),
                                    Ok(true),
                                    "remover of {v:?} found nothing to remove"
                                );
                                removed.push(clone);
                                removals += 1;
                            }
                            // Keep a handle for later increments.
                            2 => kept = Some((*fam.with(&v).unwrap()).clone()),
                            // Increment through the kept handle.
                            3 if kept.is_some() => {
                                let d = 1 + (r >> 40) % 3;
                                kept.as_ref().unwrap().add(d);
                                incremented += d;
                            }
                            _ => {
                                let d = 1 + (r >> 40) % 5;
                                fam.with(&v).unwrap().add(d);
                                incremented += d;
                            }
                        }
                    }
                    (incremented, removed, removals)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let total: u64 = results.iter().map(|r| r.0).sum();
    let detached: u64 = results
        .iter()
        .flat_map(|r| r.1.iter())
        .map(Counter::get)
        .sum();
    let removals: usize = results.iter().map(|r| r.2).sum();
    // Under Miri, 7 removals (the threads' random sequences are fixed).
    let enough = if cfg!(miri) { 5 } else { 100 };
    assert!(
        removals > enough,
        "only {removals} removals: not much churn"
    );

    let text = expose(&reg);
    let lines = lines_of(&text, "stress_total");
    // One line per live series, no label set twice, no overflow.
    assert_eq!(lines.len(), fam.len(), "{text}");
    assert!(fam.len() <= SETS);
    let distinct: BTreeSet<&str> = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect();
    assert_eq!(distinct.len(), lines.len(), "a label set exported twice");
    assert_eq!(fam.overflowed(), 0);
    let live = sum_of(&text, "stress_total");
    assert_eq!(
        live + detached,
        total,
        "live {live} + detached {detached} != increments {total}"
    );

    // The lookups now find the exported series, creating nothing new.
    let before = fam.len();
    let mut looked_up = 0u64;
    for set in &sets {
        let present = sample(
            &text,
            &format!("stress_total{{method=\"{}\",path=\"{}\"}}", set[0], set[1]),
        );
        let got = fam.with(&[&set[0], &set[1]])?.get();
        assert_eq!(got.to_string(), present.unwrap_or("0"), "{set:?}");
        looked_up += got;
    }
    assert_eq!(looked_up, live);
    assert_eq!(fam.len(), SETS, "{before} live before the lookups");
    Ok(())
}

// ------------------------------------------------------------------- encoding

#[test]
fn exposition_is_sorted_by_name_then_label_values() -> TestResult {
    let reg = Registry::new();
    let z = reg.counter_vec("zeta_total", "Z.", &["k", "j"])?;
    let a = reg.gauge_vec("alpha", "A.", &["k"])?;
    let m = reg.counter("mid_total", "M.")?;
    for (k, j) in [("b", "2"), ("a", "9"), ("b", "10"), ("", "x"), ("a", "1")] {
        z.with(&[k, j])?.inc();
    }
    for k in ["y", "B", "x", "a"] {
        a.with(&[k])?.set(1.0);
    }
    m.inc();
    let text = expose(&reg);
    let order: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect();
    assert_eq!(
        order,
        [
            "alpha{k=\"B\"}",
            "alpha{k=\"a\"}",
            "alpha{k=\"x\"}",
            "alpha{k=\"y\"}",
            "mid_total",
            "zeta_total{k=\"\",j=\"x\"}",
            "zeta_total{k=\"a\",j=\"1\"}",
            "zeta_total{k=\"a\",j=\"9\"}",
            "zeta_total{k=\"b\",j=\"10\"}",
            "zeta_total{k=\"b\",j=\"2\"}",
        ],
        "{text}"
    );
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# HELP alpha A.",
            "# TYPE alpha gauge",
            "# HELP mid_total M.",
            "# TYPE mid_total counter",
            "# HELP zeta_total Z.",
            "# TYPE zeta_total counter",
        ]
    );
    // Stable: the same state encodes the same way.
    assert_eq!(expose(&reg), text);
    // encode appends.
    let mut buf = String::from("prefix\n");
    reg.encode_prometheus(&mut buf)?;
    assert_eq!(buf, format!("prefix\n{text}"));
    Ok(())
}

#[test]
fn exposition_escapes_label_values_and_help() -> TestResult {
    let reg = Registry::new();
    let fam = reg.counter_vec(
        "esc_total",
        "Back\\slash, \"quotes\" stay,\nnew line.",
        &["v"],
    )?;
    fam.with(&["a\\b"])?.add(1);
    fam.with(&["say \"hi\""])?.add(2);
    fam.with(&["two\nlines"])?.add(3);
    fam.with(&["\\n"])?.add(4); // a backslash and an n, not a newline
    fam.with(&["é日本"])?.add(5);
    let text = expose(&reg);
    assert!(
        text.contains("# HELP esc_total Back\\\\slash, \"quotes\" stay,\\nnew line.\n"),
        "{text}"
    );
    assert_eq!(sample(&text, r#"esc_total{v="a\\b"}"#), Some("1"), "{text}");
    assert_eq!(sample(&text, r#"esc_total{v="say \"hi\""}"#), Some("2"));
    assert_eq!(sample(&text, r#"esc_total{v="two\nlines"}"#), Some("3"));
    assert_eq!(sample(&text, r#"esc_total{v="\\n"}"#), Some("4"));
    assert_eq!(sample(&text, "esc_total{v=\"é日本\"}"), Some("5"));
    // Every line is one sample or comment: no raw newline leaked.
    assert_eq!(text.lines().count(), 2 + 5, "{text}");
    Ok(())
}

#[test]
fn exposition_writes_gauge_specials_and_floats() -> TestResult {
    let reg = Registry::new();
    let g = reg.gauge_vec("temp", "", &["k"])?;
    g.with(&["inf"])?.set(f64::INFINITY);
    g.with(&["ninf"])?.set(f64::NEG_INFINITY);
    g.with(&["nan"])?.set(f64::NAN);
    g.with(&["neg"])?.set(-2.5);
    g.with(&["zero"])?.set(0.0);
    g.with(&["big"])?.set(1e21);
    g.with(&["tiny"])?.set(0.1);
    let text = expose(&reg);
    assert_eq!(sample(&text, "temp{k=\"inf\"}"), Some("+Inf"), "{text}");
    assert_eq!(sample(&text, "temp{k=\"ninf\"}"), Some("-Inf"));
    assert_eq!(sample(&text, "temp{k=\"nan\"}"), Some("NaN"));
    assert_eq!(sample(&text, "temp{k=\"neg\"}"), Some("-2.5"));
    assert_eq!(sample(&text, "temp{k=\"zero\"}"), Some("0"));
    assert_eq!(sample(&text, "temp{k=\"tiny\"}"), Some("0.1"));
    // Whatever notation, it must read back as the value.
    let big: f64 = sample(&text, "temp{k=\"big\"}").unwrap().parse()?;
    assert_eq!(big, 1e21);
    Ok(())
}

#[test]
fn exposition_of_histograms_and_timers_as_summaries() -> TestResult {
    let reg = Registry::new();
    let h = reg.histogram_vec("size_bytes", "Sizes.", &["op"])?;
    h.set_summary(true);
    for v in [5, 7, 100] {
        h.with(&["read"])?.record(v);
    }
    let t = reg.timer_vec("latency", "Latency.", &["op"])?;
    t.set_summary(true);
    t.with(&["get"])?.record(Duration::from_millis(2));
    t.with(&["put"])?.record(Duration::from_millis(2));
    t.with(&["put"])?.record(Duration::from_micros(500));
    let text = expose(&reg);
    assert!(text.contains("# TYPE size_bytes summary\n"), "{text}");
    assert!(text.contains("# TYPE latency summary\n"), "{text}");
    assert_eq!(sample(&text, "size_bytes_count{op=\"read\"}"), Some("3"));
    assert_eq!(sample(&text, "size_bytes_sum{op=\"read\"}"), Some("112"));
    // Small integers are exact at the default precision.
    assert_eq!(
        sample(&text, "size_bytes{op=\"read\",quantile=\"0.5\"}"),
        Some("7"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "size_bytes{op=\"read\",quantile=\"0.99\"}"),
        Some("100")
    );
    assert!(sample(&text, "size_bytes{op=\"read\",quantile=\"0.9\"}").is_some());
    // Timers in seconds.
    assert_eq!(
        sample(&text, "latency_sum{op=\"get\"}"),
        Some("0.002"),
        "{text}"
    );
    assert_eq!(sample(&text, "latency_count{op=\"get\"}"), Some("1"));
    assert_eq!(sample(&text, "latency_sum{op=\"put\"}"), Some("0.0025"));
    assert_eq!(sample(&text, "latency_count{op=\"put\"}"), Some("2"));
    let p50: f64 = sample(&text, "latency{op=\"get\",quantile=\"0.5\"}")
        .unwrap()
        .parse()?;
    assert!((p50 - 0.002).abs() < 0.002 * 0.001, "p50 {p50}");
    // Summary lines come per series, in label order: get before put.
    let get = text.find("latency{op=\"get\"").unwrap();
    let put = text.find("latency{op=\"put\"").unwrap();
    assert!(get < put);
    Ok(())
}

/// By default histograms and timers are Prometheus histograms: cumulative
/// buckets at the family's bounds (timers in seconds), `+Inf`, sum, count.
#[test]
fn exposition_of_histograms_and_timers_as_histograms() -> TestResult {
    let reg = Registry::new();
    let t = reg.timer_vec("request_duration_seconds", "Latency.", &["op"])?;
    for ms in [3u64, 7, 7, 40, 2_000, 60_000] {
        t.with(&["get"])?.record(Duration::from_millis(ms));
    }
    let h = reg.histogram_vec("size_bytes", "Sizes.", &["op"])?;
    h.set_buckets(&[10.0, 100.0, 1000.0])?;
    for v in [5, 10, 11, 100, 5_000] {
        h.with(&["read"])?.record(v);
    }
    let text = expose(&reg);
    assert!(
        text.contains("# TYPE request_duration_seconds histogram\n"),
        "{text}"
    );
    let bucket = |le: &str| {
        sample(
            &text,
            &format!("request_duration_seconds_bucket{{op=\"get\",le=\"{le}\"}}"),
        )
        .map(str::to_string)
    };
    // Default bounds 0.005 … 10 s: 3 ms | 7, 7 ms | 40 ms | 2 s | 60 s.
    let expected = [
        ("0.005", "1"),
        ("0.01", "3"),
        ("0.025", "3"),
        ("0.05", "4"),
        ("0.1", "4"),
        ("0.25", "4"),
        ("0.5", "4"),
        ("1", "4"),
        ("2.5", "5"),
        ("5", "5"),
        ("10", "5"),
        ("+Inf", "6"),
    ];
    for (le, count) in expected {
        assert_eq!(bucket(le).as_deref(), Some(count), "le={le}\n{text}");
    }
    assert_eq!(
        sample(&text, "request_duration_seconds_count{op=\"get\"}"),
        Some("6")
    );
    assert_eq!(
        sample(&text, "request_duration_seconds_sum{op=\"get\"}"),
        Some("62.057")
    );
    let size = |le: &str| {
        sample(
            &text,
            &format!("size_bytes_bucket{{op=\"read\",le=\"{le}\"}}"),
        )
        .map(str::to_string)
    };
    // A value equal to a bound is in that bucket (le is "≤").
    assert_eq!(size("10").as_deref(), Some("2"), "{text}");
    assert_eq!(size("100").as_deref(), Some("4"));
    assert_eq!(size("1000").as_deref(), Some("4"));
    assert_eq!(size("+Inf").as_deref(), Some("5"));
    assert_eq!(h.buckets(), vec![10.0, 100.0, 1000.0]);
    assert!(h.set_buckets(&[]).is_err());
    assert!(h.set_buckets(&[1.0, 1.0]).is_err());
    assert!(h.set_buckets(&[2.0, 1.0]).is_err());
    assert!(h.set_buckets(&[1.0, f64::NAN]).is_err());
    assert!(
        h.set_buckets(&[-1.0, 1.0]).is_err(),
        "no record is negative"
    );
    assert!(h.set_scale(0.0).is_err());
    assert!(h.set_scale(f64::INFINITY).is_err());
    Ok(())
}

/// Seconds are the nanoseconds divided by 10⁹, correctly rounded: 9 ms is
/// `0.009` (as `Duration::as_secs_f64` gives), not `0.009000000000000001`.
#[test]
fn timer_seconds_are_correctly_rounded() -> TestResult {
    let reg = Registry::new();
    let t = reg.timer_vec("secs", "", &["ms"])?;
    let mut expected = BTreeMap::new();
    for ms in [1u64, 2, 9, 11, 13, 30, 250] {
        t.with(&[&ms.to_string()])?
            .record(Duration::from_millis(ms));
        expected.insert(ms, Duration::from_millis(ms).as_secs_f64().to_string());
    }
    let text = expose(&reg);
    for (ms, secs) in expected {
        assert_eq!(
            sample(&text, &format!("secs_sum{{ms=\"{ms}\"}}")),
            Some(secs.as_str()),
            "{ms} ms"
        );
    }
    Ok(())
}

#[test]
fn empty_registry_and_label_less_families() -> TestResult {
    let reg = Registry::new();
    assert_eq!(expose(&reg), "");
    // A family with no series yet exports only its header.
    reg.counter_vec("empty_total", "Nothing yet.", &["k"])?;
    assert_eq!(
        expose(&reg),
        "# HELP empty_total Nothing yet.\n# TYPE empty_total counter\n"
    );
    Ok(())
}

#[test]
fn operation_recorder_keeps_statuses_and_error_types_apart() {
    use metricz::registry::OperationRecorder;
    use std::time::Duration;
    let reg = Registry::new();
    let ops = OperationRecorder::new(&reg, "api").unwrap();
    ops.record_operation("get", "ok", Duration::from_millis(2));
    ops.record_operation("get", "ok", Duration::from_millis(4));
    ops.record_operation("get", "not_found", Duration::from_millis(1));
    ops.record_error("get", "timeout", "transient");
    ops.record_error("get", "refused", "transient");
    ops.record_error("get", "refused", "transient");
    assert_eq!(ops.operations().len(), 2);
    assert_eq!(ops.operations().with(&["get", "ok"]).unwrap().get(), 2);
    assert_eq!(
        ops.operations().with(&["get", "not_found"]).unwrap().get(),
        1
    );
    let ok = ops.durations().with(&["get", "ok"]).unwrap().snapshot();
    assert_eq!((ok.count(), ok.sum()), (2, 6_000_000));
    assert_eq!(ops.errors().len(), 2);
    assert_eq!(
        ops.errors()
            .with(&["get", "refused", "transient"])
            .unwrap()
            .get(),
        2
    );
    // Registering the recorder again shares the same families.
    let again = OperationRecorder::new(&reg, "api").unwrap();
    again.record_operation("get", "ok", Duration::from_millis(3));
    assert_eq!(ops.operations().with(&["get", "ok"]).unwrap().get(), 3);
    // A name taken by another kind is refused.
    reg.gauge("web_operations_total", "taken").unwrap();
    assert!(OperationRecorder::new(&reg, "web").is_err());
}

#[test]
fn idle_series_are_evicted_at_collection_time_only_when_enabled() {
    let reg = Registry::new();
    let plain = reg.counter("plain_total", "Never evicted.").unwrap();
    let family = reg.counter_vec("hits_total", "Hits.", &["route"]).unwrap();
    let busy = (*family.with(&["busy"]).unwrap()).clone();
    family.with(&["quiet"]).unwrap().inc();
    busy.inc();
    let mut buf = String::new();
    // Off by default: any number of collections evicts nothing.
    for _ in 0..5 {
        buf.clear();
        reg.encode_prometheus(&mut buf).unwrap();
    }
    assert_eq!(family.len(), 2);
    assert_eq!(reg.evict_idle(), 0);

    reg.set_idle_eviction(2);
    // Collection 1 records each series' activity; "quiet" then stays
    // unchanged for two more collections while "busy" keeps counting.
    for round in 1..=3 {
        busy.inc();
        buf.clear();
        reg.encode_prometheus(&mut buf).unwrap();
        let quiet_exported = buf.contains("hits_total{route=\"quiet\"}");
        assert_eq!(quiet_exported, round < 3, "round {round}: {buf}");
        assert!(buf.contains("hits_total{route=\"busy\"}"), "round {round}");
    }
    assert_eq!(family.len(), 1);
    // The unlabelled counter is never evicted, however idle.
    assert!(buf.contains("plain_total 0\n"));
    plain.inc();
    // Looking the evicted series up again starts a fresh one.
    assert_eq!(family.with(&["quiet"]).unwrap().get(), 0);
    assert_eq!(family.len(), 2);
}

/// Collection keeps each family's sorted series between scrapes; a clear,
/// a removal or new series (also after the table grew) must show in the
/// next scrape.
#[test]
fn exposition_follows_clear_remove_and_growth() -> TestResult {
    let reg = Registry::new();
    let f = reg.counter_vec("changes_total", "Changes.", &["k"])?;
    for k in ["a", "b", "c"] {
        f.with(&[k])?.inc();
    }
    let keys = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("changes_total{k=\""))
            .map(|l| l.split('"').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(keys(&expose(&reg)), ["a", "b", "c"]);
    assert_eq!(f.clear(), 3);
    for k in ["x", "y", "z"] {
        f.with(&[k])?.inc();
    }
    assert_eq!(keys(&expose(&reg)), ["x", "y", "z"]);
    assert!(f.remove(&["y"])?);
    assert_eq!(keys(&expose(&reg)), ["x", "z"]);
    // Enough series to grow the table several times, then remove some.
    let many: Vec<String> = (0..100).map(|i| format!("m{i:03}")).collect();
    for k in &many {
        f.with(&[k])?.inc();
    }
    for k in &many[..50] {
        f.remove(&[k])?;
    }
    let mut expected: Vec<String> = many[50..].to_vec();
    expected.extend(["x".to_string(), "z".to_string()]);
    assert_eq!(keys(&expose(&reg)), expected);
    Ok(())
}

/// A histogram or timer series that records anything between two passes
/// (a value of 0 too, which leaves the sum alone) is not idle; one that
/// records nothing is evicted.
#[test]
fn histogram_series_recording_zeros_are_not_idle() {
    let reg = Registry::new();
    let sizes = reg.histogram_vec("size_bytes", "Sizes.", &["op"]).unwrap();
    let latency = reg.timer_vec("op_seconds", "Latency.", &["op"]).unwrap();
    reg.set_idle_eviction(2);
    for op in ["zeros", "values", "idle"] {
        sizes.with(&[op]).unwrap().record(10);
        latency
            .with(&[op])
            .unwrap()
            .record(std::time::Duration::from_nanos(10));
    }
    reg.evict_idle();
    for _ in 0..3 {
        sizes.with(&["zeros"]).unwrap().record(0);
        sizes.with(&["values"]).unwrap().record(123);
        latency
            .with(&["zeros"])
            .unwrap()
            .record(std::time::Duration::ZERO);
        latency
            .with(&["values"])
            .unwrap()
            .record(std::time::Duration::from_micros(7));
        reg.evict_idle();
    }
    for family in [sizes.len(), latency.len()] {
        assert_eq!(family, 2, "the idle series alone is evicted");
    }
    assert_eq!(sizes.with(&["zeros"]).unwrap().count(), 4);
    assert_eq!(latency.with(&["zeros"]).unwrap().histogram().count(), 4);
}

/// Records on two CPUs between two passes keep a histogram series active
/// whatever their values: a fingerprint that combined the shards with XOR
/// saw 4 → 6 on one shard and 4 → 5 on the other cancel, and evicted a
/// series in use.
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore = "pins threads to CPUs")]
#[test]
fn histogram_activity_on_two_cpus_never_cancels() {
    let reg = Registry::builder().build();
    let sizes = reg.histogram_vec("size_bytes", "Sizes.", &["op"]).unwrap();
    let series = sizes.with(&["a"]).unwrap().clone();
    let on_cpu = |cpu: usize, value: u64| {
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(support::pin_to(cpu), "could not pin to CPU {cpu}");
                series.record(value);
            });
        });
    };
    reg.set_idle_eviction(1);
    on_cpu(0, 4);
    on_cpu(1, 4);
    reg.evict_idle();
    on_cpu(0, 2);
    on_cpu(1, 1);
    assert_eq!(reg.evict_idle(), 0, "an active series was evicted");
    assert_eq!(sizes.len(), 1);
}
