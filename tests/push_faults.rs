//! Pushers against sinks that fail: down (nothing listening), slow (a
//! server that accepts and never answers), refusing (HTTP 500). Recording
//! goes on from other threads, and completes while a push is provably
//! stuck; the breaker opens, skips, half-opens and recovers; undelivered
//! data stays within its bound and drops are counted; counter deltas are
//! delivered exactly once after an outage.
//!
//! No assertion depends on timing: waits are bounded polls or sleeps past
//! a configured lower bound (a breaker's cool-down).

mod support;

use metricz::export::influx::InfluxPusher;
use metricz::export::push::{BreakerState, PushError, PushOptions, PusherHandle};
use metricz::export::statsd::StatsdPusher;
use metricz::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::Duration;
use support::fake_http::{dead_tcp_port, FakeHttp};
use support::push::{expose, fail_within_bound, options, HOUR};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const COOL_DOWN: Duration = Duration::from_millis(1500);

/// A UDP port with nothing bound (datagrams draw port-unreachable).
fn dead_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `name value=Ni ts` lines of a body: (name, tags) → [(ts, value)].
fn points(body: &str) -> BTreeMap<String, Vec<(i64, String)>> {
    let mut map: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for line in body.lines() {
        let mut parts = line.rsplitn(3, ' ');
        let ts = parts.next().unwrap().parse().unwrap();
        let fields = parts.next().unwrap();
        let key = parts.next().unwrap();
        map.entry(key.to_string())
            .or_default()
            .push((ts, fields.to_string()));
    }
    map
}

/// Records `per_thread` increments on each of `threads` threads (plus
/// gauge sets and histogram records) and joins them.
fn record(reg: &Registry, threads: usize, per_thread: u64) {
    let hits = reg.counter("hits_total", "Hits.").unwrap();
    let level = reg.gauge("level", "Level.").unwrap();
    let sizes = reg.histogram("sizes", "Sizes.").unwrap();
    let by_worker = reg.counter_vec("work_total", "Work.", &["worker"]).unwrap();
    thread::scope(|s| {
        for t in 0..threads {
            let (hits, level, sizes, by_worker) = (&hits, &level, &sizes, &by_worker);
            s.spawn(move || {
                let name = t.to_string();
                for i in 0..per_thread {
                    hits.inc();
                    by_worker.with(&[&name]).unwrap().inc();
                    if i % 64 == 0 {
                        level.set(i as f64);
                        sizes.record(i);
                    }
                }
            });
        }
    });
}

/// An InfluxDB pusher builder with [`options`] (`tweak` applied).
fn influx(
    reg: &Registry,
    addr: impl ToString,
    tweak: impl FnOnce(&mut PushOptions),
) -> metricz::export::influx::InfluxPusherBuilder {
    InfluxPusher::builder(reg.clone(), addr.to_string(), "db").options(options(tweak))
}

#[test]
fn a_dead_sink_opens_the_breaker_and_recording_is_untouched() -> TestResult {
    let reg = Registry::new();
    let pusher = influx(&reg, format!("127.0.0.1:{}", dead_tcp_port()), |o| {
        o.breaker_threshold = 3;
        o.breaker_cool_down = HOUR;
    })
    .connect_timeout(Duration::from_secs(5))
    .spawn()?;

    // Push attempts run on one thread while two others record.
    let results = thread::scope(|s| {
        let pushes = s.spawn(|| (0..5).map(|_| pusher.push_now()).collect::<Vec<_>>());
        record(&reg, 2, 50_000);
        pushes.join().unwrap()
    });
    assert_eq!(reg.counter("hits_total", "Hits.")?.get(), 100_000);
    let work = reg.counter_vec("work_total", "Work.", &["worker"])?;
    assert_eq!(work.with(&["0"])?.get() + work.with(&["1"])?.get(), 100_000);

    for r in &results[..3] {
        assert!(
            matches!(r, Err(PushError::Io { op: "connect", .. })),
            "{results:?}"
        );
    }
    for r in &results[3..] {
        assert!(matches!(r, Err(PushError::BreakerOpen)), "{results:?}");
    }
    let stats = pusher.stats();
    assert_eq!(
        (stats.pushes, stats.failures, stats.skipped),
        (0, 3, 2),
        "{stats:?}"
    );
    assert_eq!(stats.breaker, BreakerState::Open);
    assert_eq!(stats.consecutive_failures, 3);
    assert!(stats.pending_bytes > 0, "samples are kept: {stats:?}");

    // The thread is alive and answering; the self-metrics agree.
    assert!(matches!(pusher.push_now(), Err(PushError::BreakerOpen)));
    let text = expose(&reg);
    assert!(
        text.contains("metricz_push_failures_total{sink=\"influx\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("metricz_push_skipped_total{sink=\"influx\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("metricz_push_total{sink=\"influx\"} 0\n"),
        "{text}"
    );
    Ok(())
}

#[test]
fn a_silent_sink_never_holds_up_recording() -> TestResult {
    let server = FakeHttp::start(0);
    let reg = Registry::new();
    reg.counter("hits_total", "Hits.")?;
    let pusher = influx(&reg, server.addr(), |o| {
        o.io_timeout = Duration::from_secs(60);
        o.wait_timeout = Duration::from_secs(120);
    })
    .spawn()?;

    thread::scope(|s| -> TestResult {
        let push = s.spawn(|| pusher.push_now());
        // The server holds the request: the pusher thread now waits for an
        // answer that will not come until `release`.
        server.wait_held("the pusher's request reached the server");
        record(&reg, 2, 50_000);
        let text = expose(&reg); // collection does not wait either
        assert!(text.contains("hits_total 100000\n"), "{text}");
        assert!(
            !push.is_finished(),
            "recording finished while the push was still stuck"
        );
        server.release();
        let result = push.join().unwrap();
        assert!(
            matches!(result, Err(PushError::MalformedResponse(_))),
            "{result:?}"
        );
        Ok(())
    })?;
    assert_eq!(reg.counter("hits_total", "Hits.")?.get(), 100_000);
    assert_eq!(pusher.stats().failures, 1);
    Ok(())
}

#[test]
fn timeouts_fire_and_dropping_a_stuck_pusher_is_bounded() -> TestResult {
    let server = FakeHttp::start(0);
    let reg = Registry::new();
    reg.counter("hits_total", "Hits.")?.inc();

    let pusher = influx(&reg, server.addr(), |o| {
        o.io_timeout = Duration::from_millis(200)
    })
    .spawn()?;
    let result = pusher.push_now();
    assert!(
        matches!(result, Err(PushError::TimedOut { op: "receive" })),
        "{result:?}"
    );
    assert_eq!(pusher.stats().failures, 1);
    server.wait_held("the first request was held");
    drop(pusher);

    // A push stuck far longer than the handle waits: the caller gets
    // NoReply, and dropping the handle returns without joining.
    let stuck = influx(&reg, server.addr(), |o| {
        o.io_timeout = HOUR;
        o.wait_timeout = Duration::from_millis(300);
    })
    .spawn()?;
    assert!(matches!(stuck.push_now(), Err(PushError::NoReply)));
    server.wait_held("the second request was held");
    drop(stuck);
    server.release(); // the detached thread reads EOF and exits
    Ok(())
}

#[test]
fn refusals_open_the_breaker_and_a_half_open_trial_delivers_pending_once() -> TestResult {
    let server = FakeHttp::start(500);
    let reg = Registry::new();
    let hits = reg.counter("hits_total", "Hits.")?;
    let pusher: PusherHandle = influx(&reg, server.addr(), |o| {
        o.breaker_threshold = 2;
        o.breaker_cool_down = COOL_DOWN;
    })
    .spawn()?;

    hits.add(5);
    assert!(matches!(
        pusher.push_now(),
        Err(PushError::Http { status: 500, .. })
    ));
    hits.add(5);
    assert!(matches!(
        pusher.push_now(),
        Err(PushError::Http { status: 500, .. })
    ));
    assert_eq!(pusher.stats().breaker, BreakerState::Open);
    hits.add(5);
    assert!(matches!(pusher.push_now(), Err(PushError::BreakerOpen)));
    assert_eq!(server.refused().len(), 2, "no request while open");

    server.set_status(204);
    thread::sleep(COOL_DOWN + Duration::from_millis(100));
    hits.add(5);
    pusher.push_now()?; // the half-open trial
    let stats = pusher.stats();
    assert_eq!(
        (stats.pushes, stats.failures, stats.skipped, stats.breaker),
        (1, 2, 1, BreakerState::Closed),
        "{stats:?}"
    );
    assert_eq!(stats.pending_bytes, 0);

    // One request carried all four samples, oldest first, each once.
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    let samples = &points(accepted[0].text())["hits_total"];
    let values: Vec<&str> = samples.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["value=5i", "value=10i", "value=15i", "value=20i"]);
    let times: BTreeSet<i64> = samples.iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), 4);
    assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));

    // The next push sends only the new sample.
    hits.add(1);
    pusher.push_now()?;
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 2);
    let values: Vec<String> = points(accepted[1].text())["hits_total"]
        .iter()
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(values, ["value=21i"]);
    Ok(())
}

#[test]
fn pending_data_stays_within_its_bound_and_drops_are_counted() -> TestResult {
    let port = dead_tcp_port();
    let reg = Registry::new();
    let family = reg.counter_vec("some_longish_counter_name_total", "C.", &["label"])?;
    for i in 0..8 {
        family.with(&[&format!("value-{i}")])?.add(i);
    }
    let bound = 2_000;
    let pusher = influx(&reg, format!("127.0.0.1:{port}"), |o| {
        o.breaker_threshold = u32::MAX;
        o.breaker_cool_down = HOUR;
    })
    .max_pending_bytes(bound)
    .spawn()?;
    let before = fail_within_bound(&reg, &pusher, "influx", bound, 12, || {});

    // The sink comes back on the same port: one flush delivers exactly the
    // kept batches and the new one.
    let server = FakeHttp::on(TcpListener::bind(("127.0.0.1", port))?, 204);
    pusher.flush()?;
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    let body = accepted[0].text();
    let by_time: BTreeMap<i64, usize> = body.lines().fold(BTreeMap::new(), |mut m, line| {
        let ts: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *m.entry(ts).or_default() += line.len() + 1;
        m
    });
    let (&newest, &newest_len) = by_time.iter().next_back().unwrap();
    assert_eq!(
        body.len() - newest_len,
        before.pending_bytes as usize,
        "the body is the pending batches plus the new one"
    );
    // The newest batch reports the drops counted before it.
    let dropped_line = format!(
        "metricz_push_dropped_bytes_total,sink=influx value={}i {newest}",
        before.dropped_bytes
    );
    assert!(body.lines().any(|l| l == dropped_line), "{body}");
    let after = pusher.stats();
    assert_eq!((after.pending_bytes, after.pushes), (0, 1));
    assert_eq!(after.dropped_bytes, before.dropped_bytes);
    Ok(())
}

/// Receives one datagram (30 s at most) and returns its `name:value|c`
/// counter lines as name → value.
fn counter_lines(socket: &UdpSocket) -> BTreeMap<String, u64> {
    let mut buf = [0u8; 65_536];
    let n = socket.recv(&mut buf).expect("a datagram");
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let value = rest.strip_suffix("|c")?;
            Some((name.to_string(), value.parse().unwrap()))
        })
        .collect()
}

#[test]
fn statsd_keeps_deltas_through_an_outage_and_delivers_them_once() -> TestResult {
    let port = dead_udp_port();
    let reg = Registry::new();
    let jobs = reg.counter("jobs_total", "Jobs.")?;
    let pusher = StatsdPusher::builder(reg.clone(), format!("127.0.0.1:{port}"))
        .options(options(|o| {
            o.breaker_threshold = 2;
            o.breaker_cool_down = COOL_DOWN;
        }))
        .spawn()?;

    jobs.add(7);
    let first = pusher.push_now();
    assert!(
        matches!(first, Err(PushError::Io { op: "send", .. })),
        "{first:?}"
    );
    jobs.add(5);
    assert!(pusher.push_now().is_err());
    assert!(matches!(pusher.push_now(), Err(PushError::BreakerOpen)));
    let stats = pusher.stats();
    assert_eq!((stats.failures, stats.skipped), (2, 1), "{stats:?}");
    assert!(stats.dropped_bytes > 0, "failed datagrams are counted");
    assert_eq!(stats.pending_bytes, 0, "StatsD keeps no pending data");

    // The daemon comes back; after the cool-down the trial push carries
    // the whole accumulated delta.
    let socket = UdpSocket::bind(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    thread::sleep(COOL_DOWN + Duration::from_millis(100));
    pusher.push_now()?;
    let lines = counter_lines(&socket);
    assert_eq!(lines.get("jobs_total"), Some(&12), "{lines:?}");
    assert_eq!(lines.get("metricz_push_failures_total.statsd"), Some(&2));
    assert_eq!(lines.get("metricz_push_skipped_total.statsd"), Some(&1));

    // Delivered once: an unchanged counter sends nothing, a change only
    // the difference.
    pusher.push_now()?;
    let lines = counter_lines(&socket);
    assert_eq!(lines.get("jobs_total"), None, "{lines:?}");
    assert_eq!(lines.get("metricz_push_total.statsd"), Some(&1));
    jobs.add(1);
    pusher.push_now()?;
    let lines = counter_lines(&socket);
    assert_eq!(lines.get("jobs_total"), Some(&1), "{lines:?}");
    assert_eq!(pusher.stats().breaker, BreakerState::Closed);
    Ok(())
}

#[test]
fn flush_bypasses_backoff_and_shutdown_flushes() -> TestResult {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let dead = dead_udp_port();
    let reg = Registry::new();
    let jobs = reg.counter("jobs_total", "Jobs.")?;

    // Backing off for an hour after a failure: push_now skips, flush goes.
    let pusher = StatsdPusher::builder(reg.clone(), format!("127.0.0.1:{dead}"))
        .options(options(|o| {
            o.backoff_initial = HOUR;
            o.backoff_max = HOUR;
        }))
        .spawn()?;
    jobs.add(3);
    assert!(pusher.push_now().is_err());
    assert!(matches!(pusher.push_now(), Err(PushError::BackingOff)));
    assert!(pusher.flush().is_err(), "still dead");
    assert_eq!(pusher.stats().skipped, 1);
    drop(pusher);

    let pusher = StatsdPusher::builder(reg.clone(), socket.local_addr()?.to_string())
        .options(options(|_| {}))
        .spawn()?;
    pusher.shutdown()?;
    let lines = counter_lines(&socket);
    assert_eq!(lines.get("jobs_total"), Some(&3), "{lines:?}");
    Ok(())
}

#[test]
fn self_metrics_survive_idle_eviction() -> TestResult {
    let reg = Registry::new();
    reg.set_idle_eviction(2);
    let pusher = influx(&reg, format!("127.0.0.1:{}", dead_tcp_port()), |o| {
        o.breaker_threshold = u32::MAX;
        o.breaker_cool_down = HOUR;
    })
    .spawn()?;
    assert!(pusher.push_now().is_err());
    // Unchanged over two collections: the self-metric series are evicted.
    for _ in 0..3 {
        expose(&reg);
    }
    assert!(!expose(&reg).contains("metricz_push_failures_total{"));
    // The next failure is counted in a live series again (from zero, as a
    // counter reset), not into a detached one.
    assert!(pusher.push_now().is_err());
    let text = expose(&reg);
    assert!(
        text.contains("metricz_push_failures_total{sink=\"influx\"} 1\n"),
        "{text}"
    );
    assert_eq!(pusher.stats().failures, 2);
    Ok(())
}
