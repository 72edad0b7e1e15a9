//! The one way the program takes a `std::sync::Mutex`.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Takes the lock even if a thread panicked while holding it. Every lock in the program guards
/// state that is whole after each statement (counters, maps, a child process handle), so what a
/// panic left behind is still usable, and one panic must not take every later reader down.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
