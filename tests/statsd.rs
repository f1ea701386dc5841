//! StatsD and DogStatsD: the encoder's lines (read back by a parser of the
//! StatsD line grammar), datagram packing through the pusher to a UDP
//! socket, and the real StatsD daemon (npm `statsd`, installed under
//! `target/clients` by `scripts/install-clients`), whose management
//! interface shows the counters and gauges it received.
//!
//! A missing daemon fails the test (never skips). Waiting is bounded
//! polling: no assertion depends on timing.

mod support;
use metricz::export::push::PushOptions;
use metricz::export::statsd::{self, Deltas, StatsdFormat, StatsdPusher};
use metricz::Registry;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::free_port;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HOUR: Duration = Duration::from_secs(3600);

/// The default push options with `tweak` applied.
fn options(tweak: impl FnOnce(&mut PushOptions)) -> PushOptions {
    let mut options = PushOptions::default();
    tweak(&mut options);
    options
}

/// One StatsD line: `name:value|type[|#tags]`.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    name: String,
    value: f64,
    kind: String,
    tags: Vec<String>,
}

/// Parses a line by the StatsD grammar; panics on anything else.
fn parse_line(line: &str) -> Line {
    let (name, rest) = line
        .split_once(':')
        .unwrap_or_else(|| panic!("no ':' in {line:?}"));
    assert!(!name.is_empty(), "empty name in {line:?}");
    for c in ['|', '@', '#', ',', ' ', '\n'] {
        assert!(!name.contains(c), "{c:?} in the name of {line:?}");
    }
    let mut sections = rest.split('|');
    let value = sections.next().unwrap();
    let value: f64 = value
        .parse()
        .unwrap_or_else(|e| panic!("value {value:?} of {line:?}: {e}"));
    let kind = sections
        .next()
        .unwrap_or_else(|| panic!("no type in {line:?}"))
        .to_string();
    assert!(["c", "g", "ms"].contains(&kind.as_str()), "{line:?}");
    let mut tags = Vec::new();
    for section in sections {
        let list = section
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("unexpected section {section:?} in {line:?}"));
        tags.extend(list.split(',').map(str::to_string));
    }
    Line {
        name: name.to_string(),
        value,
        kind,
        tags,
    }
}

fn parse_all(text: &str) -> Vec<Line> {
    text.lines().map(parse_line).collect()
}

fn encode(reg: &Registry, format: &StatsdFormat, deltas: &mut Deltas) -> Vec<Line> {
    let mut buf = String::new();
    statsd::encode(reg, format, deltas, &mut buf);
    assert!(buf.is_empty() || buf.ends_with('\n'));
    parse_all(&buf)
}

fn find<'a>(lines: &'a [Line], name: &str) -> Vec<&'a Line> {
    lines.iter().filter(|l| l.name == name).collect()
}

#[test]
fn counters_go_as_deltas_and_the_rest_as_gauges() -> TestResult {
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    jobs.with(&["mail"])?.add(5);
    reg.gauge("temperature", "T.")?.set(21.5);
    reg.gauge("balance", "B.")?.set(-3.25);
    reg.gauge("zero", "Z.")?.set(-0.0);
    reg.gauge("broken", "NaN.")?.set(f64::INFINITY);
    let t = reg.timer("latency", "L.")?;
    for ms in [2, 4, 6, 8, 100] {
        t.record(Duration::from_millis(ms));
    }
    let h = reg.histogram("sizes", "S.")?;
    h.record(7);
    reg.histogram("empty", "E.")?;
    let format = StatsdFormat::new().prefix("app");
    let mut deltas = Deltas::new();

    let lines = encode(&reg, &format, &mut deltas);
    let jobs_line = find(&lines, "app.jobs_total.mail");
    assert_eq!(jobs_line.len(), 1);
    assert_eq!((jobs_line[0].value, jobs_line[0].kind.as_str()), (5.0, "c"));
    assert_eq!(find(&lines, "app.temperature")[0].value, 21.5);
    // A negative gauge: set to 0, then the signed value, adjacent.
    let balance: Vec<f64> = find(&lines, "app.balance")
        .iter()
        .map(|l| l.value)
        .collect();
    assert_eq!(balance, vec![0.0, -3.25]);
    let zero = find(&lines, "app.zero");
    assert_eq!(zero.len(), 1, "-0.0 is sent as 0, not as a change");
    assert!(find(&lines, "app.broken").is_empty());
    assert!(lines.iter().all(|l| !l.name.starts_with("app.empty")));

    let s = t.snapshot();
    let summary: BTreeMap<&str, f64> = lines
        .iter()
        .filter_map(|l| Some((l.name.strip_prefix("app.latency.")?, l.value)))
        .collect();
    let ms = |ns: u64| ns as f64 / 1e6;
    let want: BTreeMap<&str, f64> = [
        ("count", 5.0),
        ("sum", 120.0),
        ("min", ms(s.min())),
        ("max", ms(s.max())),
        ("p50", ms(s.value_at_quantile(0.5))),
        ("p90", ms(s.value_at_quantile(0.9))),
        ("p99", ms(s.value_at_quantile(0.99))),
    ]
    .into();
    assert_eq!(summary, want);
    assert!(lines
        .iter()
        .filter(|l| l.name.starts_with("app.latency."))
        .all(|l| l.kind == "g"));
    assert_eq!(find(&lines, "app.sizes.sum")[0].value, 7.0);

    // Unchanged counters send nothing; changes send only the difference.
    let lines = encode(&reg, &format, &mut deltas);
    assert!(find(&lines, "app.jobs_total.mail").is_empty());
    jobs.with(&["mail"])?.add(3);
    jobs.with(&["sms"])?.inc();
    let lines = encode(&reg, &format, &mut deltas);
    assert_eq!(find(&lines, "app.jobs_total.mail")[0].value, 3.0);
    assert_eq!(find(&lines, "app.jobs_total.sms")[0].value, 1.0);

    // A removed series forgets its baseline; created again, it counts
    // from zero.
    jobs.remove(&["mail"])?;
    encode(&reg, &format, &mut deltas);
    jobs.with(&["mail"])?.add(2);
    let lines = encode(&reg, &format, &mut deltas);
    assert_eq!(find(&lines, "app.jobs_total.mail")[0].value, 2.0);
    Ok(())
}

#[test]
fn labels_become_segments_or_dogstatsd_tags() -> TestResult {
    let reg = Registry::with_cardinality_limit(2);
    let req = reg.counter_vec("http:requests", "R.", &["route", "code", "note"])?;
    req.with(&["/a.b c", "200", ""])?.inc();
    req.with(&["x,y|z:w", "500", "n"])?.add(2);
    req.with(&["over", "1", "flow"])?.add(4);

    let plain = encode(&reg, &StatsdFormat::new(), &mut Deltas::new());
    let names: Vec<(&str, f64)> = plain.iter().map(|l| (l.name.as_str(), l.value)).collect();
    assert_eq!(
        names,
        vec![
            ("http_requests._a_b_c.200._", 1.0),
            ("http_requests.x_y_z_w.500.n", 2.0),
            ("http_requests.metricz_overflow", 4.0),
            ("metricz_cardinality_overflow_total.http_requests", 1.0),
        ]
    );
    assert!(plain.iter().all(|l| l.tags.is_empty()));

    let dog = StatsdFormat::new()
        .dogstatsd(true)
        .prefix("svc")
        .tag("env", "prod")
        .tag("k:ey", "")
        .tag("h", "a,b");
    let lines = encode(&reg, &dog, &mut Deltas::new());
    let tagged: Vec<(&str, Vec<&str>)> = lines
        .iter()
        .map(|l| (l.name.as_str(), l.tags.iter().map(String::as_str).collect()))
        .collect();
    let globals = ["env:prod", "k_ey", "h:a_b"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        globals
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect()
    };
    assert_eq!(
        tagged,
        vec![
            ("svc.http_requests", with(&["route:/a.b c", "code:200"])),
            (
                "svc.http_requests",
                with(&["route:x_y_z:w", "code:500", "note:n"])
            ),
            ("svc.http_requests", with(&["metricz_overflow:true"])),
            (
                "svc.metricz_cardinality_overflow_total",
                with(&["family:http:requests"])
            ),
        ]
    );
    // Negative gauges go as a pair in DogStatsD too, both tagged.
    reg.gauge("balance", "B.")?.set(-1.5);
    let lines = encode(&reg, &dog, &mut Deltas::new());
    let balance: Vec<(f64, usize)> = find(&lines, "svc.balance")
        .iter()
        .map(|l| (l.value, l.tags.len()))
        .collect();
    assert_eq!(balance, vec![(0.0, 3), (-1.5, 3)]);
    Ok(())
}

/// Receives datagrams until every line of `want` arrived (each line once);
/// returns the datagrams.
fn receive_lines(socket: &UdpSocket, want: &[String]) -> Vec<String> {
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut datagrams = Vec::new();
    let mut got: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while got.len() < want.len() {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("after {got:?}: {e}"));
        let datagram = String::from_utf8(buf[..n].to_vec()).unwrap();
        got.extend(datagram.split('\n').map(str::to_string));
        datagrams.push(datagram);
    }
    assert_eq!(got, want);
    datagrams
}

#[test]
fn datagrams_pack_lines_up_to_the_bound_and_never_split_one() -> TestResult {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let reg = Registry::new();
    let c = reg.counter_vec("c_total", "C.", &["k"])?;
    for i in 0..40 {
        c.with(&[&format!("v{i}")])?.add(i + 1);
    }
    let long = "x".repeat(150);
    c.with(&[&long])?.inc();
    reg.gauge("neg", "N.")?.set(-1.0);

    let format = StatsdFormat::new();
    // What the pusher's first push carries: every line, deltas from zero.
    let mut want = String::new();
    statsd::encode(&reg, &format, &mut Deltas::new(), &mut want);
    let want: Vec<String> = want.lines().map(str::to_string).collect();
    assert!(want.iter().any(|l| l.len() > 64));

    let max = 64;
    let pusher = StatsdPusher::builder(reg.clone(), socket.local_addr()?.to_string())
        .options(options(|o| o.interval = HOUR))
        .format(format)
        .max_datagram(max)
        .spawn()?;
    pusher.push_now()?;
    let datagrams = receive_lines(&socket, &want);
    for d in &datagrams {
        assert!(
            d.len() <= max || !d.contains('\n'),
            "a datagram over {max} bytes holds more than one line: {d:?}"
        );
        assert!(!d.ends_with('\n') && !d.starts_with('\n'), "{d:?}");
        parse_all(d);
    }
    // Packed, not one line a datagram: each datagram but the last could
    // not take the next line.
    for pair in datagrams.windows(2) {
        let next_line = pair[1].split('\n').next().unwrap();
        assert!(pair[0].len() + 1 + next_line.len() > max, "{pair:?}");
    }
    // The negative gauge's two lines travel together.
    assert!(datagrams.iter().any(|d| d.contains("neg:0|g\nneg:-1.0|g")));
    assert_eq!(pusher.stats().pushes, 1);
    Ok(())
}

// ---------------------------------------------------------------------
// The real StatsD daemon.
// ---------------------------------------------------------------------

/// Gives up waiting after this many polls, 50 ms apart.
const POLLS: usize = 400;

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The npm `statsd` daemon on loopback, no backends, no flush during a
/// test; killed on drop, also when a test panics.
struct StatsdDaemon {
    child: Child,
    dir: PathBuf,
    udp: u16,
    mgmt: u16,
}

impl StatsdDaemon {
    fn start() -> StatsdDaemon {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/clients/node_modules/statsd/stats.js");
        assert!(
            script.is_file(),
            "{} is missing: install it with scripts/install-clients",
            script.display()
        );
        let (udp, mgmt) = (free_udp_port(), free_port());
        let dir = std::env::temp_dir().join(format!(
            "metricz-statsd-{}-{udp}-{mgmt}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.js");
        std::fs::write(
            &config,
            format!(
                "{{ port: {udp}, mgmt_port: {mgmt}, address: \"127.0.0.1\", \
                 mgmt_address: \"127.0.0.1\", backends: [], flushInterval: 100000, \
                 automaticConfigReload: false, title: false }}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("statsd.log")).unwrap();
        let child = Command::new("node")
            .arg(&script)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start node ({e}): install it with scripts/install-clients")
            });
        let mut daemon = StatsdDaemon {
            child,
            dir,
            udp,
            mgmt,
        };
        // Up once the management interface answers and a probe counter
        // sent over UDP shows up in it.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..POLLS {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("statsd exited ({status}):\n{}", daemon.log());
            }
            let _ = probe.send_to(b"metricz_probe:1|c", ("127.0.0.1", udp));
            if let Ok(counters) = daemon.command("counters") {
                if counters.contains_key("metricz_probe") {
                    return daemon;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("statsd did not come up:\n{}", daemon.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("statsd.log")).unwrap_or_default()
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.udp)
    }

    /// Runs a management command and parses the object it prints.
    fn command(&self, cmd: &str) -> std::io::Result<BTreeMap<String, String>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.mgmt))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(cmd.as_bytes())?;
        stream.write_all(b"\n")?;
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        while !out.ends_with(b"END\n\n") {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&out);
        let object = text.trim_end().strip_suffix("END").unwrap_or(&text);
        Ok(parse_inspect(object))
    }

    /// Polls `cmd` until `done` holds (or gives up); returns the last
    /// answer.
    fn wait_for(
        &self,
        cmd: &str,
        done: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        let mut last = BTreeMap::new();
        for _ in 0..POLLS {
            last = self.command(cmd).unwrap_or_default();
            if done(&last) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last
    }
}

impl Drop for StatsdDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- statsd log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses Node's `util.inspect` of a flat object (`{ key: 1, 'a.b': 2 }`)
/// into key → value text.
fn parse_inspect(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let s: Vec<char> = text.trim().chars().collect();
    let mut i = s.iter().position(|&c| c == '{').map_or(s.len(), |p| p + 1);
    loop {
        while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
            i += 1;
        }
        if i >= s.len() || s[i] == '}' {
            break;
        }
        let mut key = String::new();
        if s[i] == '\'' {
            i += 1;
            while i < s.len() && s[i] != '\'' {
                if s[i] == '\\' {
                    i += 1;
                }
                key.push(s[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < s.len() && s[i] != ':' {
                key.push(s[i]);
                i += 1;
            }
        }
        assert_eq!(s.get(i), Some(&':'), "in {text}");
        i += 1;
        let mut value = String::new();
        let mut depth = 0;
        while i < s.len() {
            match s[i] {
                '[' | '{' => depth += 1,
                ']' | '}' if depth > 0 => depth -= 1,
                ',' | '}' if depth == 0 => break,
                _ => {}
            }
            value.push(s[i]);
            i += 1;
        }
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    map
}

fn number(map: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    map.get(key)?.parse().ok()
}

#[test]
fn the_daemon_sums_deltas_and_keeps_gauges() -> TestResult {
    let daemon = StatsdDaemon::start();
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    reg.gauge("temperature", "T.")?.set(21.5);
    reg.gauge("balance", "B.")?.set(-3.25);
    let latency = reg.timer("latency", "L.")?;
    for ms in [3, 5, 5, 9, 250] {
        latency.record(Duration::from_millis(ms));
    }
    let pusher = StatsdPusher::builder(reg.clone(), daemon.addr())
        .options(options(|o| o.interval = HOUR))
        .prefix("app")
        .max_datagram(100) // several datagrams a push
        .spawn()?;

    jobs.with(&["mail"])?.add(5);
    pusher.push_now()?;
    jobs.with(&["mail"])?.add(7);
    jobs.with(&["sms"])?.inc();
    pusher.push_now()?;
    pusher.push_now()?; // no change: no counter lines
    jobs.with(&["mail"])?.add(30);
    pusher.push_now()?;

    let want: [(&str, f64); 4] = [
        ("app.jobs_total.mail", 42.0),
        ("app.jobs_total.sms", 1.0),
        // Pushes 2, 3 and 4 each carried the one before's success.
        ("app.metricz_push_total.statsd", 3.0),
        ("statsd.bad_lines_seen", 0.0),
    ];
    let counters = daemon.wait_for("counters", |c| {
        want.iter().all(|(k, v)| number(c, k) == Some(*v))
    });
    for (key, value) in want {
        assert_eq!(number(&counters, key), Some(value), "{key} in {counters:?}");
    }

    let s = latency.snapshot();
    let ms = |ns: u64| ns as f64 / 1e6;
    let want: Vec<(&str, f64)> = vec![
        ("app.temperature", 21.5),
        ("app.balance", -3.25),
        ("app.latency.count", 5.0),
        ("app.latency.sum", 272.0),
        ("app.latency.p50", ms(s.value_at_quantile(0.5))),
        ("app.latency.p99", ms(s.value_at_quantile(0.99))),
        ("app.latency.max", ms(s.max())),
    ];
    let gauges = daemon.wait_for("gauges", |g| {
        want.iter().all(|(k, v)| number(g, k) == Some(*v))
    });
    for (key, value) in &want {
        assert_eq!(number(&gauges, key), Some(*value), "{key} in {gauges:?}");
    }
    // Summaries are gauges: the daemon holds no timer samples.
    let timers = daemon.command("timers")?;
    assert!(timers.is_empty(), "{timers:?}");
    assert_eq!(pusher.stats().failures, 0);
    Ok(())
}

#[test]
fn the_daemon_reads_dogstatsd_tags() -> TestResult {
    let daemon = StatsdDaemon::start();
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    reg.gauge_vec("temperature", "T.", &["room"])?
        .with(&["hall"])?
        .set(-4.5);
    let pusher = StatsdPusher::builder(reg.clone(), daemon.addr())
        .options(options(|o| o.interval = HOUR))
        .prefix("dog")
        .dogstatsd(true)
        .tag("env", "prod")
        .spawn()?;
    jobs.with(&["mail"])?.add(2);
    pusher.push_now()?;
    jobs.with(&["mail"])?.add(3);
    pusher.push_now()?;

    // The daemon folds tags into the key as `;key=value`.
    let counters = daemon.wait_for("counters", |c| {
        number(c, "dog.jobs_total;env=prod;queue=mail") == Some(5.0)
    });
    assert_eq!(
        number(&counters, "dog.jobs_total;env=prod;queue=mail"),
        Some(5.0),
        "{counters:?}"
    );
    assert_eq!(number(&counters, "statsd.bad_lines_seen"), Some(0.0));
    let gauges = daemon.wait_for("gauges", |g| {
        number(g, "dog.temperature;env=prod;room=hall") == Some(-4.5)
    });
    assert_eq!(
        number(&gauges, "dog.temperature;env=prod;room=hall"),
        Some(-4.5),
        "{gauges:?}"
    );
    Ok(())
}

#[test]
fn a_line_too_long_for_udp_is_dropped_without_blocking_the_others() -> TestResult {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(30)))?;
    let reg = Registry::new();
    let c = reg.counter_vec("c_total", "C.", &["k"])?;
    let huge = "h".repeat(70_000);
    c.with(&["a"])?.inc();
    c.with(&[&huge])?.add(2);
    c.with(&["z"])?.add(3);
    let pusher = StatsdPusher::builder(reg.clone(), socket.local_addr()?.to_string())
        .options(options(|o| o.interval = HOUR))
        .spawn()?;
    let result = pusher.push_now();
    assert!(
        matches!(
            result,
            Err(metricz::export::push::PushError::Io { op: "send", .. })
        ),
        "{result:?}"
    );
    let stats = pusher.stats();
    assert!(stats.dropped_bytes > 70_000, "{stats:?}");
    assert_eq!((stats.failures, stats.consecutive_failures), (1, 0));
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while got.len() < 2 {
        let n = socket.recv(&mut buf)?;
        got.extend(
            String::from_utf8(buf[..n].to_vec())?
                .lines()
                .map(str::to_string),
        );
    }
    assert_eq!(got, ["c_total.a:1|c", "c_total.z:3|c"]);
    // Given up for good: the next push does not retry it.
    c.with(&["a"])?.inc();
    pusher.push_now()?;
    let n = socket.recv(&mut buf)?;
    let text = String::from_utf8(buf[..n].to_vec())?;
    assert!(
        text.contains("c_total.a:1|c") && !text.contains("hhh"),
        "{text}"
    );
    Ok(())
}

/// A series removed and created again under the same labels is a new
/// series: its whole value is sent, even when it has grown past the old
/// series' baseline (a delta against the old baseline would lose counts).
#[test]
fn a_recreated_series_sends_its_whole_value() -> TestResult {
    let reg = Registry::new();
    let jobs = reg.counter_vec("jobs_total", "Jobs.", &["queue"])?;
    jobs.with(&["mail"])?.add(3);
    let format = StatsdFormat::new();
    let mut deltas = Deltas::new();
    let first = encode(&reg, &format, &mut deltas);
    let values = |lines: &[Line]| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l.kind == "c" && l.name.starts_with("jobs_total"))
            .map(|l| l.value)
            .collect()
    };
    assert_eq!(values(&first), vec![3.0]);
    assert!(jobs.remove(&["mail"])?);
    jobs.with(&["mail"])?.add(5);
    let second = encode(&reg, &format, &mut deltas);
    assert_eq!(values(&second), vec![5.0], "{second:?}");
    // And the same series again is a delta.
    jobs.with(&["mail"])?.add(2);
    let third = encode(&reg, &format, &mut deltas);
    assert_eq!(values(&third), vec![2.0], "{third:?}");
    // The overflow self-metric keeps its baseline across pushes.
    let limited = Registry::builder().cardinality_limit(1).build();
    let f = limited.counter_vec("x_total", "X.", &["k"])?;
    f.with(&["a"])?.inc();
    f.with(&["b"])?.inc(); // overflow
    let mut deltas = Deltas::new();
    let overflow = |lines: &[Line]| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l.name.starts_with("metricz_cardinality_overflow_total"))
            .map(|l| l.value)
            .collect()
    };
    assert_eq!(overflow(&encode(&limited, &format, &mut deltas)), vec![1.0]);
    f.with(&["c"])?.inc();
    assert_eq!(overflow(&encode(&limited, &format, &mut deltas)), vec![1.0]);
    Ok(())
}
