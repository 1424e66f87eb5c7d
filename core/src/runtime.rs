//! The tokio runtime of every binary. Its blocking pool is small and fixed: blocking
//! threads only run short file and DNS operations (no thread ever waits on a network
//! peer), so a few dozen cover any load, and the process's thread count has a bound that
//! does not grow with the number of open transfers (SPEC §10).

/// Upper bound on blocking-pool threads.
pub const MAX_BLOCKING_THREADS: usize = 64;

/// A multi-threaded runtime with I/O and timers and the bounded blocking pool.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(MAX_BLOCKING_THREADS).build()
}
