//! The JSON snapshot: values, units, buckets and labels of every kind, and
//! that it reads back into `metricz::export::json::Snapshot`.

use metricz::export::json::{Bucket, Snapshot};
use metricz::Registry;
use std::collections::BTreeMap;
use std::time::Duration;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn snapshot_holds_every_kind() {
    let reg = Registry::builder().cardinality_limit(2).build();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"]).unwrap();
    jobs.with(&["mail"]).unwrap().add(3);
    jobs.with(&["say \"hi\"\n"]).unwrap().add(4);
    jobs.with(&["third"]).unwrap().inc(); // over the limit: overflow
    let temp = reg.gauge_vec("temperature", "Temp.", &["room"]).unwrap();
    temp.with(&["a"]).unwrap().set(-1.5);
    temp.with(&["b"]).unwrap().set(f64::NAN);
    let sizes = reg
        .describe("size_bytes", "Sizes.")
        .unit("bytes")
        .labels(&["op"])
        .histogram_vec()
        .unwrap();
    sizes.set_buckets(&[10.0, 100.0]).unwrap();
    for v in [5, 10, 50, 500] {
        sizes.with(&["read"]).unwrap().record(v);
    }
    let latency = reg.timer("latency_seconds", "Latency.").unwrap();
    latency.record(Duration::from_millis(3));
    latency.record(Duration::from_millis(9));

    let text = metricz::export::json::to_string(&reg);
    let snap: Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(
        snap,
        metricz::export::json::snapshot(&reg),
        "reads back to the same data"
    );

    let counters: Vec<(String, BTreeMap<String, String>, u64)> = snap
        .counters
        .iter()
        .map(|c| (c.name.clone(), c.labels.clone(), c.value))
        .collect();
    assert_eq!(
        counters,
        vec![
            ("jobs_total".into(), labels(&[("queue", "mail")]), 3),
            ("jobs_total".into(), labels(&[("queue", "say \"hi\"\n")]), 4),
            (
                "jobs_total".into(),
                labels(&[("metricz_overflow", "true")]),
                1
            ),
            // The registry's overflow report, as in every format.
            (
                "metricz_cardinality_overflow_total".into(),
                labels(&[("family", "jobs_total")]),
                1
            ),
        ]
    );
    let gauges: Vec<Option<f64>> = snap.gauges.iter().map(|g| g.value).collect();
    assert_eq!(gauges, vec![Some(-1.5), None], "NaN is null");

    let size = &snap
        .histograms
        .iter()
        .find(|h| h.name == "size_bytes")
        .unwrap();
    assert_eq!(size.labels, labels(&[("op", "read")]));
    assert_eq!(size.unit.as_deref(), Some("bytes"));
    assert_eq!(
        (size.count, size.sum, size.min, size.max),
        (4, 565.0, 5.0, 500.0)
    );
    assert_eq!(
        size.buckets,
        vec![
            Bucket {
                le: Some(10.0),
                count: 2
            },
            Bucket {
                le: Some(100.0),
                count: 3
            },
            Bucket { le: None, count: 4 },
        ]
    );
    assert_eq!(size.quantiles["0.5"], 10.0);
    assert_eq!(size.quantiles["0.99"], 500.0);

    let lat = &snap
        .histograms
        .iter()
        .find(|h| h.name == "latency_seconds")
        .unwrap();
    assert_eq!(lat.unit.as_deref(), Some("seconds"));
    assert_eq!(lat.count, 2);
    assert_eq!(lat.sum, 0.012);
    assert_eq!(
        lat.buckets[0],
        Bucket {
            le: Some(0.005),
            count: 1
        }
    );
    assert_eq!(
        lat.buckets[1],
        Bucket {
            le: Some(0.01),
            count: 2
        }
    );
    assert!((lat.max - 0.009).abs() < 0.009 * 0.001);
    // The raw JSON has the documented shape.
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw["counters"][0]["value"], 3);
    assert!(raw["gauges"][1]["value"].is_null());
    assert!(raw["histograms"][0]["buckets"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["le"]
        .is_null());
}
