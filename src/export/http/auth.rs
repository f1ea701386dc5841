//! Authentication of the endpoint's requests: basic auth against
//! bcrypt-hashed passwords and bearer tokens, as configured by a
//! [`WebConfig`](super::WebConfig). The check runs before a request is
//! routed, so a request without valid credentials never reaches the
//! encoder; it is answered `401` with a `WWW-Authenticate` challenge.
//!
//! Like the exporter toolkit's, a basic-auth check costs one bcrypt
//! verification (about 50 ms at the usual cost of 10) the first time a
//! user's password is seen and every time a wrong one is; a password that
//! verified is kept, one per user, and compared in constant time after
//! that, so a scraper that presents the same credentials every time pays
//! the bcrypt cost once. An unknown user's password is verified against a
//! known user's hash all the same (and refused), so the answer's timing
//! does not tell which user names exist.

use crate::primitive::std_only::Mutex;
use base64::Engine as _;
use hyper::header::HeaderValue;
use std::collections::{BTreeMap, HashMap};
use subtle::ConstantTimeEq;

/// The `WWW-Authenticate` challenges of a `401`, one per scheme accepted.
const BASIC_CHALLENGE: &str = "Basic realm=\"metricz\", charset=\"UTF-8\"";
const BEARER_CHALLENGE: &str = "Bearer realm=\"metricz\"";

/// Checks the `Authorization` header of requests; built from a
/// [`WebConfig`](super::WebConfig)'s users and tokens.
pub(crate) struct Authenticator {
    /// User name → bcrypt hash (validated when the config was built).
    users: BTreeMap<String, String>,
    tokens: Vec<Vec<u8>>,
    /// User name → the last password that verified against its hash.
    verified: Mutex<HashMap<String, Vec<u8>>>,
}

impl Authenticator {
    /// Checks requests against `users` (name → bcrypt hash) and `tokens`;
    /// with neither, every request is allowed.
    pub(crate) fn new(users: BTreeMap<String, String>, tokens: Vec<Vec<u8>>) -> Self {
        Authenticator {
            users,
            tokens,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any credential is required.
    pub(crate) fn is_enabled(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// Whether a request whose `Authorization` header is `authorization`
    /// may be answered.
    pub(crate) fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        if !self.is_enabled() {
            return true;
        }
        let Some((scheme, credentials)) = authorization.and_then(|v| split_scheme(v.as_bytes()))
        else {
            return false;
        };
        if scheme.eq_ignore_ascii_case(b"basic") {
            !self.users.is_empty() && self.allows_basic(credentials)
        } else if scheme.eq_ignore_ascii_case(b"bearer") {
            self.allows_bearer(credentials)
        } else {
            false
        }
    }

    fn allows_basic(&self, credentials: &[u8]) -> bool {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
            return false;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return false;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let Ok(user) = std::str::from_utf8(user) else {
            return false;
        };
        let (known, hash) = match self.users.get(user) {
            Some(hash) => (true, hash),
            // Verified all the same, against a real hash of the same cost
            // as the others, and refused: the time taken does not tell
            // which users exist.
            None => match self.users.values().next() {
                Some(hash) => (false, hash),
                None => return false,
            },
        };
        if known {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cached) = verified.get(user) {
                if bool::from(cached.as_slice().ct_eq(password)) {
                    return true;
                }
            }
        }
        let matches = bcrypt::verify(password, hash).unwrap_or(false);
        if known && matches {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            verified.insert(user.to_string(), password.to_vec());
        }
        known && matches
    }

    fn allows_bearer(&self, token: &[u8]) -> bool {
        // Every token is compared, in constant time, whichever matches.
        let mut any = subtle::Choice::from(0);
        for known in &self.tokens {
            any |= known.as_slice().ct_eq(token);
        }
        bool::from(any)
    }

    /// The `WWW-Authenticate` values of a `401`: one per scheme accepted.
    pub(crate) fn challenges(&self) -> impl Iterator<Item = HeaderValue> + '_ {
        let basic = (!self.users.is_empty()).then_some(BASIC_CHALLENGE);
        let bearer = (!self.tokens.is_empty()).then_some(BEARER_CHALLENGE);
        basic
            .into_iter()
            .chain(bearer)
            .map(HeaderValue::from_static)
    }
}

/// `Scheme credentials` → (scheme, credentials), the credentials trimmed
/// of surrounding blanks; `None` without both.
fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let value = value.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = (&value[..space], value[space..].trim_ascii());
    (!scheme.is_empty() && !rest.is_empty()).then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn users(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(user, password)| (user.to_string(), bcrypt::hash(password, 4).unwrap()))
            .collect()
    }

    #[test]
    fn without_users_or_tokens_everything_is_allowed() {
        let auth = Authenticator::new(BTreeMap::new(), Vec::new());
        assert!(!auth.is_enabled());
        assert!(auth.allows(None));
        assert_eq!(auth.challenges().count(), 0);
    }

    #[test]
    fn basic_auth_takes_the_right_password_only() {
        let auth = Authenticator::new(
            users(&[("alice", "s3cret"), ("bob", "hunter2")]),
            Vec::new(),
        );
        assert!(auth.allows(Some(&basic("alice", "s3cret"))));
        assert!(auth.allows(Some(&basic("bob", "hunter2"))));
        // Twice: the second time from the cache.
        assert!(auth.allows(Some(&basic("alice", "s3cret"))));
        assert!(!auth.allows(Some(&basic("alice", "hunter2"))));
        assert!(!auth.allows(Some(&basic("alice", "s3cret "))));
        assert!(!auth.allows(Some(&basic("alice", ""))));
        assert!(!auth.allows(Some(&basic("carol", "s3cret"))));
        assert!(!auth.allows(Some(&basic("Alice", "s3cret"))));
        assert!(!auth.allows(None));
        // A cached password is not a key to another user.
        assert!(!auth.allows(Some(&basic("bob", "s3cret"))));
        // The scheme's case does not matter; its name does.
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        for (header, allowed) in [
            (format!("basic {encoded}"), true),
            (format!("BASIC  {encoded} "), true),
            (format!("Bearer {encoded}"), false),
            (format!("Basic{encoded}"), false),
            ("Basic !!notbase64".to_string(), false),
            (
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("alice")
                ),
                false,
            ),
        ] {
            let value = HeaderValue::from_str(&header).unwrap();
            assert_eq!(auth.allows(Some(&value)), allowed, "{header}");
        }
        let challenges: Vec<_> = auth.challenges().collect();
        assert_eq!(challenges, ["Basic realm=\"metricz\", charset=\"UTF-8\""]);
    }

    #[test]
    fn a_password_with_a_colon_keeps_it() {
        let auth = Authenticator::new(users(&[("alice", "a:b")]), Vec::new());
        assert!(auth.allows(Some(&basic("alice", "a:b"))));
        assert!(!auth.allows(Some(&basic("alice", "a"))));
    }

    #[test]
    fn bearer_tokens_match_whole() {
        let auth = Authenticator::new(
            BTreeMap::new(),
            vec![b"token-one".to_vec(), b"token-two".to_vec()],
        );
        for (header, allowed) in [
            ("Bearer token-one", true),
            ("bearer token-two", true),
            ("Bearer token-on", false),
            ("Bearer token-one2", false),
            ("Bearer ", false),
            ("Token token-one", false),
        ] {
            let value = HeaderValue::from_str(header).unwrap();
            assert_eq!(auth.allows(Some(&value)), allowed, "{header}");
        }
        // No basic users: basic credentials are refused outright.
        assert!(!auth.allows(Some(&basic("token-one", "token-one"))));
        let challenges: Vec<_> = auth.challenges().collect();
        assert_eq!(challenges, ["Bearer realm=\"metricz\""]);
    }

    #[test]
    fn basic_and_bearer_together_take_either() {
        let auth = Authenticator::new(users(&[("alice", "pw")]), vec![b"tok".to_vec()]);
        assert!(auth.allows(Some(&basic("alice", "pw"))));
        assert!(auth.allows(Some(&HeaderValue::from_static("Bearer tok"))));
        assert!(!auth.allows(Some(&HeaderValue::from_static("Bearer pw"))));
        assert_eq!(auth.challenges().count(), 2);
    }
}
