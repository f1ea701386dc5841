//! [`WebConfig`]: TLS and authentication for the endpoint, in code or from
//! a file in the Prometheus exporter toolkit's web configuration format,
//! and [`WebConfigError`], why one could not be built.

pub use super::config_error::WebConfigError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

#[cfg(feature = "tls")]
use super::tls::{ClientAuth, TlsConfig, TlsVersion};

/// TLS and authentication for the endpoint: pass it to
/// [`ServerBuilder::web_config`](super::ServerBuilder::web_config).
///
/// Built in code, or read from a file in the format of the Prometheus
/// exporter toolkit's `--web.config.file` (so one file can serve an
/// exporter and a metricz program alike):
///
/// ```yaml
/// tls_server_config:            # feature `tls`
///   cert_file: server.crt       # PEM; relative paths are taken from the
///   key_file: server.key        # file's own directory
///   client_auth_type: RequireAndVerifyClientCert
///   client_ca_file: clients-ca.crt
///   min_version: TLS12          # TLS12 (default) or TLS13
///   max_version: TLS13
/// basic_auth_users:             # user: bcrypt hash
///   prometheus: $2y$10$...
/// ```
///
/// Everything is read and checked when the config is built: a missing or
/// malformed certificate, a key that is not the certificate's, a hash that
/// is not bcrypt, an unknown or unsupported setting all fail there, with a
/// [`WebConfigError`], never at the first request. Keys the toolkit knows
/// but this endpoint does not do (`cipher_suites`, `curve_preferences`,
/// `prefer_server_cipher_suites`, `client_allowed_sans`, the inline `cert`,
/// `key` and `client_ca`, `http_server_config.headers`, `rate_limit`) are
/// refused as [`WebConfigError::Unsupported`] rather than ignored;
/// `http_server_config.http2` is taken and HTTP/1.1 served either way. As
/// in the toolkit, an empty string is no value, and a
/// `tls_server_config` with nothing set means no TLS.
///
/// Bearer tokens, which the toolkit's file has no place for, are set in
/// code with [`bearer_token`](Self::bearer_token).
///
/// ```
/// use metricz::export::http::{Server, WebConfig};
///
/// // A bcrypt hash, as `htpasswd -nbBC 10 prometheus s3cret` prints it.
/// let hash = bcrypt::hash("s3cret", 4)?;
/// let config = WebConfig::from_yaml(
///     &format!("basic_auth_users:\n  prometheus: {hash}\n"),
///     ".",
/// )?;
/// let server = Server::builder(metricz::Registry::new())
///     .bind("127.0.0.1:0".parse()?)
///     .web_config(config)
///     .spawn()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct WebConfig {
    #[cfg(feature = "tls")]
    tls: Option<TlsConfig>,
    users: BTreeMap<String, String>,
    tokens: Vec<String>,
}

impl WebConfig {
    /// No TLS and no authentication (the endpoint's default).
    pub fn new() -> Self {
        WebConfig::default()
    }

    /// Reads a web config file (the exporter toolkit's YAML format); paths
    /// in it are taken relative to the file's directory.
    ///
    /// # Errors
    ///
    /// [`WebConfigError::Read`] when the file (or a file it names) cannot
    /// be read, [`WebConfigError::Parse`] when it is not such a YAML file,
    /// and the errors of [`from_yaml`](Self::from_yaml).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, WebConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, dir).map_err(|e| match e {
            WebConfigError::Parse {
                path: None,
                message,
            } => WebConfigError::Parse {
                path: Some(path.to_path_buf()),
                message,
            },
            other => other,
        })
    }

    /// A web config from YAML text; relative paths in it are taken from
    /// `base_dir`.
    ///
    /// # Errors
    ///
    /// [`WebConfigError::Parse`] for malformed YAML, an unknown key or a
    /// value of the wrong type; [`WebConfigError::Unsupported`] for a key
    /// of the toolkit's this endpoint does not do;
    /// [`WebConfigError::Missing`] for a TLS section without a
    /// certificate or key; [`WebConfigError::TlsNotEnabled`] for a TLS
    /// section without the `tls` feature; and the errors of
    /// [`TlsConfig`](super::TlsConfig) and
    /// [`basic_auth_user`](Self::basic_auth_user).
    ///
    /// ```
    /// use metricz::export::http::{WebConfig, WebConfigError};
    ///
    /// let err = WebConfig::from_yaml("basic_auth_users:\n  alice: plaintext\n", ".").err().unwrap();
    /// assert!(matches!(err, WebConfigError::BcryptHash { ref user } if user == "alice"));
    /// let err = WebConfig::from_yaml("tls_config: {}\n", ".").err().unwrap();
    /// assert!(matches!(err, WebConfigError::Parse { .. }));
    /// ```
    pub fn from_yaml(text: &str, base_dir: impl AsRef<Path>) -> Result<Self, WebConfigError> {
        Self::parse(text, base_dir.as_ref())
    }

    fn parse(text: &str, dir: &Path) -> Result<Self, WebConfigError> {
        let file: file::WebConfigFile = if text.trim().is_empty() {
            file::WebConfigFile::default()
        } else {
            serde_norway::from_str(text).map_err(|e| WebConfigError::Parse {
                path: None,
                message: redact_quoted(&e.to_string()),
            })?
        };
        if file.rate_limit.is_some() {
            return Err(WebConfigError::Unsupported {
                key: "rate_limit".to_string(),
                reason: "the endpoint bounds connections and password checks instead",
            });
        }
        if let Some(http) = file.http_server_config {
            // `http2`, either way: HTTP/1.1 is served, which every
            // Prometheus client speaks.
            if http.headers.is_some() {
                return Err(WebConfigError::Unsupported {
                    key: "http_server_config.headers".to_string(),
                    reason: "the endpoint's response headers are fixed",
                });
            }
        }
        let mut config = WebConfig::new();
        for (user, hash) in file.basic_auth_users.unwrap_or_default() {
            config = config.basic_auth_user(&user, &hash)?;
        }
        if let Some(tls) = file
            .tls_server_config
            .map(file::TlsServerConfig::normalized)
        {
            if !tls.is_empty() {
                config = config.tls_from_file(tls, dir)?;
            }
        }
        Ok(config)
    }

    #[cfg(not(feature = "tls"))]
    fn tls_from_file(self, _: file::TlsServerConfig, _: &Path) -> Result<Self, WebConfigError> {
        Err(WebConfigError::TlsNotEnabled)
    }

    #[cfg(feature = "tls")]
    fn tls_from_file(self, tls: file::TlsServerConfig, dir: &Path) -> Result<Self, WebConfigError> {
        tls.refuse_unsupported()?;
        let cert = tls
            .cert_file
            .ok_or(WebConfigError::Missing { key: "cert_file" })?;
        let key = tls
            .key_file
            .ok_or(WebConfigError::Missing { key: "key_file" })?;
        let mut config = TlsConfig::from_pem_files(dir.join(cert), dir.join(key))?;
        let mode: ClientAuth = tls.client_auth_type.as_deref().unwrap_or("").parse()?;
        match (tls.client_ca_file, mode) {
            (Some(ca), _) => config = config.client_ca_file(dir.join(ca), mode)?,
            (None, ClientAuth::NoClientCert) => {}
            (None, _) => {
                return Err(WebConfigError::Missing {
                    key: "client_ca_file",
                })
            }
        }
        let version = |v: Option<String>, default| v.map_or(Ok(default), |v| v.parse());
        let min = version(tls.min_version, TlsVersion::Tls12)?;
        let max = version(tls.max_version, TlsVersion::Tls13)?;
        config = config.versions(min, max)?;
        Ok(self.tls(config))
    }

    /// Serves over TLS with `tls`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The TLS settings, if the endpoint serves over TLS.
    #[cfg(feature = "tls")]
    pub fn tls_config(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }

    /// Requires basic auth, and lets `user` in with the password whose
    /// bcrypt hash is `bcrypt_hash` (`$2a$`, `$2b$`, `$2x$` or `$2y$`, as
    /// `htpasswd -B` and the exporter toolkit's docs make them). Several
    /// users may be added; a user added twice keeps the last hash.
    ///
    /// # Errors
    ///
    /// [`WebConfigError::BcryptHash`] when the hash is not a bcrypt hash
    /// (or its cost is outside bcrypt's 4 to 31),
    /// [`WebConfigError::Invalid`] for an empty user name or one with a
    /// `:` (which basic auth cannot carry).
    ///
    /// ```
    /// use metricz::export::http::WebConfig;
    /// let config = WebConfig::new().basic_auth_user("prometheus", &bcrypt::hash("s3cret", 4)?)?;
    /// assert!(config.requires_auth());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn basic_auth_user(
        mut self,
        user: &str,
        bcrypt_hash: &str,
    ) -> Result<Self, WebConfigError> {
        if user.is_empty() || user.contains(':') {
            return Err(WebConfigError::Invalid {
                key: "basic_auth_users",
                value: user.to_string(),
            });
        }
        // bcrypt's own parser takes any two-digit cost; a cost outside
        // bcrypt's 4..=31 could never verify.
        let cost = bcrypt_hash
            .parse::<bcrypt::HashParts>()
            .map(|p| p.get_cost());
        if !matches!(cost, Ok(4..=31)) {
            return Err(WebConfigError::BcryptHash {
                user: user.to_string(),
            });
        }
        self.users.insert(user.to_string(), bcrypt_hash.to_string());
        Ok(self)
    }

    /// Requires authentication, and lets in a request that carries
    /// `Authorization: Bearer <token>` (as Prometheus's `authorization`
    /// scrape setting sends). Several tokens may be added; with basic-auth
    /// users as well, either credential lets a request in. A token is
    /// compared in constant time with every configured token of its length
    /// (a length that differs is told at once: use tokens of one length,
    /// such as 32 random bytes in base64).
    ///
    /// # Errors
    ///
    /// [`WebConfigError::Invalid`] for an empty token, or one with
    /// characters a header value cannot carry (controls, spaces at either
    /// end).
    ///
    /// ```
    /// use metricz::export::http::WebConfig;
    /// let config = WebConfig::new().bearer_token("c2VjcmV0LXRva2Vu")?;
    /// assert!(config.requires_auth());
    /// assert!(WebConfig::new().bearer_token("").is_err());
    /// # Ok::<(), metricz::export::http::WebConfigError>(())
    /// ```
    pub fn bearer_token(mut self, token: &str) -> Result<Self, WebConfigError> {
        let valid = !token.is_empty()
            && token.trim() == token
            && token.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !valid {
            // Never the token itself.
            return Err(WebConfigError::Invalid {
                key: "bearer_token",
                value: format!("<{} bytes, not a header value>", token.len()),
            });
        }
        self.tokens.push(token.to_string());
        Ok(self)
    }

    /// Whether requests must carry credentials.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// The basic-auth user names.
    ///
    /// ```
    /// use metricz::export::http::WebConfig;
    /// let config = WebConfig::new().basic_auth_user("alice", &bcrypt::hash("pw", 4)?)?;
    /// assert_eq!(config.basic_auth_users().collect::<Vec<_>>(), ["alice"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn basic_auth_users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The users and tokens, for the server.
    pub(crate) fn credentials(&self) -> (BTreeMap<String, String>, Vec<Vec<u8>>) {
        let tokens = self.tokens.iter().map(|t| t.as_bytes().to_vec()).collect();
        (self.users.clone(), tokens)
    }
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // User names, never hashes or tokens.
        let mut s = f.debug_struct("WebConfig");
        #[cfg(feature = "tls")]
        s.field("tls", &self.tls);
        s.field("basic_auth_users", &self.users.keys().collect::<Vec<_>>())
            .field("bearer_tokens", &self.tokens.len())
            .finish()
    }
}

/// `message` with every double-quoted string replaced by `"…"`: a YAML
/// error quotes the value it could not take, which may be a password hash
/// (`alice:$2y$...` written without the space). Field names, which serde
/// quotes with backticks, stay.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if quoted {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// The file's shape, as serde reads it.
mod file {
    use super::WebConfigError;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub(super) struct WebConfigFile {
        pub(super) tls_server_config: Option<TlsServerConfig>,
        pub(super) http_server_config: Option<HttpServerConfig>,
        pub(super) basic_auth_users: Option<BTreeMap<String, String>>,
        pub(super) rate_limit: Option<serde_norway::Value>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub(super) struct HttpServerConfig {
        #[allow(dead_code)] // accepted either way: HTTP/1.1 is served
        pub(super) http2: Option<bool>,
        pub(super) headers: Option<serde_norway::Value>,
    }

    #[derive(Deserialize, Default, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub(super) struct TlsServerConfig {
        pub(super) cert_file: Option<String>,
        pub(super) key_file: Option<String>,
        pub(super) client_auth_type: Option<String>,
        pub(super) client_ca_file: Option<String>,
        pub(super) min_version: Option<String>,
        pub(super) max_version: Option<String>,
        pub(super) cipher_suites: Option<serde_norway::Value>,
        pub(super) curve_preferences: Option<serde_norway::Value>,
        pub(super) prefer_server_cipher_suites: Option<serde_norway::Value>,
        pub(super) client_allowed_sans: Option<serde_norway::Value>,
        pub(super) cert: Option<serde_norway::Value>,
        pub(super) key: Option<serde_norway::Value>,
        pub(super) client_ca: Option<serde_norway::Value>,
    }

    impl TlsServerConfig {
        /// The section with empty strings as no values, as in the toolkit.
        pub(super) fn normalized(mut self) -> Self {
            for field in [
                &mut self.cert_file,
                &mut self.key_file,
                &mut self.client_auth_type,
                &mut self.client_ca_file,
                &mut self.min_version,
                &mut self.max_version,
            ] {
                if field.as_deref() == Some("") {
                    *field = None;
                }
            }
            self
        }

        /// A section with nothing set means no TLS, as in the toolkit.
        pub(super) fn is_empty(&self) -> bool {
            *self == TlsServerConfig::default()
        }

        #[cfg_attr(not(feature = "tls"), allow(dead_code))]
        pub(super) fn refuse_unsupported(&self) -> Result<(), WebConfigError> {
            let unsupported = [
                ("cipher_suites", self.cipher_suites.is_some()),
                ("curve_preferences", self.curve_preferences.is_some()),
                (
                    "prefer_server_cipher_suites",
                    self.prefer_server_cipher_suites.is_some(),
                ),
                ("client_allowed_sans", self.client_allowed_sans.is_some()),
            ];
            if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
                return Err(WebConfigError::Unsupported {
                    key: key.to_string(),
                    reason:
                        "rustls's defaults are used (TLS 1.2 and 1.3 suites with forward secrecy)",
                });
            }
            let inline = [
                ("cert", self.cert.is_some()),
                ("key", self.key.is_some()),
                ("client_ca", self.client_ca.is_some()),
            ];
            match inline.iter().find(|(_, set)| *set) {
                Some((key, _)) => Err(WebConfigError::Unsupported {
                    key: key.to_string(),
                    reason: "give PEM files (cert_file, key_file, client_ca_file)",
                }),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted_from_parse_errors() {
        let yaml = "basic_auth_users: alice:$2y$10$abcdefghijklmnopqrstuu\n";
        let err = WebConfig::from_yaml(yaml, ".").err().unwrap();
        let text = err.to_string();
        assert!(matches!(err, WebConfigError::Parse { .. }), "{text}");
        assert!(!text.contains("$2y$"), "{text}");
        assert_eq!(
            redact_quoted(r#"invalid type: string "secret", expected a map at line 1"#),
            r#"invalid type: string "…", expected a map at line 1"#
        );
        assert_eq!(
            redact_quoted("unknown field `tls_config`"),
            "unknown field `tls_config`"
        );
    }

    #[test]
    fn hashes_with_a_cost_bcrypt_cannot_verify_are_refused() {
        let good = bcrypt::hash("pw", 4).unwrap();
        assert!(WebConfig::new().basic_auth_user("a", &good).is_ok());
        for cost in ["03", "32", "99", "00"] {
            let bad = format!("$2b${cost}{}", &good[6..]);
            assert!(
                matches!(
                    WebConfig::new().basic_auth_user("a", &bad),
                    Err(WebConfigError::BcryptHash { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn toolkit_keys_are_taken_or_refused_by_name() {
        let unsupported = |yaml: &str| match WebConfig::from_yaml(yaml, ".") {
            Err(WebConfigError::Unsupported { key, .. }) => key,
            other => panic!("{yaml}: {other:?}"),
        };
        assert_eq!(unsupported("rate_limit:\n  interval: 1s\n"), "rate_limit");
        assert_eq!(
            unsupported("http_server_config:\n  headers:\n    X-Frame-Options: deny\n"),
            "http_server_config.headers"
        );
        // HTTP/2 on or off: HTTP/1.1 is served either way.
        for yaml in [
            "http_server_config:\n  http2: false\n",
            "http_server_config:\n  http2: true\n",
        ] {
            assert!(!WebConfig::from_yaml(yaml, ".").unwrap().requires_auth());
        }
        // Empty strings are no values: an all-empty TLS section is no TLS.
        let empty = "tls_server_config:\n  cert_file: \"\"\n  key_file: \"\"\n";
        assert!(WebConfig::from_yaml(empty, ".").is_ok());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn inline_pem_keys_are_refused_by_name() {
        for key in ["cert", "key", "client_ca"] {
            let yaml = format!("tls_server_config:\n  {key}: x\n");
            assert!(
                matches!(
                    WebConfig::from_yaml(&yaml, "."),
                    Err(WebConfigError::Unsupported { key: ref k, .. }) if k == key
                ),
                "{key}"
            );
        }
    }
}
