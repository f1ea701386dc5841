//! A real Prometheus Pushgateway (`prometheus-pushgateway`, installed by
//! `scripts/install-clients`) on a free loopback port, in memory only (no
//! persistence file), read back through its `/metrics` and its
//! `/api/v1/metrics` JSON API.
//!
//! A missing binary fails the test (never skips). Waiting is bounded
//! polling.

use super::process::{poll, Guard};
use super::{free_port, http_request};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

const PUSHGATEWAY: &str = "/usr/bin/prometheus-pushgateway";

/// A Pushgateway, killed (and its directory removed) on drop.
pub(crate) struct Gateway {
    pub(crate) addr: SocketAddr,
    guard: Option<Guard>,
}

impl Gateway {
    /// Starts a Pushgateway and waits until it is ready.
    pub(crate) fn start() -> Gateway {
        assert!(
            Path::new(PUSHGATEWAY).exists(),
            "{PUSHGATEWAY} is missing: run scripts/install-clients \
             (Debian package `prometheus-pushgateway`)"
        );
        let dir = std::env::temp_dir().join(format!(
            "metricz-pushgateway-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("pushgateway.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new(PUSHGATEWAY)
            .arg(format!("--web.listen-address={addr}"))
            // In memory only: no persistence file.
            .arg("--persistence.file=")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PUSHGATEWAY}: {e}"));
        let mut guard = Guard {
            what: "pushgateway",
            child,
            log: Some(log),
            dir: Some(dir),
        };
        poll("the pushgateway to be ready", || {
            if let Ok(Some(status)) = guard.child.try_wait() {
                panic!("the pushgateway exited at start: {status}");
            }
            match http_request(addr, "GET", "/-/ready") {
                Ok((200, _)) => Some(()),
                _ => None,
            }
        });
        Gateway {
            addr,
            guard: Some(guard),
        }
    }

    /// Kills the Pushgateway (its port then refuses connections).
    pub(crate) fn stop(&mut self) {
        self.guard = None;
    }

    /// `/metrics`: the Pushgateway's exposition of every group.
    pub(crate) fn metrics(&self) -> String {
        let (status, body) = http_request(self.addr, "GET", "/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `/api/v1/metrics`: every group, as the JSON API's `data` array.
    pub(crate) fn groups(&self) -> Vec<serde_json::Value> {
        let (status, body) =
            http_request(self.addr, "GET", "/api/v1/metrics").expect("GET /api/v1/metrics");
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
        assert_eq!(json["status"], "success", "{body}");
        json["data"].as_array().expect("a data array").clone()
    }

    /// The group whose grouping labels (job included) are exactly
    /// `labels`, if there is one.
    pub(crate) fn group(&self, labels: &[(&str, &str)]) -> Option<serde_json::Value> {
        let wanted: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        self.groups()
            .into_iter()
            .find(|g| g["labels"].as_object() == Some(&wanted))
    }
}
