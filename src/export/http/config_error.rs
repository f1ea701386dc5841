//! [`WebConfigError`]: why a [`WebConfig`](super::WebConfig) or a TLS
//! config could not be built.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a [`WebConfig`](super::WebConfig) (or a [`TlsConfig`](super::TlsConfig)) could not be
/// built. No variant carries a password, hash, token or key.
///
/// ```
/// use metricz::export::http::{WebConfig, WebConfigError};
/// let err = WebConfig::from_file("/nonexistent/web.yml").err().unwrap();
/// assert!(matches!(err, WebConfigError::Read { .. }));
/// assert!(err.to_string().starts_with("cannot read /nonexistent/web.yml"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum WebConfigError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The config is not valid YAML of the web config's shape: malformed,
    /// an unknown key, a value of the wrong type.
    Parse {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What the YAML parser said.
        message: String,
    },
    /// A setting the exporter toolkit knows that this endpoint does not do.
    Unsupported {
        /// The key (and value, where the value is what is unsupported).
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A value that is not one the key takes.
    Invalid {
        /// The key.
        key: &'static str,
        /// The value (for a secret, only its length).
        value: String,
    },
    /// A TLS section lacks a required key.
    Missing {
        /// The key.
        key: &'static str,
    },
    /// The config asks for TLS, but metricz was built without the `tls`
    /// feature.
    TlsNotEnabled,
    /// No valid certificate in the certificate PEM.
    Certificate {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// No valid private key in the key PEM.
    PrivateKey {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// The private key is not the certificate's.
    KeyMismatch,
    /// No usable CA certificate in the client CA PEM.
    ClientCa {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// A client CA was given with [`ClientAuth::NoClientCert`]
    /// (as the toolkit, this is refused rather than ignored).
    ///
    /// [`ClientAuth::NoClientCert`]: super::ClientAuth::NoClientCert
    ClientCaWithoutClientAuth,
    /// A TLS version other than `TLS12` and `TLS13`.
    TlsVersion {
        /// The value given.
        value: String,
    },
    /// The minimum TLS version is above the maximum.
    TlsVersionRange,
    /// rustls refused the settings.
    Tls(String),
    /// A basic-auth user's hash is not a bcrypt hash.
    BcryptHash {
        /// The user.
        user: String,
    },
}

impl fmt::Display for WebConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = |path: &Option<PathBuf>| match path {
            Some(path) => format!(" in {}", path.display()),
            None => String::new(),
        };
        match self {
            WebConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            WebConfigError::Parse { path, message } => {
                write!(f, "invalid web config{}: {message}", from(path))
            }
            WebConfigError::Unsupported { key, reason } => {
                write!(f, "web config setting `{key}` is not supported: {reason}")
            }
            WebConfigError::Invalid { key, value } => {
                write!(f, "invalid value for `{key}`: {value}")
            }
            WebConfigError::Missing { key } => {
                write!(f, "`tls_server_config` needs `{key}`")
            }
            WebConfigError::TlsNotEnabled => write!(
                f,
                "the web config asks for TLS, but metricz was built without the `tls` feature"
            ),
            WebConfigError::Certificate { path, message } => {
                write!(f, "no usable certificate{}: {message}", from(path))
            }
            WebConfigError::PrivateKey { path, message } => {
                write!(f, "no usable private key{}: {message}", from(path))
            }
            WebConfigError::KeyMismatch => {
                write!(f, "the private key does not belong to the certificate")
            }
            WebConfigError::ClientCa { path, message } => {
                write!(f, "no usable client CA{}: {message}", from(path))
            }
            WebConfigError::ClientCaWithoutClientAuth => write!(
                f,
                "a client CA is configured, but client_auth_type is NoClientCert"
            ),
            WebConfigError::TlsVersion { value } => write!(
                f,
                "unsupported TLS version `{value}` (TLS12 and TLS13 are supported)"
            ),
            WebConfigError::TlsVersionRange => {
                write!(f, "min_version is above max_version")
            }
            WebConfigError::Tls(message) => write!(f, "TLS settings refused: {message}"),
            WebConfigError::BcryptHash { user } => {
                write!(
                    f,
                    "the password hash of basic-auth user `{user}` is not a bcrypt hash"
                )
            }
        }
    }
}

impl std::error::Error for WebConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WebConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
