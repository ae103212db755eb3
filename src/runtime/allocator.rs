//! The C allocator's limits for a daemon that runs for a year: glibc's malloc keeps memory it
//! was given back in many per-thread arenas and, after a large buffer is freed (a `/metrics`
//! scrape of 10,000 services is 15 MB of text), raises its mmap threshold so that the next
//! large buffers come from the heap and stay in the process. Both make RSS creep.

/// Caps the arenas at two and fixes the mmap threshold, so large buffers are mapped and handed
/// back when freed. Only glibc has these knobs; elsewhere it does nothing.
pub fn bound() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// Allocations from this size up are mapped on their own and unmapped when freed.
        const MMAP_THRESHOLD: libc::c_int = 256 * 1024;
        // SAFETY: mallopt only changes the allocator's tuning parameters; it is called before
        // the runtime starts its threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}
