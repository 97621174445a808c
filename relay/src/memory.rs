//! Keeping the relay's memory small: how glibc's allocator and SQLite's page
//! cache are set up, and giving memory back to the operating system once
//! plans are unloaded.
//!
//! - glibc's allocator keeps freed memory in its arenas: measured with
//!   `map-load --scenario at-rest`, 3,000 unloaded plans still held 71 MiB of
//!   RSS, and 16.6 MiB after `malloc_trim(0)` (see docs/performance.md). The
//!   relay calls [`release_free_memory`] after the janitor unloads plans.
//! - glibc serves blocks of 128 KiB and more with their own mappings, until
//!   the first such block is freed: then it raises that threshold to the
//!   block's size and serves such blocks from its arenas from then on.
//!   automerge's `save` allocates and frees a 372 KiB DEFLATE state every
//!   time, so after the first save every save went to an arena, and the
//!   arenas grew: a relay that took 200 new plans peaked at 43-52 MiB, and
//!   at 16.8 MiB with the threshold fixed ([`tune_allocator`]).

/// Fix glibc's mmap threshold at its documented default (128 KiB), which
/// turns its dynamic raising off. Call once, first thing in `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn tune_allocator() {
    // SAFETY: `mallopt` only sets an allocator parameter; it takes glibc's
    // own locks and is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Fix glibc's mmap threshold (glibc only; elsewhere the allocator is left
/// as it is).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune_allocator() {}

/// No up-front page cache for SQLite connections. By default each
/// connection allocates 20 page-cache slots at once and touches every one
/// (87 KiB resident per connection, the relay's two included, before a
/// single page is read: heaptrack, `pcache1InitBulk`); without, slots are
/// allocated as pages are read, up to the same cache size. Call before the
/// first database is opened: SQLite takes configuration only before it
/// initializes, and says so with an error, which is ignored (the relay
/// then keeps the default).
#[allow(unsafe_code)]
pub(crate) fn tune_sqlite() {
    // SAFETY: SQLITE_CONFIG_PAGECACHE takes (void*, int, int); a null
    // buffer with N = 0 means "no bulk allocation". sqlite3_config is not
    // thread-safe, and this runs first thing in `serve`, before any thread
    // or connection exists.
    unsafe {
        rusqlite::ffi::sqlite3_config(
            rusqlite::ffi::SQLITE_CONFIG_PAGECACHE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        );
    }
}

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
