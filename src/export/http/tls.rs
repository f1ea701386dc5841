//! TLS for the endpoint (feature `tls`): [`TlsConfig`], built on
//! [rustls](https://docs.rs/rustls) with its ring provider (no OpenSSL),
//! TLS 1.2 and 1.3 only, with optional client-certificate verification.
//! Everything is read and checked when the config is built, so a bad
//! certificate, key or CA fails there, never at the first connection.

use super::web_config::WebConfigError;
use crate::primitive::std_only::Arc;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::fmt;
use std::path::{Path, PathBuf};

/// A TLS protocol version the endpoint can speak; older ones are refused.
///
/// ```
/// use metricz::export::http::TlsVersion;
/// assert!(TlsVersion::Tls12 < TlsVersion::Tls13);
/// assert_eq!("TLS13".parse::<TlsVersion>().ok(), Some(TlsVersion::Tls13));
/// assert!("TLS11".parse::<TlsVersion>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (the default minimum).
    Tls12,
    /// TLS 1.3 (the default maximum).
    Tls13,
}

impl std::str::FromStr for TlsVersion {
    type Err = WebConfigError;

    /// The exporter toolkit's names: `TLS12`, `TLS13` (`TLS10` and
    /// `TLS11` are refused: the endpoint speaks TLS 1.2 and later only).
    fn from_str(s: &str) -> Result<Self, WebConfigError> {
        match s {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            _ => Err(WebConfigError::TlsVersion {
                value: s.to_string(),
            }),
        }
    }
}

/// Whether and how clients must present a certificate; the names are the
/// exporter toolkit's `client_auth_type` values.
///
/// ```
/// use metricz::export::http::ClientAuth;
/// let mode: ClientAuth = "RequireAndVerifyClientCert".parse()?;
/// assert_eq!(mode, ClientAuth::RequireAndVerifyClientCert);
/// assert!("RequireAnyClientCert".parse::<ClientAuth>().is_err());
/// # Ok::<(), metricz::export::http::WebConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for (the default).
    #[default]
    NoClientCert,
    /// A client certificate is asked for; one that is given must verify
    /// against the client CA, but a client may present none.
    VerifyClientCertIfGiven,
    /// Every client must present a certificate that verifies against the
    /// client CA (mutual TLS).
    RequireAndVerifyClientCert,
}

impl std::str::FromStr for ClientAuth {
    type Err = WebConfigError;

    /// `NoClientCert`, `VerifyClientCertIfGiven`,
    /// `RequireAndVerifyClientCert`. The toolkit's `RequestClientCert` and
    /// `RequireAnyClientCert`, which take certificates nobody verifies, are
    /// refused as [`WebConfigError::Unsupported`].
    fn from_str(s: &str) -> Result<Self, WebConfigError> {
        match s {
            "" | "NoClientCert" => Ok(ClientAuth::NoClientCert),
            "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerifyClientCert),
            "RequestClientCert" | "RequireAnyClientCert" => Err(WebConfigError::Unsupported {
                key: format!("client_auth_type: {s}"),
                reason: "a client certificate that is not verified proves nothing",
            }),
            _ => Err(WebConfigError::Invalid {
                key: "client_auth_type",
                value: s.to_string(),
            }),
        }
    }
}

/// The endpoint's TLS settings: its certificate chain and key, and
/// optionally a CA that clients' certificates must verify against. Pass it
/// to [`WebConfig::tls`](super::WebConfig::tls).
///
/// ```no_run
/// use metricz::export::http::{ClientAuth, Server, TlsConfig, TlsVersion, WebConfig};
///
/// let tls = TlsConfig::from_pem_files("server.crt", "server.key")?
///     .client_ca_file("clients-ca.crt", ClientAuth::RequireAndVerifyClientCert)?
///     .versions(TlsVersion::Tls13, TlsVersion::Tls13)?;
/// let server = Server::builder(metricz::Registry::new())
///     .bind("0.0.0.0:9184".parse()?)
///     .web_config(WebConfig::new().tls(tls))
///     .spawn()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    certs: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    client_roots: Option<Arc<RootCertStore>>,
    client_auth: ClientAuth,
    min: TlsVersion,
    max: TlsVersion,
    /// Built from the fields above whenever they change.
    server: Arc<ServerConfig>,
}

impl TlsConfig {
    /// The certificate chain (leaf first) and private key (PKCS#8, PKCS#1
    /// or SEC1) from PEM files.
    ///
    /// # Errors
    ///
    /// [`WebConfigError::Read`] when a file cannot be read,
    /// [`WebConfigError::Certificate`] or [`WebConfigError::PrivateKey`]
    /// when it holds no valid PEM of its kind, and
    /// [`WebConfigError::KeyMismatch`] when the key is not the
    /// certificate's.
    pub fn from_pem_files(
        cert_file: impl AsRef<Path>,
        key_file: impl AsRef<Path>,
    ) -> Result<Self, WebConfigError> {
        let (cert_file, key_file) = (cert_file.as_ref(), key_file.as_ref());
        Self::load(
            &read(cert_file)?,
            Some(cert_file),
            &read(key_file)?,
            Some(key_file),
        )
    }

    /// The certificate chain (leaf first) and private key as PEM text.
    ///
    /// # Errors
    ///
    /// As [`from_pem_files`](Self::from_pem_files), but for reading.
    ///
    /// ```
    /// use metricz::export::http::{TlsConfig, WebConfigError};
    /// let err = TlsConfig::from_pem(b"not a certificate", b"").err().unwrap();
    /// assert!(matches!(err, WebConfigError::Certificate { .. }));
    /// ```
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, WebConfigError> {
        Self::load(cert_pem, None, key_pem, None)
    }

    fn load(
        cert_pem: &[u8],
        cert_file: Option<&Path>,
        key_pem: &[u8],
        key_file: Option<&Path>,
    ) -> Result<Self, WebConfigError> {
        let certs = certificates(cert_pem).map_err(|message| WebConfigError::Certificate {
            path: cert_file.map(Path::to_path_buf),
            message,
        })?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| WebConfigError::PrivateKey {
                path: key_file.map(Path::to_path_buf),
                message: pem_message(&e),
            })?;
        let (min, max, client_auth) = (TlsVersion::Tls12, TlsVersion::Tls13, ClientAuth::default());
        let key = Arc::new(key);
        // The PEM items' contents are parsed here: say which file failed.
        let server = build(&certs, &key, None, client_auth, min, max).map_err(|e| match e {
            WebConfigError::Certificate {
                path: None,
                message,
            } => WebConfigError::Certificate {
                path: cert_file.map(Path::to_path_buf),
                message,
            },
            WebConfigError::PrivateKey {
                path: None,
                message,
            } => WebConfigError::PrivateKey {
                path: key_file.map(Path::to_path_buf),
                message,
            },
            other => other,
        })?;
        Ok(TlsConfig {
            certs,
            key,
            client_roots: None,
            client_auth,
            min,
            max,
            server,
        })
    }

    /// Verifies clients' certificates against the CA certificates in the
    /// PEM file `ca_file`, as `mode` says.
    ///
    /// # Errors
    ///
    /// [`WebConfigError::Read`], [`WebConfigError::ClientCa`] when the file
    /// holds no usable CA certificate, and
    /// [`WebConfigError::ClientCaWithoutClientAuth`] when `mode` is
    /// [`ClientAuth::NoClientCert`].
    pub fn client_ca_file(
        self,
        ca_file: impl AsRef<Path>,
        mode: ClientAuth,
    ) -> Result<Self, WebConfigError> {
        let ca_file = ca_file.as_ref();
        self.with_client_ca(&read(ca_file)?, Some(ca_file), mode)
    }

    /// As [`client_ca_file`](Self::client_ca_file), with the CA
    /// certificates as PEM text.
    ///
    /// # Errors
    ///
    /// As [`client_ca_file`](Self::client_ca_file), but for reading.
    pub fn client_ca_pem(self, ca_pem: &[u8], mode: ClientAuth) -> Result<Self, WebConfigError> {
        self.with_client_ca(ca_pem, None, mode)
    }

    fn with_client_ca(
        mut self,
        ca_pem: &[u8],
        ca_file: Option<&Path>,
        mode: ClientAuth,
    ) -> Result<Self, WebConfigError> {
        if mode == ClientAuth::NoClientCert {
            return Err(WebConfigError::ClientCaWithoutClientAuth);
        }
        let ca_error = |message| WebConfigError::ClientCa {
            path: ca_file.map(Path::to_path_buf),
            message,
        };
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca_pem).map_err(ca_error)? {
            roots
                .add(cert)
                .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
        }
        self.client_roots = Some(Arc::new(roots));
        self.client_auth = mode;
        self.rebuild()
    }

    /// The protocol versions spoken, `min` to `max` (default TLS 1.2 to
    /// TLS 1.3).
    ///
    /// # Errors
    ///
    /// [`WebConfigError::TlsVersionRange`] when `min` is above `max`.
    pub fn versions(mut self, min: TlsVersion, max: TlsVersion) -> Result<Self, WebConfigError> {
        if min > max {
            return Err(WebConfigError::TlsVersionRange);
        }
        self.min = min;
        self.max = max;
        self.rebuild()
    }

    /// Whether clients must present a certificate, and how it is checked.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// The rustls config the endpoint's connections use.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server)
    }

    fn rebuild(mut self) -> Result<Self, WebConfigError> {
        self.server = build(
            &self.certs,
            &self.key,
            self.client_roots.as_ref(),
            self.client_auth,
            self.min,
            self.max,
        )?;
        Ok(self)
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig")
            .field("certificates", &self.certs.len())
            .field("client_auth", &self.client_auth)
            .field("min_version", &self.min)
            .field("max_version", &self.max)
            .finish_non_exhaustive()
    }
}

/// The rustls server config of these settings, over ring, offering
/// HTTP/1.1 by ALPN.
fn build(
    certs: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    client_roots: Option<&Arc<RootCertStore>>,
    client_auth: ClientAuth,
    min: TlsVersion,
    max: TlsVersion,
) -> Result<Arc<ServerConfig>, WebConfigError> {
    static TLS12: &SupportedProtocolVersion = &rustls::version::TLS12;
    static TLS13: &SupportedProtocolVersion = &rustls::version::TLS13;
    let versions: &[&SupportedProtocolVersion] = match (min, max) {
        (TlsVersion::Tls12, TlsVersion::Tls12) => &[TLS12],
        (TlsVersion::Tls13, TlsVersion::Tls13) => &[TLS13],
        _ => &[TLS13, TLS12],
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| WebConfigError::Tls(e.to_string()))?;
    let builder = match (client_roots, client_auth) {
        (
            Some(roots),
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert,
        ) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider);
            let verifier = if client_auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| WebConfigError::ClientCa {
                path: None,
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs.to_vec(), key.clone_key())
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => WebConfigError::KeyMismatch,
            rustls::Error::InvalidCertificate(_) => WebConfigError::Certificate {
                path: None,
                message: e.to_string(),
            },
            other => WebConfigError::PrivateKey {
                path: None,
                message: other.to_string(),
            },
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate in `pem`; an error message when there is none or
/// one is malformed.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_message(&e))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_string());
    }
    Ok(certs)
}

fn pem_message(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of this kind found".to_string(),
        other => format!("malformed PEM: {other:?}"),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, WebConfigError> {
    std::fs::read(path).map_err(|source| WebConfigError::Read {
        path: PathBuf::from(path),
        source,
    })
}
