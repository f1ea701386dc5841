//! A service instrumented only with the `metrics` macros, recorded into a
//! metricz registry and served on `/metrics`: all it takes to switch a
//! `metrics`-instrumented program to metricz is `facade::install` and an
//! endpoint (both marked below).
//!
//! ```sh
//! cargo run --example facade --features http -- --port 9184 --requests 1000
//! curl -s localhost:9184/metrics
//! ```
//!
//! It serves `--requests N` simulated requests (default 1000) on four
//! worker threads, then keeps serving `/metrics` on loopback until killed.
//! It prints the address it bound (`--port 0` picks a free port). The
//! workload is fixed, so its metrics can be checked: request `i` is
//! `GET /users/<i>` for even `i`, `GET /orders/<i>` for odd `i`; it takes
//! 300 ms when `i % 10 == 0` and 2 ms otherwise; it is a 404 when
//! `i % 10 == 5`. Latencies are simulated (recorded, not slept), so the
//! workload takes no time.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metricz::export::http::Server;
use metricz::{facade, Registry};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

const USAGE: &str = "usage: facade [--port PORT] [--requests N]

Serves N simulated requests, then serves their metrics on
http://127.0.0.1:PORT/metrics until killed.
  --port PORT   port to listen on (default 9184; 0: any free port)
  --requests N  simulated requests to serve first (default 1000)";

/// Worker threads sharing the workload.
const WORKERS: u64 = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (port, requests) = parse_args().unwrap_or_else(|e| {
        eprintln!("facade: {e}\n{USAGE}");
        std::process::exit(2);
    });

    // The switch to metricz: every `metrics` macro below, and in any
    // library the program uses, now records into `registry`.
    let registry = Registry::new();
    facade::install(registry.clone())?;

    // Descriptions become HELP. Describe a histogram (or name it
    // `…_seconds`) before its first record: its unit sets its resolution.
    describe_counter!(
        "http_requests_total",
        "Requests served, by method and status."
    );
    describe_counter!(
        "http_response_bytes_total",
        Unit::Bytes,
        "Response bytes sent, by route."
    );
    describe_gauge!("http_requests_in_flight", "Requests being served.");
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to serve a request, by route."
    );

    std::thread::scope(|s| {
        for worker in 0..WORKERS {
            s.spawn(move || {
                for i in (worker..requests).step_by(WORKERS as usize) {
                    serve(i);
                }
            });
        }
    });

    // The registry's endpoint (`metricz::export::http`, feature `http`).
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = Server::builder(registry).bind(addr).spawn()?;
    println!("listening on http://{}/metrics", server.local_addr());
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}

/// Handles simulated request `i` (see the module docs), instrumented as a
/// real handler would be.
fn serve(i: u64) {
    gauge!("http_requests_in_flight").increment(1.0);
    let path = if i.is_multiple_of(2) {
        format!("/users/{i}")
    } else {
        format!("/orders/{i}")
    };
    // A real handler measures `Instant::now()` to `elapsed()`; a `Duration`
    // is recorded in seconds.
    let latency = Duration::from_millis(if i.is_multiple_of(10) { 300 } else { 2 });
    let bytes = if i % 10 == 5 {
        // Literal labels: the macro keeps the whole key in a `static`.
        counter!("http_requests_total", "method" => "GET", "status" => "404").increment(1);
        9
    } else {
        counter!("http_requests_total", "method" => "GET", "status" => "200").increment(1);
        512
    };
    // A label value computed at runtime; keep such values few (a route,
    // not a path), as each is a series.
    let route = route(&path);
    counter!("http_response_bytes_total", "route" => route.clone()).increment(bytes);
    histogram!("http_request_duration_seconds", "route" => route).record(latency);
    gauge!("http_requests_in_flight").decrement(1.0);
}

/// The route a path matched: its numeric id replaced by `:id`.
fn route(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((prefix, id)) if id.parse::<u64>().is_ok() => format!("{prefix}/:id"),
        _ => path.to_string(),
    }
}

/// `(port, requests)` from the command line.
fn parse_args() -> Result<(u16, u64), String> {
    let (mut port, mut requests) = (9184, 1000);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let bad = |_| format!("{arg} {value:?} is not a number");
        match arg.as_str() {
            "--port" => port = value.parse().map_err(bad)?,
            "--requests" => requests = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok((port, requests))
}
