//! Giving memory back to the operating system once plans are unloaded.
//!
//! glibc's allocator keeps freed memory in its arenas: measured with
//! `map-load --scenario at-rest`, 3,000 unloaded plans still held 71 MiB of
//! RSS, and 16.6 MiB after `malloc_trim(0)` (see docs/performance.md). The
//! relay calls [`release_free_memory`] after the janitor unloads plans.

/// Returns free heap memory to the operating system (glibc only; elsewhere
/// the allocator is left to do it on its own).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    // SAFETY: `malloc_trim` has no preconditions: it takes glibc's arena
    // locks itself and only releases memory that is already free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns free heap memory to the operating system (glibc only; elsewhere
/// the allocator is left to do it on its own).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}
