//! What a pusher thread and its handle share: the counts the thread keeps
//! and the handle reads, the flag the thread sets when it exits, and the
//! commands the handle sends.
//!
//! These are std's in every build (`primitive::std_only`): no loom model
//! runs a pusher, and loom's atomics work only inside a model.

use super::breaker::BreakerState;
use super::error::PushError;
use crate::primitive::std_only::mpsc::SyncSender;
use crate::primitive::std_only::{Arc, AtomicU32, AtomicU64, AtomicU8, Condvar, Mutex};

/// A pusher's counts, shared by its thread and its handle.
pub(crate) struct Shared {
    pub(crate) pushes: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) dropped_bytes: AtomicU64,
    pub(crate) pending_bytes: AtomicU64,
    pub(crate) peak_pending_bytes: AtomicU64,
    pub(crate) consecutive_failures: AtomicU32,
    /// A [`BreakerState`] as [`BreakerState::to_u8`] stores it.
    pub(crate) breaker: AtomicU8,
    /// Set when the thread exits (also by unwinding).
    pub(crate) exited: Mutex<bool>,
    pub(crate) exited_cv: Condvar,
}

impl Shared {
    /// All counts zero, the breaker closed, the thread not exited.
    pub(crate) fn new() -> Self {
        Shared {
            pushes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            peak_pending_bytes: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            breaker: AtomicU8::new(BreakerState::Closed.to_u8()),
            exited: Mutex::new(false),
            exited_cv: Condvar::new(),
        }
    }
}

/// Sets `exited` when the pusher thread ends, also by unwinding: the
/// thread holds one for its whole run.
pub(crate) struct ExitSignal(pub(crate) Arc<Shared>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        *self.0.exited.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.exited_cv.notify_all();
    }
}

/// What a handle asks its pusher thread.
pub(crate) enum Command {
    /// Make an attempt now (`force`: bypassing backoff and breaker) and
    /// send its result.
    Push {
        force: bool,
        reply: SyncSender<Result<(), PushError>>,
    },
    /// Exit.
    Stop,
}
