//! The registry's collection walk: order, labels, values, the overflow
//! report and series identity, as every exporter sees them.

use metricz::registry::{MetricKind, SeriesId, Value};
use metricz::Registry;
use std::time::Duration;

/// `(family, kind, [(label, value)], value as text)` for every series.
/// One series as the test reads it.
type Row = (String, MetricKind, Vec<(String, String)>, String);

fn walk(reg: &Registry) -> Vec<Row> {
    let mut out = Vec::new();
    reg.collect(|family| {
        let (name, kind) = (family.name().to_string(), family.kind());
        family.for_each_series(|series| {
            let labels = series
                .labels()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let value = match series.into_value() {
                Value::Counter(n) => n.to_string(),
                Value::Gauge(x) => x.to_string(),
                Value::Distribution(mut d) => {
                    let b = d.buckets();
                    let cumulative: Vec<String> =
                        b.cumulative().map(|(le, n)| format!("{le}:{n}")).collect();
                    format!("{} {} {}", b.count(), b.sum(), cumulative.join(","))
                }
            };
            out.push((name.clone(), kind, labels, value));
            Ok::<(), ()>(())
        })
    })
    .unwrap();
    out
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn families_by_name_series_by_labels_then_the_overflow_report() {
    let reg = Registry::with_cardinality_limit(2);
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"]).unwrap();
    jobs.with(&["sms"]).unwrap().add(2);
    jobs.with(&["mail"]).unwrap().add(3);
    jobs.with(&["push"]).unwrap().inc(); // past the limit: overflow
    reg.gauge("a_load", "Load.").unwrap().set(0.5);
    let t = reg.timer("latency_seconds", "Latency.").unwrap();
    t.record(Duration::from_millis(3));
    t.record(Duration::from_millis(30));
    reg.histogram_vec("sizes", "Sizes.", &["op"])
        .unwrap()
        .set_buckets(&[10.0, 100.0])
        .unwrap();

    let got = walk(&reg);
    let expected = vec![
        ("a_load".into(), MetricKind::Gauge, pairs(&[]), "0.5".into()),
        (
            "jobs_total".into(),
            MetricKind::Counter,
            pairs(&[("queue", "mail")]),
            "3".into(),
        ),
        (
            "jobs_total".into(),
            MetricKind::Counter,
            pairs(&[("queue", "sms")]),
            "2".into(),
        ),
        (
            "jobs_total".into(),
            MetricKind::Counter,
            pairs(&[("metricz_overflow", "true")]),
            "1".into(),
        ),
        (
            "latency_seconds".into(),
            MetricKind::Timer,
            pairs(&[]),
            // Seconds, at the default timer bounds.
            "2 0.033 0.005:1,0.01:1,0.025:1,0.05:2,0.1:2,0.25:2,0.5:2,1:2,2.5:2,5:2,10:2".into(),
        ),
        (
            "metricz_cardinality_overflow_total".into(),
            MetricKind::Counter,
            pairs(&[("family", "jobs_total")]),
            "1".into(),
        ),
    ];
    assert_eq!(got, expected);
}

#[test]
fn family_metadata_and_export_settings() {
    let reg = Registry::new();
    let h = reg
        .describe("rpc_seconds", "RPC.")
        .unit("seconds")
        .labels(&["method", "code"])
        .histogram_vec()
        .unwrap();
    h.set_buckets(&[0.1, 1.0]).unwrap();
    h.set_summary(true);
    let mut seen = Vec::new();
    reg.collect(|family| {
        seen.push((
            family.name().to_string(),
            family.help().to_string(),
            family.unit().map(str::to_string),
            family.label_names().collect::<Vec<_>>().join(","),
            family.exported_as_summary(),
            family.bucket_bounds().to_vec(),
            family.is_overflow_report(),
        ));
        Ok::<(), ()>(())
    })
    .unwrap();
    assert_eq!(
        seen,
        [(
            "rpc_seconds".to_string(),
            "RPC.".to_string(),
            Some("seconds".to_string()),
            "method,code".to_string(),
            true,
            vec![0.1, 1.0],
            false
        )]
    );
}

#[test]
fn an_error_stops_the_walk_and_is_returned() {
    let reg = Registry::new();
    let c = reg.counter_vec("c_total", "C.", &["k"]).unwrap();
    for k in ["a", "b", "c"] {
        c.with(&[k]).unwrap().inc();
    }
    reg.gauge("d", "D.").unwrap();
    let mut visited = 0;
    let result = reg.collect(|family| {
        family.for_each_series(|series| {
            visited += 1;
            match series.labels().iter().next() {
                Some((_, "b")) => Err("stop"),
                _ => Ok(()),
            }
        })
    });
    assert_eq!(result, Err("stop"));
    assert_eq!(visited, 2, "no series after the error, no family after it");
}

#[test]
fn series_identity_changes_when_a_series_is_recreated() {
    let reg = Registry::new();
    let c = reg.counter_vec("c_total", "C.", &["k"]).unwrap();
    c.with(&["a"]).unwrap().inc();
    let id = |reg: &Registry| {
        let mut id: Option<SeriesId> = None;
        reg.collect(|family| {
            family.for_each_series(|series| {
                id = series.id();
                Ok::<(), ()>(())
            })
        })
        .unwrap();
        id.expect("a labelled series has an identity")
    };
    let first = id(&reg);
    assert_eq!(first, id(&reg), "the same series, the same identity");
    assert!(c.remove(&["a"]).unwrap());
    c.with(&["a"]).unwrap().inc();
    assert_ne!(first, id(&reg), "a new series under the same labels");
}

#[test]
fn a_walk_inside_a_walk_neither_deadlocks_nor_blocks() {
    let reg = Registry::new();
    let c = reg.counter_vec("c_total", "C.", &["k"]).unwrap();
    c.with(&["a"]).unwrap().inc();
    c.with(&["b"]).unwrap().add(2);
    let mut inner_texts = Vec::new();
    reg.collect(|family| {
        family.for_each_series(|_| {
            // An encode of the same registry, from inside the walk of the
            // family it encodes; and a registration.
            let mut text = String::new();
            reg.encode_prometheus(&mut text).unwrap();
            inner_texts.push(text);
            reg.counter("other_total", "O.").map(|_| ())
        })
    })
    .unwrap();
    assert_eq!(inner_texts.len(), 2);
    assert!(
        inner_texts[0].contains("c_total{k=\"b\"} 2\n"),
        "{}",
        inner_texts[0]
    );
    // The walk from another thread while one holds a family's list.
    std::thread::scope(|s| {
        reg.collect(|family| {
            family.for_each_series(|_| {
                s.spawn(|| {
                    let mut text = String::new();
                    reg.encode_prometheus(&mut text).unwrap();
                    assert!(text.contains("c_total{k=\"a\"} 1\n"));
                })
                .join()
                .unwrap();
                Ok::<(), ()>(())
            })
        })
        .unwrap();
    });
}

/// A walk whose closure panics (caught, as an HTTP handler or a task
/// would) leaves nothing behind for the next walk: each counter family is
/// read from its own series list, with its own values. (The walk used to
/// keep the counter families' lists of a walk that did not finish, and
/// the next walk paired every family with the list before it: another
/// family's series under the wrong name.)
#[test]
fn a_walk_after_a_panicking_closure_reads_every_family_right() {
    let reg = Registry::new();
    let a = reg.counter_vec("a_total", "A.", &["x"]).unwrap();
    let b = reg.counter_vec("b_total", "B.", &["y", "z"]).unwrap();
    a.with(&["2"]).unwrap().add(22);
    b.with(&["9", "8"]).unwrap().add(98);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reg.collect(|_| -> Result<(), ()> { panic!("a closure that panics") })
    }));
    assert!(panicked.is_err());
    // A family that sorts first, so every family moves one place.
    let first = reg.counter_vec("_a_total", "First.", &["w"]).unwrap();
    first.with(&["1"]).unwrap().add(11);
    for _ in 0..2 {
        let mut text = String::new();
        reg.encode_prometheus(&mut text).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "_a_total{w=\"1\"} 11",
                "a_total{x=\"2\"} 22",
                "b_total{y=\"9\",z=\"8\"} 98"
            ],
            "{text}"
        );
    }
}
