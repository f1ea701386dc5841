//! The registry's API as a Rust user meets it: label values of any type,
//! owned handles, `find`, descriptions and standalone registration.

use metricz::registry::{display, MetricKind};
use metricz::{Counter, Histogram, Registry, RegistryError, Timer};
use std::time::Duration;

fn text(reg: &Registry) -> String {
    let mut text = String::new();
    reg.encode_prometheus(&mut text).unwrap();
    text
}

#[test]
fn label_values_of_every_kind_name_the_same_series() {
    let reg = Registry::new();
    let c = reg
        .counter_vec("r_total", "R.", &["method", "status"])
        .unwrap();
    c.with(&["GET", "200"]).unwrap().inc();
    c.with(&("GET", 200)).unwrap().inc();
    c.with(&["GET".to_string(), "200".to_string()])
        .unwrap()
        .inc();
    c.with(&vec!["GET", "200"]).unwrap().inc();
    c.with(&(display("GET"), display(200u64))).unwrap().inc();
    let v: Vec<&str> = vec!["GET", "200"];
    c.with(&v[..]).unwrap().inc();
    assert_eq!(c.len(), 1, "one series");
    assert_eq!(c.find(&("GET", 200)).unwrap().map(|s| s.get()), Some(6));
    // Counts are checked whatever the form.
    assert_eq!(
        c.with(&("GET",)).unwrap_err(),
        RegistryError::LabelCountMismatch {
            expected: 2,
            got: 1
        }
    );
    assert!(c.remove(&("GET", 200)).unwrap());
    assert!(c.find(&["GET", "200"]).unwrap().is_none());
    // Integers, bools and chars as themselves.
    let k = reg
        .counter_vec("k_total", "K.", &["a", "b", "c", "d"])
        .unwrap();
    k.with(&(-3i8, u128::MAX, false, 'z')).unwrap().inc();
    assert!(text(&reg).contains(&format!(
        "k_total{{a=\"-3\",b=\"{}\",c=\"false\",d=\"z\"}} 1\n",
        u128::MAX
    )));
}

#[test]
fn owned_handles_are_send_and_outlive_the_lookup() {
    fn send_static<T: Send + Sync + 'static>(_: &T) {}
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"]).unwrap();
    let mail: Counter = jobs.handle(&["mail"]).unwrap();
    send_static(&mail);
    std::thread::spawn({
        let mail = mail.clone();
        move || mail.add(2)
    })
    .join()
    .unwrap();
    assert_eq!(jobs.with_fn(&["mail"], |c| c.get()).unwrap(), 2);
    // A removed series' handle counts into the detached metric.
    assert!(jobs.remove(&["mail"]).unwrap());
    mail.inc();
    assert!(jobs.find(&["mail"]).unwrap().is_none());
    assert!(!text(&reg).contains("jobs_total{queue=\"mail\"}"));
}

#[test]
fn descriptions_configure_histograms_and_timers_at_registration() {
    let reg = Registry::new();
    let h = reg
        .describe("size_bytes", "Sizes.")
        .unit("bytes")
        .labels(&["op"])
        .range(1, 1_000_000)
        .significant_figures(1)
        .buckets(&[10.0, 100.0])
        .histogram_vec()
        .unwrap();
    let s = h.handle(&["read"]).unwrap();
    assert_eq!((s.highest(), s.significant_figures()), (1_000_000, 1));
    s.record(50);
    let t = reg
        .describe("wait_seconds", "Waits.")
        .summary(true)
        .timer()
        .unwrap();
    t.record(Duration::from_millis(5));
    let out = text(&reg);
    assert!(
        out.contains("size_bytes_bucket{op=\"read\",le=\"100\"} 1\n"),
        "{out}"
    );
    assert!(out.contains("# TYPE wait_seconds summary\n"), "{out}");
    assert!(out.contains("wait_seconds_sum 0.005\n"), "{out}");
    // The same description again returns the registered family.
    let again = reg
        .describe("size_bytes", "Other.")
        .labels(&["op"])
        .histogram_vec()
        .unwrap();
    assert_eq!(again.with(&["read"]).unwrap().count(), 1);
}

#[test]
fn descriptions_refuse_what_cannot_work_and_register_nothing() {
    let reg = Registry::new();
    assert_eq!(
        reg.describe("c_total", "C.")
            .buckets(&[1.0])
            .counter()
            .unwrap_err(),
        RegistryError::NotADistribution {
            name: "c_total".into(),
            kind: MetricKind::Counter
        }
    );
    assert_eq!(
        reg.describe("t", "T.").scale(2.0).timer().unwrap_err(),
        RegistryError::NotADistribution {
            name: "t".into(),
            kind: MetricKind::Timer
        }
    );
    assert!(matches!(
        reg.describe("h", "H.")
            .significant_figures(9)
            .histogram()
            .unwrap_err(),
        RegistryError::InvalidHistogram(_)
    ));
    assert!(matches!(
        reg.describe("h", "H.")
            .buckets(&[2.0, 1.0])
            .histogram()
            .unwrap_err(),
        RegistryError::InvalidBuckets(_)
    ));
    assert!(matches!(
        reg.describe("h", "H.").scale(-1.0).histogram().unwrap_err(),
        RegistryError::InvalidScale(_)
    ));
    // None of the refused descriptions left a family behind.
    assert_eq!(text(&reg), "");
}

#[test]
fn standalone_metrics_register_once() {
    let reg = Registry::new();
    let served = Counter::new();
    served.add(3);
    reg.register("served_total", "Served.", served.clone())
        .unwrap();
    let sizes = Histogram::new();
    sizes.record(7);
    reg.register("sizes", "Sizes.", sizes.clone()).unwrap();
    let timer = Timer::new();
    timer.record(Duration::from_millis(2));
    reg.register("lat_seconds", "Latency.", timer.clone())
        .unwrap();
    served.inc();
    let out = text(&reg);
    assert!(out.contains("served_total 4\n"), "{out}");
    assert!(out.contains("sizes_count 1\n"), "{out}");
    assert!(out.contains("lat_seconds_sum 0.002\n"), "{out}");
    assert_eq!(
        reg.register("served_total", "Again.", Counter::new()),
        Err(RegistryError::AlreadyRegistered("served_total".into()))
    );
    assert!(matches!(
        reg.register("bad name", "", Counter::new()),
        Err(RegistryError::InvalidMetricName(_))
    ));
    // The registry's own handle is the registered metric.
    reg.counter("served_total", "").unwrap().inc();
    assert_eq!(served.get(), 5);
}

#[test]
fn f64_observations_export_in_the_base_unit() {
    let reg = Registry::new();
    let rpc = reg
        .describe("rpc_seconds", "RPC.")
        .labels(&["method"])
        .scale(1e-9)
        .buckets(&[0.001, 0.01])
        .histogram_vec()
        .unwrap();
    rpc.with(&["get"]).unwrap().record_f64(0.002);
    rpc.with(&["get"]).unwrap().record_f64(f64::NAN);
    // A standalone histogram of milliseconds at microsecond resolution.
    let standalone = Histogram::builder().scale(1e-3).build().unwrap();
    standalone.record_f64(1.5);
    reg.register("load_ms", "Load.", standalone).unwrap();
    let out = text(&reg);
    assert!(
        out.contains("rpc_seconds_bucket{method=\"get\",le=\"0.01\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("rpc_seconds_sum{method=\"get\"} 0.002\n"),
        "{out}"
    );
    assert!(
        out.contains("rpc_seconds_count{method=\"get\"} 1\n"),
        "{out}"
    );
    assert!(out.contains("load_ms_sum 1.5\n"), "{out}");
}
