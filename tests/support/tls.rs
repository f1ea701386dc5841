//! Test certificates, made once per test binary run with the `openssl` command
//! (Debian's; `scripts/install-clients` installs it), and a blocking
//! rustls client for the endpoint's TLS tests.
//!
//! The PKI: a test CA (`ca`) that signs the server's certificate (for
//! `127.0.0.1` and `localhost`) and a client certificate; a second,
//! unrelated CA (`other_ca`) that signs another client certificate, which
//! the endpoint must refuse; and a key that is no certificate's
//! (`stray_key`). All keys are P-256, PKCS#8.
//!
//! A missing `openssl` fails the test (never skips).
#![cfg(feature = "tls")]

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The files of the test PKI, in one temporary directory.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
    pub(crate) ca_cert: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
    pub(crate) other_ca_cert: PathBuf,
    pub(crate) other_client_cert: PathBuf,
    pub(crate) other_client_key: PathBuf,
    pub(crate) stray_key: PathBuf,
}

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\n\
keyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n";
const SERVER_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n\
authorityKeyIdentifier=keyid\n";
const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
extendedKeyUsage=clientAuth\nsubjectAltName=DNS:prometheus\nauthorityKeyIdentifier=keyid\n";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run openssl ({e}): run scripts/install-clients (Debian package `openssl`)"
            )
        });
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A P-256 private key (PKCS#8) in `dir/out`.
fn genkey(dir: &Path, out: &str) {
    let args = [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        out,
    ];
    openssl(dir, &args);
}

/// `name.key` (P-256, PKCS#8) and `name.crt`, signed by `ca` (self-signed
/// when `None`), with the extensions `ext`.
fn issue(dir: &Path, name: &str, ca: Option<&str>, ext: &str) {
    let (key, csr, crt, ext_file) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext_file), ext).unwrap();
    genkey(dir, &key);
    let subject = format!("/CN=metricz-test-{name}");
    openssl(
        dir,
        &["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr],
    );
    let mut args = vec!["x509", "-req", "-in", &csr, "-days", "3650", "-sha256"];
    args.extend(["-extfile", &ext_file, "-out", &crt]);
    let (ca_crt, ca_key);
    match ca {
        Some(ca) => {
            (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
            args.extend(["-CA", &ca_crt, "-CAkey", &ca_key, "-CAcreateserial"]);
        }
        None => args.extend(["-signkey", &key]),
    }
    openssl(dir, &args);
}

/// The test PKI, made on first use.
pub(crate) fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        // Under target/tmp (cargo's scratch directory for tests and
        // benches), one directory per test binary, remade each run.
        let binary = std::env::current_exe().unwrap();
        let name = binary.file_stem().unwrap().to_string_lossy().into_owned();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pki-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        issue(&dir, "ca", None, CA_EXT);
        issue(&dir, "server", Some("ca"), SERVER_EXT);
        issue(&dir, "client", Some("ca"), CLIENT_EXT);
        issue(&dir, "other-ca", None, CA_EXT);
        issue(&dir, "other-client", Some("other-ca"), CLIENT_EXT);
        genkey(&dir, "stray.key");
        Pki {
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            other_ca_cert: dir.join("other-ca.crt"),
            other_client_cert: dir.join("other-client.crt"),
            other_client_key: dir.join("other-client.key"),
            stray_key: dir.join("stray.key"),
            dir,
        }
    })
}

/// A client that trusts the test CA, presents `identity` (certificate
/// and key files) if given, and speaks `versions` (TLS 1.2 and 1.3 when
/// empty).
pub(crate) fn client_config(
    identity: Option<(&Path, &Path)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki().ca_cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let versions = if versions.is_empty() {
        rustls::ALL_VERSIONS
    } else {
        versions
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            builder
                .with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(key).unwrap())
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A TLS stream to the endpoint at `addr` (server name `localhost`),
/// handshake done; `Err` when the handshake fails.
pub(crate) fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    // TLS 1.3: the server checks the client's certificate after the
    // client considers the handshake done, and says so in an alert the
    // client reads next; a zero-length write and flush bring it in.
    stream.write_all(b"")?;
    stream.flush()?;
    Ok(stream)
}

/// `GET path` over TLS with HTTP/1.0 (so the answer is not chunked) and
/// optional `Authorization`: the status and the body, or the I/O error a
/// failed handshake or closed connection gives.
pub(crate) fn https_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    let mut stream = connect(addr, config)?;
    https_get_on(&mut stream, path, authorization)
}

/// [`https_get`] on a stream already connected (e.g. by [`connect`], to
/// look at the session first); the server closes it after the answer.
pub(crate) fn https_get_on(
    stream: &mut (impl Read + Write),
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<(u16, String, String)> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n"
    )?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // The server closes without close_notify after an HTTP/1.0 answer
        // only if it is cut off; a whole answer then still parses below.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            let text = String::from_utf8_lossy(&raw);
            std::io::Error::other(format!("no HTTP answer: {text:?}"))
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = &raw[split + 4..];
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    // A body cut short (the connection closed early) is an error, not an
    // answer.
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    if let Some(length) = length {
        if length != body.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("body of {} bytes, content-length {length}", body.len()),
            ));
        }
    }
    Ok((status, head, String::from_utf8_lossy(body).into_owned()))
}

/// A client that trusts the test CA and offers the cipher suites in the
/// order Go's `crypto/tls` prefers on a CPU with AES instructions (AES-128-GCM
/// first), as a Prometheus server scraping the endpoint does; rustls's own
/// order puts AES-256-GCM first. (rustls servers follow the client's order
/// by default.)
pub(crate) fn scraper_config() -> Arc<rustls::ClientConfig> {
    use rustls::CipherSuite;
    let mut provider = rustls::crypto::ring::default_provider();
    let rank = |suite: CipherSuite| match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        _ => 1,
    };
    provider.cipher_suites.sort_by_key(|s| rank(s.suite()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki().ca_cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
