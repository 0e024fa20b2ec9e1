//! Giving freed memory back to the system after a burst.

/// Returns the allocator's free pages to the system. The allocator keeps
/// what a burst (a storm of SIP requests) freed for reuse; once the
/// switchboard's tables have shrunk after one, this lets the resident size
/// fall back instead of staying at the peak.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes
    // the allocator's locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
