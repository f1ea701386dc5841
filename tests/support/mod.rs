//! Helpers shared by the tests that talk to real servers over HTTP and run
//! real clients (Prometheus, promtool, Python's prometheus-client).
#![allow(dead_code)] // each test binary uses a part

pub(crate) mod clients;
pub(crate) mod fake_http;
pub(crate) mod process;
pub(crate) mod prometheus;
pub(crate) mod push;
pub(crate) mod pushgateway;
pub(crate) mod remote_prometheus;
pub(crate) mod tls;
pub(crate) mod victoria;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// `METHOD path` with an empty body over HTTP/1.0 (so the answer is not
/// chunked): the status (0 if unreadable) and the body.
pub(crate) fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    http_request_with(addr, method, path, &[])
}

/// [`http_request`] with extra request `headers` (name, value).
pub(crate) fn http_request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// `GET path` over HTTP/1.0 with extra request `headers`: the status, the
/// response head and the body as bytes.
pub(crate) fn http_request_bytes(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head, body))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A loopback TCP port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Pins the calling thread to `cpu`; false if the kernel refused (no such
/// CPU in the process's cpuset).
#[cfg(target_os = "linux")]
pub(crate) fn pin_to(cpu: usize) -> bool {
    // SAFETY: `cpu_set_t` is plain data (all-zero is the empty set); `cpu`
    // is checked against CPU_SETSIZE; the set is passed with its size.
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return false;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The CPUs the machine has configured (`sysconf(_SC_NPROCESSORS_CONF)`),
/// whatever the calling thread's affinity.
#[cfg(target_os = "linux")]
pub(crate) fn configured_cpus() -> usize {
    // SAFETY: `sysconf` only reads a setting.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    usize::try_from(n).unwrap_or(0)
}

/// A registry with one metric of every kind.
pub(crate) fn sample_registry() -> metricz::Registry {
    let reg = metricz::Registry::new();
    reg.counter("jobs_total", "Jobs run.").unwrap().add(7);
    reg.gauge("temperature_celsius", "Temperature.")
        .unwrap()
        .set(21.5);
    let routes = reg
        .counter_vec("route_requests_total", "Requests by route.", &["route"])
        .unwrap();
    routes.with(&["/a"]).unwrap().add(3);
    routes.with(&["/b"]).unwrap().inc();
    let sizes = reg.histogram("response_size_bytes", "Sizes.").unwrap();
    for v in [100, 200, 300, 4000] {
        sizes.record(v);
    }
    let timer = reg
        .timer_vec("request_duration_seconds", "Latency.", &["route"])
        .unwrap();
    timer
        .with(&["/a"])
        .unwrap()
        .record(Duration::from_millis(3));
    reg
}
