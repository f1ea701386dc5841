//! A real Prometheus server (2.42, `/usr/bin/prometheus`) scraping the
//! endpoint over TLS: with basic auth and with mutual TLS, read back
//! through its query API; and the scrapes that must fail (a wrong password,
//! no client certificate) end with `up == 0`, counted by the endpoint.
//!
//! Waiting is bounded polling; no assertion depends on timing.
#![cfg(feature = "tls")]

mod support;

use metricz::export::http::{ClientAuth, Server, ServerHandle, TlsConfig, WebConfig};
use metricz::Registry;
use std::time::Duration;
use support::prometheus::{Job, Prometheus};
use support::tls::pki;

const USER: &str = "prometheus";
const PASSWORD: &str = "s3cret";

/// The server's certificate and key from the test PKI.
fn server_tls() -> TlsConfig {
    TlsConfig::from_pem_files(&pki().server_cert, &pki().server_key).expect("the test PKI loads")
}

/// TLS with basic auth: `USER` with `PASSWORD`.
fn basic_auth_config() -> WebConfig {
    WebConfig::new()
        .tls(server_tls())
        .basic_auth_user(USER, &bcrypt::hash(PASSWORD, 4).unwrap())
        .unwrap()
}

/// Mutual TLS: clients need a certificate of the test CA.
fn mutual_tls_config() -> WebConfig {
    let tls = server_tls()
        .client_ca_file(&pki().ca_cert, ClientAuth::RequireAndVerifyClientCert)
        .unwrap();
    WebConfig::new().tls(tls)
}

fn spawn(registry: &Registry, config: WebConfig) -> ServerHandle {
    Server::builder(registry.clone())
        .bind("127.0.0.1:0".parse().unwrap())
        .web_config(config)
        .spawn()
        .expect("server starts")
}

/// The scrape config of a job over HTTPS that trusts the test CA and
/// checks the server's certificate for `localhost`, with `more` added to
/// its `tls_config` and `extra` to the job.
fn https_job(tls_more: &str, extra: &str) -> String {
    let mut yaml = format!(
        "scheme: https\ntls_config:\n  ca_file: '{}'\n  server_name: localhost\n",
        pki().ca_cert.display()
    );
    for line in tls_more.lines() {
        yaml.push_str(&format!("  {line}\n"));
    }
    yaml.push_str(extra);
    yaml
}

fn basic_auth_yaml(password: &str) -> String {
    format!("basic_auth:\n  username: {USER}\n  password: {password}\n")
}

fn client_cert_yaml() -> String {
    let pki = pki();
    format!(
        "cert_file: '{}'\nkey_file: '{}'\n",
        pki.client_cert.display(),
        pki.client_key.display()
    )
}

/// Waits (bounded) until `done` holds, checking every 10 ms.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("gave up waiting for: {what}");
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_over_mutual_tls() {
    // (a) TLS with basic auth.
    let basic_reg = Registry::new();
    basic_reg
        .counter("tls_basic_jobs_total", "Jobs run.")
        .unwrap()
        .add(42);
    let basic_server = spawn(&basic_reg, basic_auth_config());
    // (b) Mutual TLS.
    let mutual_reg = Registry::new();
    let mutual_jobs = mutual_reg
        .counter_vec("tls_mutual_jobs_total", "Jobs run.", &["kind"])
        .unwrap();
    mutual_jobs.with(&["mail"]).unwrap().add(17);

    let mutual_server = spawn(&mutual_reg, mutual_tls_config());
    let basic_job = https_job("", &basic_auth_yaml(PASSWORD));
    let mutual_job = https_job(&client_cert_yaml(), "");
    let prometheus = Prometheus::start_jobs(
        &[
            Job {
                name: "tls_basic",
                addr: basic_server.local_addr(),
                extra: &basic_job,
            },
            Job {
                name: "tls_mutual",
                addr: mutual_server.local_addr(),
                extra: &mutual_job,
            },
        ],
        &[],
    );

    prometheus.wait_up("tls_basic");
    assert_eq!(
        prometheus.value("tls_basic_jobs_total{job=\"tls_basic\"}"),
        42.0
    );
    prometheus.wait_up("tls_mutual");
    assert_eq!(
        prometheus.value("tls_mutual_jobs_total{job=\"tls_mutual\",kind=\"mail\"}"),
        17.0
    );
    // Later values arrive too: the scrapes go on.
    mutual_jobs.with(&["mail"]).unwrap().add(3);
    assert_eq!(
        prometheus.value_when(
            "tls_mutual_jobs_total{job=\"tls_mutual\",kind=\"mail\"}",
            |v| v != 17.0
        ),
        20.0
    );
    assert_eq!(prometheus.last_error("tls_basic").as_deref(), Some(""));

    for (what, server) in [
        ("basic auth", &basic_server),
        ("mutual TLS", &mutual_server),
    ] {
        let stats = server.stats();
        assert!(stats.scrapes >= 1, "{what}: {stats:?}");
        assert_eq!(
            (stats.unauthorized, stats.tls_handshake_failures),
            (0, 0),
            "{what}: {stats:?}"
        );
    }
}

#[test]
fn prometheus_scrapes_with_a_wrong_password_or_without_a_client_certificate_fail() {
    let reg = Registry::new();
    reg.counter("tls_refused_jobs_total", "Jobs run.")
        .unwrap()
        .add(5);
    // (c) TLS with basic auth, scraped with a wrong password.
    let basic_server = spawn(&reg, basic_auth_config());
    // (d) Mutual TLS, scraped over TLS without a client certificate.
    let mutual_server = spawn(&reg, mutual_tls_config());
    let wrong_password_job = https_job("", &basic_auth_yaml("not-the-password"));
    let no_cert_job = https_job("", "");
    let prometheus = Prometheus::start_jobs(
        &[
            Job {
                name: "wrong_password",
                addr: basic_server.local_addr(),
                extra: &wrong_password_job,
            },
            Job {
                name: "no_client_cert",
                addr: mutual_server.local_addr(),
                extra: &no_cert_job,
            },
        ],
        &[],
    );

    let error = prometheus.wait_down("wrong_password");
    assert!(error.contains("401"), "{error}");
    let error = prometheus.wait_down("no_client_cert");
    // Refused in the handshake (an alert), not by an HTTP status.
    assert!(error.contains("remote error: tls: "), "{error}");
    // Nothing was stored from either target.
    assert!(
        prometheus.query("tls_refused_jobs_total").is_empty(),
        "metrics stored from a refused scrape"
    );

    // The endpoints counted the refusals (the count may trail Prometheus's
    // answer by a moment), and served nothing.
    eventually("the 401s counted", || {
        basic_server.stats().unauthorized >= 1
    });
    eventually("the failed handshakes counted", || {
        mutual_server.stats().tls_handshake_failures >= 1
    });
    let stats = basic_server.stats();
    assert_eq!(
        (stats.scrapes, stats.tls_handshake_failures),
        (0, 0),
        "{stats:?}"
    );
    let stats = mutual_server.stats();
    assert_eq!((stats.scrapes, stats.unauthorized), (0, 0), "{stats:?}");
}
