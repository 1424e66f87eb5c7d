//! Load generation shared by the benchmarks: many tasks calling one operation for a
//! while, with each call's latency recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies of one or more phases, and their rate.
#[derive(Default)]
pub struct Phase {
    ops: u64,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Phase {
    /// Adds another phase's calls and time to this one.
    pub fn absorb(&mut self, other: Phase) {
        self.ops += other.ops;
        self.seconds += other.seconds;
        self.latencies.extend(other.latencies);
    }

    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    /// The `p` quantile of the latencies, in milliseconds.
    pub fn pct(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }
}

/// The `p` quantile (0..=1) in milliseconds.
pub fn percentile(latencies: &[Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Runs `op(task, n)` from `concurrency` tasks for `seconds` (`n` counts every call),
/// recording each call's latency.
pub async fn hammer<F, Fut>(concurrency: usize, seconds: f64, op: F) -> anyhow::Result<Phase>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (op, counter) = (op.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                op(task, n).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Phase { ops: latencies.len() as u64, seconds, latencies })
}
