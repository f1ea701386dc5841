//! Serves a live, changing registry on `/metrics`.
//!
//! ```sh
//! cargo run --example http_server --features http -- --port 9184
//! curl -s localhost:9184/metrics
//! curl -s -H 'Accept: application/openmetrics-text' localhost:9184/metrics
//! ```
//!
//! A background thread plays a small web service: it counts requests by
//! route and status, keeps an in-flight gauge, and records response sizes
//! (a histogram) and latencies (the timer `request_duration_seconds`,
//! labelled by route). The server listens on loopback, on the port given by
//! `--port` or the environment variable `METRICZ_PORT` (default 9184; 0
//! picks a free one), and prints the address it bound. It runs until killed,
//! or for `--duration SECS`.
//!
//! `--web-config FILE` takes TLS and basic-auth users from a file in the
//! Prometheus exporter toolkit's web config format (as exporters'
//! `--web.config.file`; see `metricz::export::http::WebConfig`); a bad
//! file stops the program at start with the reason:
//!
//! ```sh
//! cargo run --example http_server --features tls -- --web-config web.yml
//! curl -s --cacert ca.crt -u prometheus:s3cret https://localhost:9184/metrics
//! ```

use metricz::export::http::{Server, WebConfig};
use metricz::Registry;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "usage: http_server [--port PORT] [--duration SECS] [--web-config FILE]

Serves a live registry on http://127.0.0.1:PORT/metrics.
  --port PORT        port to listen on (default: $METRICZ_PORT, else 9184; 0: any free port)
  --duration SECS    exit after SECS seconds (default: run until killed)
  --web-config FILE  TLS and basic auth from an exporter-toolkit web config file";

struct Options {
    port: u16,
    duration: Option<Duration>,
    web_config: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut port = match std::env::var("METRICZ_PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("METRICZ_PORT={p:?} is not a port"))?,
        Err(_) => 9184,
    };
    let mut duration = None;
    let mut web_config = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?} is not a port"))?;
            }
            "--duration" => {
                let v = value("--duration")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or(format!("--duration {v:?} is not a number of seconds"))?;
                duration = Some(Duration::from_secs_f64(secs));
            }
            "--web-config" => web_config = Some(value("--web-config")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        port,
        duration,
        web_config,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("http_server: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };

    let registry = Registry::new();
    let requests = registry.counter_vec(
        "http_requests_total",
        "Requests served, by route and status.",
        &["route", "status"],
    )?;
    let in_flight = registry.gauge("http_requests_in_flight", "Requests being served.")?;
    let sizes = registry.histogram("http_response_size_bytes", "Response body sizes.")?;
    let latency = registry.timer_vec(
        "request_duration_seconds",
        "Time to serve a request, by route.",
        &["route"],
    )?;
    let uptime = registry.counter("demo_ticks_total", "Iterations of the demo load.")?;

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let routes = ["/", "/api/users", "/api/orders", "/static/app.js"];
            let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
            while !stop.load(Ordering::Relaxed) {
                // xorshift64: a dependency-free stream of pseudo-random numbers.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let route = routes[(rng % routes.len() as u64) as usize];
                let status = if rng.is_multiple_of(50) { "500" } else { "200" };
                // Latencies from about 0.2 ms to 200 ms, skewed low.
                let micros = 200 + (rng >> 40) % 1000 * ((rng >> 20) % 200 + 1);
                if let Ok(timer) = latency.with(&[route]) {
                    timer.record(Duration::from_micros(micros));
                }
                if let Ok(counter) = requests.with(&[route, status]) {
                    counter.inc();
                }
                sizes.record(100 + (rng >> 32) % 64_000);
                in_flight.set((rng % 8) as f64);
                uptime.inc();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Read and checked before anything is served: a bad file is an error
    // at start, never at the first scrape.
    let web_config = match &options.web_config {
        Some(path) => WebConfig::from_file(path).map_err(|e| format!("--web-config: {e}"))?,
        None => WebConfig::new(),
    };
    let scheme = if is_tls(&web_config) { "https" } else { "http" };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
    let server = Server::builder(registry)
        .bind(addr)
        .web_config(web_config)
        .spawn()?;
    println!("listening on {scheme}://{}/metrics", server.local_addr());
    std::io::stdout().flush()?;

    match options.duration {
        Some(duration) => std::thread::sleep(duration),
        None => loop {
            std::thread::park();
        },
    }
    server.shutdown();
    stop.store(true, Ordering::Relaxed);
    load.join().expect("the load thread panicked");
    Ok(())
}

#[cfg(feature = "tls")]
fn is_tls(config: &WebConfig) -> bool {
    config.tls_config().is_some()
}

#[cfg(not(feature = "tls"))]
fn is_tls(_: &WebConfig) -> bool {
    false
}
