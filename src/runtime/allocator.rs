//! The C allocator's limits for a daemon that runs for a year: glibc's malloc keeps memory it
//! was given back in many per-thread arenas and, after a large buffer is freed (a `/metrics`
//! scrape of 10,000 services is 15 MB of text), raises its mmap threshold so that the next
//! large buffers come from the heap and stay in the process. Both make RSS creep. And free
//! memory inside the heap (after a burst: a slow target, a CPU-starved minute) is only handed
//! back from its top; `release` hands back the rest, once a minute.

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

/// How often the daemon hands free heap memory back to the system.
pub const RELEASE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Hands the free pages inside the allocator's heaps back to the system (`malloc_trim`: freed
/// memory stays mapped otherwise, so RSS would only ever rise to the highest point a burst
/// reached). A few milliseconds for a heap of tens of MB; call it off the async threads.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the kernel; it takes the allocator's own
    // locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls `release` every `RELEASE_EVERY` until `stop` changes.
pub async fn release_periodically(mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(RELEASE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let _ = tokio::task::spawn_blocking(release).await;
            }
            _ = stop.changed() => return,
        }
    }
}
