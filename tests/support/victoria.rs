//! A real VictoriaMetrics single-node server (`/usr/bin/victoria-metrics`,
//! Debian package `victoria-metrics`) that receives remote write at
//! `/api/v1/write`, read back through its Prometheus query API.
//!
//! A missing binary fails the test (never skips). Waiting is bounded
//! polling: no assertion depends on timing.

use super::process::{poll, Guard};
use super::remote_prometheus::query_value;
use super::{free_port, http_request};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

const VICTORIA: &str = "/usr/bin/victoria-metrics";

/// A VictoriaMetrics server, killed (and its directory removed) on drop.
pub(crate) struct Victoria {
    addr: SocketAddr,
    _guard: Guard,
}

impl Victoria {
    /// Starts VictoriaMetrics on a loopback port with a fresh data
    /// directory, fresh samples queryable at once, and waits until it is
    /// healthy.
    pub(crate) fn start() -> Victoria {
        assert!(
            Path::new(VICTORIA).exists(),
            "{VICTORIA} is missing: run scripts/install-clients \
             (Debian package `victoria-metrics`)"
        );
        let dir = std::env::temp_dir().join(format!(
            "metricz-victoria-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("victoria.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(VICTORIA)
            .arg(format!("-httpListenAddr={addr}"))
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .arg("-retentionPeriod=1")
            // Samples just written are searchable at once (after a flush).
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {VICTORIA}: {e}"));
        let mut guard = Guard {
            what: "victoria-metrics",
            child,
            log: Some(log),
            dir: Some(dir),
        };
        poll("victoria-metrics to be healthy", || {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("victoria-metrics exited at start: {status}");
            }
            match http_request(addr, "GET", "/health") {
                Ok((200, _)) => Some(()),
                _ => None,
            }
        });
        Victoria {
            addr,
            _guard: guard,
        }
    }

    /// The remote write endpoint.
    pub(crate) fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// Makes every sample received so far searchable.
    pub(crate) fn flush(&self) {
        let (status, body) =
            http_request(self.addr, "GET", "/internal/force_flush").expect("force a flush");
        assert_eq!(status, 200, "force_flush: {body}");
    }

    /// The single value of the instant query `promql`, waiting (bounded)
    /// until there is one.
    pub(crate) fn value(&self, promql: &str) -> f64 {
        self.flush();
        let value = query_value(self.addr, promql);
        eprintln!("victoria-metrics: {promql} = {value}");
        value
    }
}
