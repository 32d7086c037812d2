//! Locking shared by every module (a leaf: it uses nothing of the crate).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, going on with the data when a thread panicked while holding it: every critical
/// section here leaves the data consistent, so a panic elsewhere must not wedge the server.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
