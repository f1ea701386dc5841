//! The Pushgateway client against a real Pushgateway
//! (`prometheus-pushgateway`, installed by `scripts/install-clients`; a
//! missing binary fails, never skips): what a push leaves there, read back
//! from its `/metrics` and its JSON API, and through a real Prometheus
//! scraping it; `push_add` and `delete`; a 400 refusal; the background
//! pusher, and a stopped Pushgateway.
//!
//! No assertion depends on timing: waits are bounded polls.

mod support;

use metricz::export::push::{PushError, PushOptions};
use metricz::export::pushgateway::Pushgateway;
use metricz::Registry;
use std::collections::BTreeMap;
use std::time::Duration;
use support::process::poll;
use support::prometheus::{parse_exposition, Prometheus};
use support::pushgateway::Gateway;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HOUR: Duration = Duration::from_secs(3600);

/// A job name and a grouping key that take every path form: base64 for
/// the job (a `/`), for `path` (a `/`) and for `empty` (an empty value);
/// percent-encoding for `note`; a plain `instance`.
const JOB: &str = "nightly/backup";
const GROUPING: [(&str, &str); 4] = [
    ("instance", "batch-1"),
    ("path", "/var/tmp"),
    ("empty", ""),
    ("note", "a b%c+d:é?#"),
];

fn client(gateway: &Gateway) -> Pushgateway {
    let mut builder = Pushgateway::builder(gateway.addr.to_string(), JOB);
    for (name, value) in GROUPING {
        builder = builder.grouping(name, value);
    }
    builder.build().unwrap()
}

/// The grouping labels the Pushgateway should report, `job` included.
fn group_labels() -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![("job", JOB)];
    labels.extend(GROUPING);
    labels
}

/// A batch job's registry: a labelled counter, a gauge and a histogram
/// with known buckets.
fn batch_registry() -> Result<Registry, Box<dyn std::error::Error>> {
    let reg = Registry::new();
    let rows = reg.counter_vec("rows_total", "Rows processed.", &["table"])?;
    rows.with(&["users"])?.add(3);
    rows.with(&["orders"])?.add(40);
    reg.gauge("last_success_seconds", "Last success.")?
        .set(1_700_000_000.5);
    let sizes = reg
        .describe("chunk_size", "Chunk sizes.")
        .buckets(&[1.0, 2.0, 4.0])
        .histogram()?;
    for v in [1, 1, 2, 3, 9] {
        sizes.record(v);
    }
    Ok(reg)
}

/// `name{labels}` as the Pushgateway writes it: the series' labels and
/// the grouping labels (and `instance`), sorted by name, `le` last.
fn series(name: &str, own: &[(&str, &str)], le: Option<&str>) -> String {
    let mut labels: BTreeMap<&str, String> = group_labels()
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    for (k, v) in own {
        labels.insert(k, v.to_string());
    }
    let mut parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{name}{{{}}}", parts.join(","))
}

/// The values of the pushed families in the Pushgateway's exposition.
fn pushed_samples(text: &str) -> BTreeMap<String, f64> {
    parse_exposition(text)
        .into_iter()
        .filter(|(s, _)| {
            ["rows_total", "last_success_seconds", "chunk_size"]
                .iter()
                .any(|n| s.starts_with(n))
        })
        .collect()
}

#[test]
fn a_push_reads_back_exactly_from_the_pushgateway() -> TestResult {
    let gateway = Gateway::start();
    let reg = batch_registry()?;
    client(&gateway).push(&reg)?;

    // Its own exposition: every sample, with the grouping labels decoded.
    let expected: BTreeMap<String, f64> = [
        (series("rows_total", &[("table", "orders")], None), 40.0),
        (series("rows_total", &[("table", "users")], None), 3.0),
        (series("last_success_seconds", &[], None), 1_700_000_000.5),
        (series("chunk_size_bucket", &[], Some("1")), 2.0),
        (series("chunk_size_bucket", &[], Some("2")), 3.0),
        (series("chunk_size_bucket", &[], Some("4")), 4.0),
        (series("chunk_size_bucket", &[], Some("+Inf")), 5.0),
        (series("chunk_size_sum", &[], None), 16.0),
        (series("chunk_size_count", &[], None), 5.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(pushed_samples(&gateway.metrics()), expected);

    // Its JSON API: one group with exactly these grouping labels, and the
    // families with their types and values.
    let groups = gateway.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let group = gateway
        .group(&group_labels())
        .unwrap_or_else(|| panic!("no group {:?} in {groups:?}", group_labels()));
    assert_eq!(group["last_push_successful"], true);
    let rows = &group["rows_total"];
    assert_eq!(rows["type"], "COUNTER");
    assert_eq!(rows["help"], "Rows processed.");
    let mut counts: Vec<(String, String)> = rows["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["labels"]["path"], "/var/tmp");
            assert_eq!(m["labels"]["empty"], "");
            assert_eq!(m["labels"]["job"], JOB);
            (
                m["labels"]["table"].as_str().unwrap().to_string(),
                m["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [("orders".into(), "40".into()), ("users".into(), "3".into())]
    );
    let gauge = &group["last_success_seconds"];
    assert_eq!(gauge["type"], "GAUGE");
    assert_eq!(
        gauge["metrics"][0]["value"]
            .as_str()
            .unwrap()
            .parse::<f64>()?,
        1_700_000_000.5
    );
    let histogram = &group["chunk_size"];
    assert_eq!(histogram["type"], "HISTOGRAM");
    let h = &histogram["metrics"][0];
    assert_eq!(h["count"], "5");
    assert_eq!(h["sum"], "16");
    assert_eq!(
        h["buckets"],
        serde_json::json!({"1": "2", "2": "3", "4": "4", "+Inf": "5"})
    );
    assert_eq!(h["labels"]["note"], "a b%c+d:é?#");
    Ok(())
}

#[test]
fn prometheus_scraping_the_pushgateway_reads_the_pushed_values() -> TestResult {
    let gateway = Gateway::start();
    let reg = batch_registry()?;
    client(&gateway).push(&reg)?;
    let prometheus = Prometheus::start(&[("pushgateway", gateway.addr)]);
    prometheus.wait_up("pushgateway");

    // Without `honor_labels`, the pushed `job` and `instance` are renamed
    // `exported_job` and `exported_instance`; Prometheus drops the empty
    // `empty` label.
    let group = r#"exported_job="nightly/backup",exported_instance="batch-1",path="/var/tmp",note="a b%c+d:é?#",empty="""#;
    assert_eq!(
        prometheus.value(&format!("rows_total{{{group},table=\"users\"}}")),
        3.0
    );
    assert_eq!(
        prometheus.value(&format!("rows_total{{{group},table=\"orders\"}}")),
        40.0
    );
    assert_eq!(
        prometheus.value(&format!("last_success_seconds{{{group}}}")),
        1_700_000_000.5
    );
    assert_eq!(
        prometheus.value(&format!("chunk_size_bucket{{{group},le=\"2\"}}")),
        3.0
    );
    assert_eq!(
        prometheus.value(&format!("chunk_size_sum{{{group}}}")),
        16.0
    );
    assert_eq!(
        prometheus.value(&format!("chunk_size_count{{{group}}}")),
        5.0
    );

    // The whole series, labels included: the scrape job's own `job`, the
    // pushed ones renamed, and no `empty` label.
    let result = prometheus.query(r#"rows_total{table="users"}"#);
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(
        result[0].0,
        serde_json::json!({
            "__name__": "rows_total",
            "job": "pushgateway",
            "instance": gateway.addr.to_string(),
            "exported_job": "nightly/backup",
            "exported_instance": "batch-1",
            "path": "/var/tmp",
            "note": "a b%c+d:é?#",
            "table": "users",
        })
    );
    Ok(())
}

#[test]
fn push_add_replaces_only_the_families_pushed_and_push_replaces_all() -> TestResult {
    let gateway = Gateway::start();
    let client = Pushgateway::builder(gateway.addr.to_string(), "etl")
        .grouping("instance", "a")
        .build()?;
    let first = Registry::new();
    first.counter("rows_total", "Rows.")?.add(1);
    first.gauge("stage", "Stage.")?.set(1.0);
    client.push(&first)?;

    let second = Registry::new();
    second.counter("rows_total", "Rows.")?.add(10);
    client.push_add(&second)?;
    let group = gateway
        .group(&[("job", "etl"), ("instance", "a")])
        .expect("the group");
    assert_eq!(group["rows_total"]["metrics"][0]["value"], "10");
    assert_eq!(group["stage"]["metrics"][0]["value"], "1", "kept by POST");

    client.push(&second)?;
    let group = gateway
        .group(&[("job", "etl"), ("instance", "a")])
        .expect("the group");
    assert_eq!(group["rows_total"]["metrics"][0]["value"], "10");
    assert!(group.get("stage").is_none(), "removed by PUT: {group}");
    Ok(())
}

#[test]
fn delete_removes_only_its_group() -> TestResult {
    let gateway = Gateway::start();
    let reg = Registry::new();
    reg.counter("rows_total", "Rows.")?.add(5);
    let a = Pushgateway::builder(gateway.addr.to_string(), "etl")
        .grouping("shard", "")
        .build()?;
    let b = Pushgateway::builder(gateway.addr.to_string(), "etl")
        .grouping("shard", "b/1")
        .build()?;
    a.push(&reg)?;
    b.push(&reg)?;
    assert_eq!(gateway.groups().len(), 2);

    a.delete()?;
    // The Pushgateway queues a DELETE (it answers 202): wait, bounded,
    // for the group to go.
    poll("the deleted group to go", || {
        gateway
            .group(&[("job", "etl"), ("shard", "")])
            .is_none()
            .then_some(())
    });
    let remaining = gateway
        .group(&[("job", "etl"), ("shard", "b/1")])
        .expect("the other group stays");
    assert_eq!(remaining["rows_total"]["metrics"][0]["value"], "5");
    assert_eq!(gateway.groups().len(), 1);

    // Deleting a group that does not exist succeeds.
    a.delete()?;
    Ok(())
}

#[test]
fn an_inconsistent_push_is_refused_with_400() -> TestResult {
    let gateway = Gateway::start();
    let counter = Registry::new();
    counter.counter("things", "Things.")?.add(1);
    Pushgateway::builder(gateway.addr.to_string(), "one")
        .build()?
        .push(&counter)?;
    // The same name as a gauge in another group: inconsistent.
    let gauge = Registry::new();
    gauge.gauge("things", "Things.")?.set(2.0);
    let err = Pushgateway::builder(gateway.addr.to_string(), "two")
        .build()?
        .push(&gauge)
        .unwrap_err();
    match &err {
        PushError::Rejected { status: 400, body } => {
            assert!(body.contains("things"), "{body}")
        }
        other => panic!("expected a 400 refusal, got {other:?}"),
    }
    // The Pushgateway records the failed push in the group, without its
    // metrics.
    let group = gateway
        .group(&[("job", "two")])
        .expect("the failed push's group");
    assert_eq!(group["last_push_successful"], false, "{group}");
    assert!(group.get("things").is_none(), "{group}");
    let one = gateway.group(&[("job", "one")]).expect("the first group");
    assert_eq!(one["things"]["metrics"][0]["value"], "1");
    Ok(())
}

#[test]
fn the_background_pusher_delivers_and_survives_a_stopped_pushgateway() -> TestResult {
    let mut gateway = Gateway::start();
    let reg = Registry::new();
    let rows = reg.counter("rows_total", "Rows.")?;
    rows.add(2);
    let client = Pushgateway::builder(gateway.addr.to_string(), "worker")
        .grouping("path", "/srv")
        .build()?;
    let mut options = PushOptions::default();
    options.interval = HOUR; // only explicit pushes
    options.io_timeout = Duration::from_secs(2);
    options.backoff_initial = Duration::ZERO;
    let pusher = client.spawn(reg.clone(), options)?;
    assert_eq!(pusher.sink(), "pushgateway");

    pusher.push_now()?;
    let labels = [("job", "worker"), ("path", "/srv")];
    let group = gateway.group(&labels).expect("the pushed group");
    assert_eq!(group["rows_total"]["metrics"][0]["value"], "2");

    rows.add(5);
    pusher.push_now()?;
    let group = gateway.group(&labels).expect("the pushed group");
    assert_eq!(group["rows_total"]["metrics"][0]["value"], "7");
    // The pusher's self-metrics travel with the registry.
    let pushes = &group["metricz_push_total"]["metrics"][0];
    assert_eq!(pushes["labels"]["sink"], "pushgateway");
    assert_eq!(pushes["value"], "1", "counted after the first push");
    assert_eq!(pusher.stats().pushes, 2);

    // A refusal: the registry now clashes with another group's metrics.
    let clash = Registry::new();
    clash.gauge("odd", "Odd.")?.set(1.0);
    Pushgateway::builder(gateway.addr.to_string(), "other")
        .build()?
        .push(&clash)?;
    let odd = reg.counter("odd", "Odd.")?;
    odd.inc();
    let err = pusher.push_now().unwrap_err();
    assert!(
        matches!(err, PushError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    let stats = pusher.stats();
    assert_eq!(stats.failures, 1);
    assert!(stats.dropped_bytes > 0, "{stats:?}");

    // Stopped: a failure from the thread (not `NoReply`: it did not
    // block), and no panic.
    gateway.stop();
    let err = pusher.push_now().unwrap_err();
    assert!(
        matches!(err, PushError::Io { op: "connect", .. }),
        "{err:?}"
    );
    let err = client.push(&reg).unwrap_err();
    assert!(
        matches!(err, PushError::Io { op: "connect", .. }),
        "{err:?}"
    );
    let stats = pusher.stats();
    assert_eq!((stats.pushes, stats.failures), (2, 2), "{stats:?}");
    // Recording goes on.
    rows.inc();
    assert_eq!(rows.get(), 8);
    drop(pusher);
    Ok(())
}
