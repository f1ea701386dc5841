//! InfluxDB line protocol: a reference parser of the 1.x grammar reads back
//! what the encoder and the point writer write (property tests over
//! arbitrary names, keys, tag values and string fields); the pusher's HTTP
//! request is checked on a fake server; and a real InfluxDB 1.x server
//! (`influxd`, installed by `scripts/install-clients`) stores what the
//! pusher sends, read back through its query API.
//!
//! A missing `influxd` fails the test (never skips). Waiting is bounded
//! polling: no assertion depends on timing.

mod support;
use metricz::export::influx::{self, InfluxPusher, LineError, Point};
use metricz::export::push::{PushError, PushOptions};
use metricz::Registry;
use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{free_port, url_encode};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HOUR: Duration = Duration::from_secs(3600);

/// The default push options with `tweak` applied.
fn options(tweak: impl FnOnce(&mut PushOptions)) -> PushOptions {
    let mut options = PushOptions::default();
    tweak(&mut options);
    options
}

// ---------------------------------------------------------------------
// A reference parser of the line protocol grammar (InfluxDB 1.x): a
// special character is escaped when the character before it is a
// backslash; unescaping turns `\c` into `c` for the context's special
// characters and keeps every other backslash; string fields unescape `\"`
// and `\\`.
// ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Parsed {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Field)>,
    timestamp: Option<i64>,
}

fn escaped(b: &[char], i: usize) -> bool {
    i > 0 && b[i - 1] == '\\'
}

fn unescape(chars: &[char], specials: &[char]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() && specials.contains(&chars[i + 1]) {
            out.push(chars[i + 1]);
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Parses one point (a line without its final newline).
fn parse_point(line: &str) -> Result<Parsed, String> {
    let b: Vec<char> = line.chars().collect();
    let n = b.len();
    let unescaped = |i: usize, set: &[char]| set.contains(&b[i]) && !escaped(&b, i);
    let mut i = 0;
    while i < n && !unescaped(i, &[',', ' ']) {
        i += 1;
    }
    if i == 0 {
        return Err("empty measurement".into());
    }
    let measurement = unescape(&b[..i], &[',', ' ']);
    let mut tags = Vec::new();
    while i < n && b[i] == ',' {
        i += 1;
        let start = i;
        while i < n && !unescaped(i, &['=']) {
            if unescaped(i, &[',', ' ']) {
                return Err(format!("tag key ends at {i} without '='"));
            }
            i += 1;
        }
        if i == n || i == start {
            return Err("bad tag key".into());
        }
        let key = unescape(&b[start..i], &[',', '=', ' ']);
        i += 1;
        let start = i;
        while i < n && !unescaped(i, &[',', ' ']) {
            if unescaped(i, &['=']) {
                return Err(format!("unescaped '=' in a tag value at {i}"));
            }
            i += 1;
        }
        if i == start {
            return Err("empty tag value".into());
        }
        tags.push((key, unescape(&b[start..i], &[',', '=', ' '])));
    }
    if i >= n || b[i] != ' ' {
        return Err("no fields".into());
    }
    i += 1;
    let mut fields = Vec::new();
    loop {
        let start = i;
        while i < n && !unescaped(i, &['=']) {
            if unescaped(i, &[',', ' ']) {
                return Err(format!("field key ends at {i} without '='"));
            }
            i += 1;
        }
        if i == n || i == start {
            return Err("bad field key".into());
        }
        let key = unescape(&b[start..i], &[',', '=', ' ']);
        i += 1;
        let value = if i < n && b[i] == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match b.get(i) {
                    None => return Err("unterminated string".into()),
                    Some('\\') if matches!(b.get(i + 1), Some('"' | '\\')) => {
                        s.push(b[i + 1]);
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        s.push(c);
                        i += 1;
                    }
                }
            }
            Field::Str(s)
        } else {
            let start = i;
            while i < n && b[i] != ',' && b[i] != ' ' {
                i += 1;
            }
            let token: String = b[start..i].iter().collect();
            if let Some(int) = token.strip_suffix('i') {
                Field::Int(int.parse().map_err(|e| format!("{token:?}: {e}"))?)
            } else if token == "true" || token == "false" {
                Field::Bool(token == "true")
            } else {
                Field::Float(token.parse().map_err(|e| format!("{token:?}: {e}"))?)
            }
        };
        fields.push((key, value));
        if i < n && b[i] == ',' {
            i += 1;
        } else {
            break;
        }
    }
    let timestamp = if i < n {
        if b[i] != ' ' {
            return Err(format!("junk at {i}"));
        }
        let token: String = b[i + 1..].iter().collect();
        Some(
            token
                .parse()
                .map_err(|e| format!("timestamp {token:?}: {e}"))?,
        )
    } else {
        None
    };
    Ok(Parsed {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// Parses a body of points without string fields (line breaks cannot
/// appear anywhere else).
fn parse_lines(body: &str) -> Vec<Parsed> {
    let body = body
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("body does not end in a newline: {body:?}"));
    body.split('\n')
        .map(|line| parse_point(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

/// What a name, key or tag value becomes by the documented rules, given
/// its context's special characters: trailing backslashes dropped, line
/// breaks as `\n` / `\r`, and an odd run of backslashes before a special
/// character made even.
fn expected_with(s: &str, specials: &[char]) -> String {
    let mut out = String::new();
    let mut run = 0;
    for c in s.trim_end_matches('\\').chars() {
        if specials.contains(&c) && run % 2 == 1 {
            out.push('\\');
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
        run = if c == '\\' { run + 1 } else { 0 };
    }
    out
}

/// [`expected_with`] for tag keys, tag values and field keys.
fn expected_text(s: &str) -> String {
    expected_with(s, &[',', '=', ' '])
}

fn tricky_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(','),
            Just(' '),
            Just('='),
            Just('\\'),
            Just('"'),
            Just('#'),
            Just('\n'),
            Just('\r'),
            Just('i'),
            Just('é'),
            any::<char>(),
        ],
        0..10,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn points_parse_back_to_what_was_written(
        measurement in tricky_string(),
        tags in proptest::collection::vec((tricky_string(), tricky_string()), 0..4),
        fields in proptest::collection::vec((tricky_string(), tricky_string(), any::<i64>(), any::<f64>(), 0..4u8), 1..4),
        ts in proptest::option::of(any::<i64>()),
    ) {
        let mut buf = String::from("before\n");
        let mut point = Point::new(&mut buf, &measurement);
        for (k, v) in &tags {
            point = point.tag(k, v);
        }
        let mut want_fields = Vec::new();
        for (key, s, int, float, kind) in &fields {
            point = match kind {
                0 => point.string(key, s),
                1 => point.integer(key, *int),
                2 => point.boolean(key, *int % 2 == 0),
                _ => point.float(key, *float),
            };
            let value = match kind {
                0 => Field::Str(s.clone()),
                1 => Field::Int(*int),
                2 => Field::Bool(*int % 2 == 0),
                _ => Field::Float(*float),
            };
            want_fields.push((expected_text(key), value));
        }
        let result = point.finish(ts);

        let blank = |s: &str| s.trim_end_matches('\\').is_empty();
        // The first rule broken, in the order the writer checks them.
        let mut want_error = blank(&measurement).then_some(LineError::EmptyMeasurement);
        for (key, _, _, float, kind) in &fields {
            if want_error.is_some() {
                break;
            }
            if *kind == 3 && !float.is_finite() {
                want_error = Some(LineError::NonFiniteFloat(key.clone()));
            } else if blank(key) {
                want_error = Some(LineError::EmptyFieldKey);
            }
        }
        if let Some(e) = want_error {
            prop_assert_eq!(result, Err(e));
            prop_assert_eq!(buf, "before\n", "a failed point leaves nothing");
        } else {
            prop_assert_eq!(&result, &Ok(()));
            let line = buf.strip_prefix("before\n").and_then(|l| l.strip_suffix('\n'));
            prop_assert!(line.is_some(), "{:?}", buf);
            let p = parse_point(line.unwrap_or_default()).map_err(|e| TestCaseError::fail(format!("{e}: {buf:?}")))?;
            let p = &p;
            let mut want_measurement = expected_with(&measurement, &[',', ' ']);
            if measurement.starts_with('#') {
                want_measurement.insert(0, '\\');
            }
            prop_assert_eq!(&p.measurement, &want_measurement);
            let want_tags: Vec<(String, String)> = tags
                .iter()
                .filter(|(k, v)| !blank(k) && !blank(v))
                .map(|(k, v)| (expected_text(k), expected_text(v)))
                .collect();
            prop_assert_eq!(&p.tags, &want_tags);
            prop_assert_eq!(p.fields.len(), want_fields.len());
            for ((key, got), (want_key, want)) in p.fields.iter().zip(&want_fields) {
                prop_assert_eq!(key, want_key);
                match (got, want) {
                    (Field::Float(a), Field::Float(b)) => prop_assert_eq!(a.to_bits(), b.to_bits()),
                    (a, b) => prop_assert_eq!(a, b),
                }
            }
            prop_assert_eq!(p.timestamp, ts);
        }
    }

    #[test]
    fn label_values_survive_encoding(
        a in tricky_string(),
        b in tricky_string(),
        global in tricky_string(),
        n in 0u64..1_000_000,
    ) {
        let reg = Registry::new();
        let family = reg.counter_vec("requests_total", "Requests.", &["b_label", "a_label"]).unwrap();
        family.with(&[&b, &a]).unwrap().add(n);
        let mut buf = String::new();
        influx::encode_with_tags(&reg, &[("host", global.as_str())], 1_234, &mut buf);
        let points = parse_lines(&buf);
        prop_assert_eq!(points.len(), 1);
        let p = &points[0];
        prop_assert_eq!(&p.measurement, "requests_total");
        let mut want = Vec::new();
        let blank = |s: &str| s.trim_end_matches('\\').is_empty();
        // Sorted by key: a_label, b_label, host.
        for (k, v) in [("a_label", &a), ("b_label", &b), ("host", &global)] {
            if !blank(v) {
                want.push((k.to_string(), expected_text(v)));
            }
        }
        prop_assert_eq!(&p.tags, &want);
        prop_assert_eq!(&p.fields, &vec![("value".to_string(), Field::Int(n as i64))]);
        prop_assert_eq!(p.timestamp, Some(1_234));
    }
}

// ---------------------------------------------------------------------
// The encoder's mapping.
// ---------------------------------------------------------------------

fn by_measurement(points: &[Parsed]) -> BTreeMap<String, Vec<&Parsed>> {
    let mut map: BTreeMap<String, Vec<&Parsed>> = BTreeMap::new();
    for p in points {
        map.entry(p.measurement.clone()).or_default().push(p);
    }
    map
}

fn field<'a>(p: &'a Parsed, key: &str) -> Option<&'a Field> {
    p.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn every_kind_maps_to_its_fields() -> TestResult {
    let reg = Registry::with_cardinality_limit(2);
    reg.counter("jobs_total", "Jobs.")?.add(u64::MAX);
    reg.gauge("temperature", "T.")?.set(-21.5);
    reg.gauge("broken", "NaN.")?.set(f64::NAN);
    let h = reg.histogram("sizes", "Sizes.")?;
    for v in [10, 20, 30, 40, 1_000] {
        h.record(v);
    }
    reg.histogram("empty", "Empty.")?;
    let t = reg.timer("latency", "Latency.")?;
    t.record(Duration::from_millis(3));
    t.record(Duration::from_millis(9));
    let users = reg.counter_vec("users_total", "Users.", &["time"])?;
    for user in ["a", "b", "c", "d"] {
        users.with(&[user])?.inc();
    }

    let mut buf = String::new();
    influx::encode(&reg, 77, &mut buf);
    let points = parse_lines(&buf);
    let m = by_measurement(&points);
    assert!(points.iter().all(|p| p.timestamp == Some(77)), "{buf}");

    assert_eq!(
        field(m["jobs_total"][0], "value"),
        Some(&Field::Int(i64::MAX))
    );
    assert_eq!(
        field(m["temperature"][0], "value"),
        Some(&Field::Float(-21.5))
    );
    assert!(!m.contains_key("broken"), "a NaN gauge is left out:\n{buf}");

    let s = h.snapshot();
    let sizes = m["sizes"][0];
    assert_eq!(field(sizes, "count"), Some(&Field::Int(5)));
    assert_eq!(field(sizes, "sum"), Some(&Field::Float(1_100.0)));
    assert_eq!(field(sizes, "min"), Some(&Field::Float(10.0)));
    assert_eq!(field(sizes, "max"), Some(&Field::Float(s.max() as f64)));
    assert_eq!(
        field(sizes, "p50"),
        Some(&Field::Float(s.value_at_quantile(0.5) as f64))
    );
    assert_eq!(
        field(sizes, "p99"),
        Some(&Field::Float(s.value_at_quantile(0.99) as f64))
    );
    let empty = m["empty"][0];
    assert_eq!(
        empty.fields,
        vec![
            ("count".to_string(), Field::Int(0)),
            ("sum".to_string(), Field::Float(0.0))
        ]
    );

    let s = t.snapshot();
    let latency = m["latency"][0];
    assert_eq!(field(latency, "count"), Some(&Field::Int(2)));
    assert_eq!(field(latency, "sum"), Some(&Field::Float(0.012)));
    assert_eq!(
        field(latency, "p90"),
        Some(&Field::Float(s.value_at_quantile(0.9) as f64 / 1e9))
    );

    // A label named `time` becomes `time_`; past the cardinality limit of
    // 2, the overflow series is tagged and the overflow counted.
    let users: Vec<_> = m["users_total"]
        .iter()
        .map(|p| (p.tags.clone(), field(p, "value").cloned()))
        .collect();
    assert_eq!(
        users,
        vec![
            (vec![("time_".into(), "a".into())], Some(Field::Int(1))),
            (vec![("time_".into(), "b".into())], Some(Field::Int(1))),
            (
                vec![("metricz_overflow".into(), "true".into())],
                Some(Field::Int(2))
            ),
        ]
    );
    let overflow = m["metricz_cardinality_overflow_total"][0];
    assert_eq!(overflow.tags, vec![("family".into(), "users_total".into())]);
    assert_eq!(field(overflow, "value"), Some(&Field::Int(2)));

    // `time` and `time_` in one family stay two distinct tag keys.
    let reg = Registry::new();
    reg.counter_vec("both_total", "Both.", &["time", "time_"])?
        .with(&["x", "y"])?
        .inc();
    let mut buf = String::new();
    influx::encode(&reg, 1, &mut buf);
    let points = parse_lines(&buf);
    assert_eq!(
        points[0].tags,
        vec![
            ("time_".to_string(), "x".to_string()),
            ("time__".to_string(), "y".to_string())
        ],
        "{buf}"
    );
    Ok(())
}

#[test]
fn line_breaks_in_tag_values_stay_on_one_line() -> TestResult {
    let reg = Registry::new();
    reg.counter_vec("c_total", "C.", &["v"])?
        .with(&["a\nb\r\nc\\"])?
        .inc();
    let mut buf = String::new();
    influx::encode(&reg, 1, &mut buf);
    assert_eq!(buf, "c_total,v=a\\nb\\r\\nc value=1i 1\n");
    Ok(())
}

// ---------------------------------------------------------------------
// The pusher's request, on a fake server.
// ---------------------------------------------------------------------

/// Accepts one connection, reads one request (head and Content-Length
/// body), answers `status`, and returns (head, body).
fn serve_one(listener: TcpListener, status: u16) -> mpsc::Receiver<(String, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, length) = loop {
            let n = stream.read(&mut chunk).expect("read");
            assert!(n > 0, "closed before the end of the head");
            data.extend_from_slice(&chunk[..n]);
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..i]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .expect("Content-Length");
                data.drain(..i + 4);
                break (head, length);
            }
        };
        while data.len() < length {
            let n = stream.read(&mut chunk).expect("read body");
            assert!(n > 0, "closed inside the body");
            data.extend_from_slice(&chunk[..n]);
        }
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops"
        )
        .unwrap();
        tx.send((head, String::from_utf8(data).unwrap())).unwrap();
    });
    rx
}

#[test]
fn the_pusher_posts_http_1_1_with_length_auth_and_database() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let requests = serve_one(listener, 204);
    let reg = Registry::new();
    reg.counter("jobs_total", "Jobs.")?.add(3);
    let pusher = InfluxPusher::builder(reg.clone(), addr.to_string(), "my db&x")
        .options(options(|o| o.interval = HOUR))
        .retention_policy("rp 1")
        .credentials("user", "pass")
        .tag("host", "h")
        .spawn()?;
    pusher.push_now()?;
    let (head, body) = requests.recv_timeout(Duration::from_secs(30))?;
    let mut lines = head.lines();
    assert_eq!(
        lines.next(),
        Some("POST /write?db=my%20db%26x&rp=rp%201&precision=ns HTTP/1.1")
    );
    let headers: Vec<&str> = lines.collect();
    assert!(
        headers.contains(&format!("Host: {addr}").as_str()),
        "{head}"
    );
    assert!(
        headers.contains(&"Authorization: Basic dXNlcjpwYXNz"),
        "{head}"
    );
    assert!(
        headers.contains(&format!("Content-Length: {}", body.len()).as_str()),
        "{head}"
    );
    let points = parse_lines(&body);
    let jobs = points
        .iter()
        .find(|p| p.measurement == "jobs_total")
        .expect("jobs_total point");
    assert_eq!(jobs.tags, vec![("host".into(), "h".into())]);
    assert_eq!(field(jobs, "value"), Some(&Field::Int(3)));
    assert_eq!(pusher.stats().pushes, 1);
    Ok(())
}

#[test]
fn a_400_drops_the_batch_and_an_error_status_keeps_it() -> TestResult {
    let reg = Registry::new();
    reg.counter("jobs_total", "Jobs.")?.inc();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let answered = serve_one(listener, 400);
    let pusher = InfluxPusher::builder(reg.clone(), addr.to_string(), "db")
        .options(options(|o| o.interval = HOUR))
        .spawn()?;
    match pusher.push_now() {
        Err(PushError::Rejected { status: 400, body }) => assert_eq!(body, "oops"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let (_, body) = answered.recv_timeout(Duration::from_secs(30))?;
    let stats = pusher.stats();
    assert_eq!((stats.failures, stats.pending_bytes), (1, 0));
    assert_eq!(stats.dropped_bytes, body.len() as u64);
    assert_eq!(stats.consecutive_failures, 0, "the sink answered: healthy");

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let answered = serve_one(listener, 503);
    let pusher = InfluxPusher::builder(reg.clone(), addr.to_string(), "db")
        .options(options(|o| o.interval = HOUR))
        .spawn()?;
    match pusher.push_now() {
        Err(PushError::Http { status: 503, .. }) => {}
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    let (_, body) = answered.recv_timeout(Duration::from_secs(30))?;
    let stats = pusher.stats();
    assert_eq!(stats.pending_bytes, body.len() as u64, "kept for a retry");
    assert_eq!((stats.dropped_bytes, stats.consecutive_failures), (0, 1));
    Ok(())
}

// ---------------------------------------------------------------------
// A real InfluxDB 1.x server.
// ---------------------------------------------------------------------

/// Gives up waiting after this many polls, 50 ms apart.
const POLLS: usize = 400;

/// `influxd` on loopback with its files in a temporary directory; killed
/// (and the directory removed) on drop, also when a test panics.
struct Influxd {
    child: Child,
    dir: PathBuf,
    http: SocketAddr,
}

impl Influxd {
    fn start() -> Influxd {
        let dir = std::env::temp_dir().join(format!(
            "metricz-influxd-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let rpc = free_port();
        let d = dir.display();
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [subscriber]\n  enabled = false\n\
             [continuous_queries]\n  enabled = false\n\
             [http]\n  bind-address = \"{http}\"\n  log-enabled = false\n\
             [logging]\n  level = \"warn\"\n  suppress-logo = true\n"
        );
        let config_path = dir.join("influxdb.conf");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .arg("-config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start influxd ({e}): install it with scripts/install-clients")
            });
        let mut server = Influxd { child, dir, http };
        for _ in 0..POLLS {
            if let Ok((204, _)) = server.request("GET", "/ping") {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("influxd exited ({status}):\n{}", server.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("influxd did not answer /ping:\n{}", server.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("influxd.log")).unwrap_or_default()
    }

    /// A request over HTTP/1.0 (so the answer is not chunked): status,
    /// body.
    fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        support::http_request(self.http, method, path)
    }

    fn query(&self, method: &str, db: &str, q: &str) -> Value {
        let path = format!("/query?db={}&q={}", url_encode(db), url_encode(q));
        let (status, body) = self
            .request(method, &path)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(status, 200, "{q}: {body}");
        let value: Value = serde_json::from_str(&body).unwrap();
        assert!(value["results"][0].get("error").is_none(), "{q}: {body}");
        value
    }

    /// The rows of `SELECT ...`, each as column → value.
    fn rows(&self, db: &str, q: &str) -> Vec<BTreeMap<String, Value>> {
        let value = self.query("GET", db, q);
        let mut rows = Vec::new();
        let Some(series) = value["results"][0]["series"].as_array() else {
            return rows;
        };
        for s in series {
            let columns: Vec<String> = s["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            for row in s["values"].as_array().unwrap() {
                let row = row.as_array().unwrap();
                rows.push(columns.iter().cloned().zip(row.iter().cloned()).collect());
            }
        }
        rows
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- influxd log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[test]
fn influxd_stores_what_the_pusher_sends() -> TestResult {
    let server = Influxd::start();
    server.query("POST", "", "CREATE DATABASE metricz_test");

    let reg = Registry::with_cardinality_limit(12);
    let requests = reg.counter_vec("requests_total", "Requests.", &["route", "status"])?;
    let routes = [
        "/a b,c=d",
        "plain",
        "back\\slash",
        "x\\,y",
        "x\\ y=z",
        "trail\\",
        "multi\nline",
        "ünïcödé",
        "",
    ];
    for (i, route) in routes.iter().enumerate() {
        requests.with(&[route, "200"])?.add(i as u64 + 1);
    }
    let users = reg.counter_vec("users_total", "Users.", &["user"])?;
    for i in 0..15 {
        users.with(&[&format!("u{i:02}")])?.inc();
    }
    reg.gauge_vec("temperature", "T.", &["room"])?
        .with(&["hall way"])?
        .set(21.25);
    reg.gauge("broken", "NaN.")?.set(f64::NAN);
    let latency = reg.timer("latency", "Latency.")?;
    for ms in [3, 3, 3, 7, 120] {
        latency.record(Duration::from_millis(ms));
    }

    let pusher = InfluxPusher::builder(reg.clone(), server.http.to_string(), "metricz_test")
        .options(options(|o| {
            o.interval = HOUR;
            o.io_timeout = Duration::from_secs(20);
        }))
        .tag("host", "test host")
        .spawn()?;
    pusher.push_now()?;
    requests.with(&["plain", "200"])?.add(100);
    pusher.push_now()?;
    assert_eq!(pusher.stats().pushes, 2);

    // The latest value of every route, as the server stores the tag.
    let rows = server.rows(
        "metricz_test",
        "SELECT last(\"value\") FROM requests_total GROUP BY \"route\", \"status\", \"host\"",
    );
    let value = server.query(
        "GET",
        "metricz_test",
        "SELECT last(\"value\") FROM requests_total GROUP BY \"route\", \"status\", \"host\"",
    );
    let mut stored: BTreeMap<String, i64> = BTreeMap::new();
    for s in value["results"][0]["series"].as_array().expect("series") {
        assert_eq!(s["tags"]["status"], "200");
        assert_eq!(s["tags"]["host"], "test host");
        let route = s["tags"]["route"].as_str().unwrap_or("").to_string();
        stored.insert(route, s["values"][0][1].as_i64().unwrap());
    }
    assert!(!rows.is_empty());
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (i, route) in routes.iter().enumerate() {
        let mut n = i as i64 + 1;
        if *route == "plain" {
            n += 100;
        }
        // The documented rules: trailing backslashes dropped, line breaks
        // as `\n`; an empty value is no tag.
        want.insert(expected_text(route), n);
    }
    assert_eq!(stored, want);

    // Two pushes: two points per series, each holding the cumulative count.
    let history = server.rows(
        "metricz_test",
        "SELECT \"value\" FROM requests_total WHERE \"route\" = 'plain'",
    );
    let values: Vec<i64> = history
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    assert_eq!(values, vec![2, 102]);

    let rows = server.rows(
        "metricz_test",
        "SELECT last(\"value\") FROM users_total WHERE \"metricz_overflow\" = 'true'",
    );
    assert_eq!(rows[0]["last"], 3, "15 users past a limit of 12");
    let rows = server.rows(
        "metricz_test",
        "SELECT last(\"value\") FROM metricz_cardinality_overflow_total WHERE \"family\" = 'users_total'",
    );
    assert_eq!(rows[0]["last"], 3);

    let rows = server.rows(
        "metricz_test",
        "SELECT last(\"value\") FROM temperature WHERE \"room\" = 'hall way'",
    );
    assert_eq!(rows[0]["last"], 21.25);

    let s = latency.snapshot();
    let rows = server.rows(
        "metricz_test",
        "SELECT last(\"count\") AS c, last(\"sum\") AS s, last(\"p50\") AS p50, last(\"p99\") AS p99, last(\"max\") AS mx FROM latency",
    );
    let row = &rows[0];
    assert_eq!(row["c"], 5);
    assert!(close(row["s"].as_f64().unwrap(), 0.136), "{row:?}");
    assert!(close(
        row["p50"].as_f64().unwrap(),
        s.value_at_quantile(0.5) as f64 / 1e9
    ));
    assert!(close(
        row["p99"].as_f64().unwrap(),
        s.value_at_quantile(0.99) as f64 / 1e9
    ));
    assert!(close(row["mx"].as_f64().unwrap(), s.max() as f64 / 1e9));

    // The NaN gauge was left out, and the batch was still accepted.
    let measurements = server
        .query("GET", "metricz_test", "SHOW MEASUREMENTS")
        .to_string();
    assert!(!measurements.contains("broken"), "{measurements}");

    // Self-metrics went along: the second batch saw the first push.
    let rows = server.rows(
        "metricz_test",
        "SELECT last(\"value\") FROM metricz_push_total WHERE \"sink\" = 'influx'",
    );
    assert_eq!(rows[0]["last"], 1);
    Ok(())
}
