//! Authentication of the endpoint's requests: basic auth against
//! bcrypt-hashed passwords and bearer tokens, as configured by a
//! [`WebConfig`](super::WebConfig). The check runs before a request is
//! routed, so a request without valid credentials never reaches the
//! encoder; it is answered `401` with a `WWW-Authenticate` challenge.
//!
//! # What a check costs, and who pays
//!
//! A bearer token, or a basic-auth password this user presented and had
//! verified before, is checked at once on the server thread: a constant-time
//! comparison (per user, the last password that verified is kept). Any
//! other basic-auth password costs one bcrypt verification (about 50 ms at
//! the usual cost of 10), which must not stall the server thread that
//! serves every connection. So it runs on tokio's blocking pool, one at a
//! time (a one-permit semaphore), while the server thread goes on serving
//! other connections, handshakes and timeouts; a request waits for its turn
//! with its connection's whole-request deadline running. At most
//! [`MAX_WAITING`] requests wait at once: one more is answered `503` with
//! `Retry-After` at once (counted as rejected), so a flood of wrong passwords
//! costs at most one core and a short queue, and a scraper whose password
//! is cached is never held behind it.
//!
//! An unknown user's password is verified all the same, against the
//! configured hash of the highest cost, and refused, so that a refusal's
//! timing does not tell which user names exist (users with hashes of
//! different costs can be told apart by their own timing: give them one
//! cost). A 401 closes the connection, so one connection cannot pipeline
//! guesses.

use crate::primitive::std_only::{Arc, AtomicUsize, Mutex};
use crate::primitive::Ordering::Relaxed;
use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::collections::{BTreeMap, HashMap};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// The `WWW-Authenticate` challenges of a `401`, one per scheme accepted.
const BASIC_CHALLENGE: &str = "Basic realm=\"metricz\", charset=\"UTF-8\"";
const BEARER_CHALLENGE: &str = "Bearer realm=\"metricz\"";

/// The most requests waiting for a bcrypt verification at once.
pub(crate) const MAX_WAITING: usize = 8;

/// Checks the `Authorization` header of requests; built from a
/// [`WebConfig`](super::WebConfig)'s users and tokens.
pub(crate) struct Authenticator {
    /// User name → bcrypt hash (validated when the config was built).
    users: BTreeMap<String, String>,
    /// The hash an unknown user's password is verified against: the
    /// highest-cost one configured.
    decoy: Option<String>,
    tokens: Vec<Vec<u8>>,
    /// User name → the last password that verified against its hash.
    verified: Mutex<HashMap<String, Vec<u8>>>,
    /// One bcrypt verification at a time: its permit travels with the
    /// blocking task, so a request dropped while its password is checked
    /// (its connection closed) does not let another check start beside it.
    verifying: Arc<Semaphore>,
    /// Requests holding a [`Pending`] (waiting or verifying).
    waiting: Arc<AtomicUsize>,
}

/// What a check decided.
pub(crate) enum Check {
    /// Answer the request.
    Allowed,
    /// Answer `401`.
    Denied,
    /// Answer `503`: too many requests are waiting for bcrypt.
    Busy,
    /// A basic-auth password to verify with bcrypt
    /// ([`Authenticator::verify`]).
    Verify(Pending),
}

/// A basic-auth password waiting for its bcrypt verification; holds its
/// place in the queue ([`MAX_WAITING`]) until dropped.
pub(crate) struct Pending {
    user: String,
    password: Vec<u8>,
    hash: String,
    known: bool,
    queue: Arc<AtomicUsize>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.queue.fetch_sub(1, Relaxed);
    }
}

impl Authenticator {
    /// Checks requests against `users` (name → bcrypt hash) and `tokens`;
    /// with neither, every request is allowed.
    pub(crate) fn new(users: BTreeMap<String, String>, tokens: Vec<Vec<u8>>) -> Self {
        let decoy = users.values().max_by_key(|hash| cost(hash)).cloned();
        Authenticator {
            users,
            decoy,
            tokens,
            verified: Mutex::new(HashMap::new()),
            verifying: Arc::new(Semaphore::new(1)),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether any credential is required.
    pub(crate) fn is_enabled(&self) -> bool {
        !self.users.is_empty() || !self.tokens.is_empty()
    }

    /// Checks a request's headers: allowed, denied, or a password to
    /// verify. More than one `Authorization` header is denied (a proxy in
    /// front might read another one than this check would).
    pub(crate) fn check(&self, headers: &HeaderMap) -> Check {
        if !self.is_enabled() {
            return Check::Allowed;
        }
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Check::Denied;
        };
        let Some((scheme, credentials)) = split_scheme(value.as_bytes()) else {
            return Check::Denied;
        };
        if scheme.eq_ignore_ascii_case(b"bearer") {
            return if self.allows_bearer(credentials) {
                Check::Allowed
            } else {
                Check::Denied
            };
        }
        if !scheme.eq_ignore_ascii_case(b"basic") || self.users.is_empty() {
            return Check::Denied;
        }
        self.check_basic(credentials)
    }

    fn check_basic(&self, credentials: &[u8]) -> Check {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials) else {
            return Check::Denied;
        };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else {
            return Check::Denied;
        };
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let Ok(user) = std::str::from_utf8(user) else {
            return Check::Denied;
        };
        let (known, hash) = match (self.users.get(user), &self.decoy) {
            (Some(hash), _) => (true, hash),
            (None, Some(decoy)) => (false, decoy),
            (None, None) => return Check::Denied,
        };
        if known {
            let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cached) = verified.get(user) {
                if bool::from(cached.as_slice().ct_eq(password)) {
                    return Check::Allowed;
                }
            }
        }
        if self.waiting.fetch_add(1, Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Relaxed);
            return Check::Busy;
        }
        Check::Verify(Pending {
            user: user.to_string(),
            password: password.to_vec(),
            hash: hash.clone(),
            known,
            queue: Arc::clone(&self.waiting),
        })
    }

    /// Verifies a pending password with bcrypt on tokio's blocking pool,
    /// one verification at a time; true if the user is known and the
    /// password matches (it is then kept for the next check).
    pub(crate) async fn verify(&self, pending: Pending) -> bool {
        // Never closed, so never an error; a refusal if it were.
        let Ok(turn) = Arc::clone(&self.verifying).acquire_owned().await else {
            return false;
        };
        let (password, hash) = (pending.password.clone(), pending.hash.clone());
        let matches = tokio::task::spawn_blocking(move || {
            let matches = bcrypt::verify(&password, &hash).unwrap_or(false);
            drop(turn);
            matches
        })
        .await
        .unwrap_or(false);
        if pending.known && matches {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            verified.insert(pending.user.clone(), pending.password.clone());
        }
        pending.known && matches
    }

    fn allows_bearer(&self, token: &[u8]) -> bool {
        // Every token is compared, in constant time for tokens of the
        // given length, whichever matches (a length that differs is told
        // at once: the tokens' lengths are not secret).
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

/// A bcrypt hash's cost (`$2b$10$...` → 10); 0 if unreadable.
fn cost(hash: &str) -> u32 {
    hash.parse::<bcrypt::HashParts>()
        .map_or(0, |parts| parts.get_cost())
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

    /// Whether a request with `value` as its one `Authorization` header
    /// (none for `None`) is let in, bcrypt verification included.
    fn allows(auth: &Authenticator, value: Option<&HeaderValue>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(AUTHORIZATION, value.clone());
        }
        match auth.check(&headers) {
            Check::Allowed => true,
            Check::Denied => false,
            Check::Busy => panic!("nothing else is waiting"),
            Check::Verify(pending) => tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(auth.verify(pending)),
        }
    }

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
        assert!(allows(&auth, None));
        assert_eq!(auth.challenges().count(), 0);
    }

    #[test]
    fn basic_auth_takes_the_right_password_only() {
        let auth = Authenticator::new(
            users(&[("alice", "s3cret"), ("bob", "hunter2")]),
            Vec::new(),
        );
        assert!(allows(&auth, Some(&basic("alice", "s3cret"))));
        assert!(allows(&auth, Some(&basic("bob", "hunter2"))));
        // Twice: the second time from the cache.
        assert!(allows(&auth, Some(&basic("alice", "s3cret"))));
        assert!(!allows(&auth, Some(&basic("alice", "hunter2"))));
        assert!(!allows(&auth, Some(&basic("alice", "s3cret "))));
        assert!(!allows(&auth, Some(&basic("alice", ""))));
        assert!(!allows(&auth, Some(&basic("carol", "s3cret"))));
        assert!(!allows(&auth, Some(&basic("Alice", "s3cret"))));
        assert!(!allows(&auth, None));
        // A cached password is not a key to another user.
        assert!(!allows(&auth, Some(&basic("bob", "s3cret"))));
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
            assert_eq!(allows(&auth, Some(&value)), allowed, "{header}");
        }
        let challenges: Vec<_> = auth.challenges().collect();
        assert_eq!(challenges, ["Basic realm=\"metricz\", charset=\"UTF-8\""]);
    }

    #[test]
    fn a_password_with_a_colon_keeps_it() {
        let auth = Authenticator::new(users(&[("alice", "a:b")]), Vec::new());
        assert!(allows(&auth, Some(&basic("alice", "a:b"))));
        assert!(!allows(&auth, Some(&basic("alice", "a"))));
    }

    #[test]
    fn a_second_authorization_header_is_refused() {
        let auth = Authenticator::new(BTreeMap::new(), vec![b"tok".to_vec()]);
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer tok"));
        assert!(matches!(auth.check(&headers), Check::Allowed));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        assert!(matches!(auth.check(&headers), Check::Denied));
        let mut reversed = HeaderMap::new();
        reversed.append(AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        reversed.append(AUTHORIZATION, HeaderValue::from_static("Bearer tok"));
        assert!(matches!(auth.check(&reversed), Check::Denied));
    }

    #[test]
    fn at_most_max_waiting_verifications_queue() {
        let auth = Authenticator::new(users(&[("alice", "pw")]), Vec::new());
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, basic("alice", "wrong"));
        let pending: Vec<_> = (0..MAX_WAITING)
            .map(|_| match auth.check(&headers) {
                Check::Verify(p) => p,
                _ => panic!("a wrong password is verified"),
            })
            .collect();
        assert!(matches!(auth.check(&headers), Check::Busy));
        // A cached password skips the queue.
        drop(pending);
        assert!(allows(&auth, Some(&basic("alice", "pw"))));
        let full: Vec<_> = (0..MAX_WAITING).map(|_| auth.check(&headers)).collect();
        headers.insert(AUTHORIZATION, basic("alice", "pw"));
        assert!(matches!(auth.check(&headers), Check::Allowed));
        drop(full);
        // A dropped pending request (its connection closed) gives its
        // place back.
        headers.insert(AUTHORIZATION, basic("alice", "wrong"));
        assert!(matches!(auth.check(&headers), Check::Verify(_)));
    }

    #[test]
    fn a_check_abandoned_mid_bcrypt_keeps_its_turn_until_bcrypt_ends() {
        let hash = bcrypt::hash("pw", 10).unwrap();
        let auth = Arc::new(Authenticator::new(
            BTreeMap::from([("alice".to_string(), hash)]),
            Vec::new(),
        ));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, basic("alice", "wrong"));
        let Check::Verify(pending) = auth.check(&headers) else {
            panic!("a wrong password is verified");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Started, then abandoned (as when its connection closes)
            // while bcrypt runs on the blocking pool.
            let checking = {
                let auth = Arc::clone(&auth);
                tokio::spawn(async move { auth.verify(pending).await })
            };
            while auth.verifying.available_permits() != 0 {
                tokio::task::yield_now().await;
            }
            checking.abort();
            let _ = checking.await;
            // The abandoned bcrypt still holds the one turn.
            assert_eq!(auth.verifying.available_permits(), 0);
            // It gives the turn back when it ends.
            let _ = Arc::clone(&auth.verifying).acquire_owned().await.unwrap();
        });
    }

    #[test]
    fn unknown_users_are_verified_against_the_costliest_hash() {
        let cheap = bcrypt::hash("a", 4).unwrap();
        let dear = bcrypt::hash("b", 6).unwrap();
        let users = BTreeMap::from([("a".to_string(), cheap), ("z".to_string(), dear.clone())]);
        let auth = Authenticator::new(users, Vec::new());
        assert_eq!(auth.decoy.as_deref(), Some(dear.as_str()));
        // Refused even with the password of the decoy's user.
        assert!(!allows(&auth, Some(&basic("nobody", "b"))));
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
            assert_eq!(allows(&auth, Some(&value)), allowed, "{header}");
        }
        // No basic users: basic credentials are refused outright.
        assert!(!allows(&auth, Some(&basic("token-one", "token-one"))));
        let challenges: Vec<_> = auth.challenges().collect();
        assert_eq!(challenges, ["Bearer realm=\"metricz\""]);
    }

    #[test]
    fn basic_and_bearer_together_take_either() {
        let auth = Authenticator::new(users(&[("alice", "pw")]), vec![b"tok".to_vec()]);
        assert!(allows(&auth, Some(&basic("alice", "pw"))));
        assert!(allows(&auth, Some(&HeaderValue::from_static("Bearer tok"))));
        assert!(!allows(&auth, Some(&HeaderValue::from_static("Bearer pw"))));
        assert_eq!(auth.challenges().count(), 2);
    }
}
