//! What a run saw: per operation its latencies and refusals and failures, per invariant
//! how often it was tried, held and violated (with the first violations' details).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::load::percentile;

/// An invariant the run checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    Claims,
    MailboxCaps,
    AckedDrops,
    Readers,
    Cas,
    Downloads,
    Balances,
    Webhooks,
    LeaseHasBlob,
    BlobHasLease,
    ExpiredGone,
}

impl Check {
    pub fn describe(self) -> &'static str {
        match self {
            Check::Claims => "claims exact per token (whole bodies ≤ counted ≤ max_claims)",
            Check::MailboxCaps => "mailbox caps exact (count, bytes, counters)",
            Check::AckedDrops => "every acknowledged drop kept",
            Check::Readers => "long polls and SSE readers saw every message",
            Check::Cas => "one CAS winner per checkpoint version",
            Check::Downloads => "downloads and claims return the uploaded bytes",
            Check::Balances => "balance = credits − charges; each lease charged once",
            Check::Webhooks => "every webhook event delivered, signatures valid",
            Check::LeaseHasBlob => "no live lease (row) without its blob",
            Check::BlobHasLease => "no blob without a committed row (past the orphan age)",
            Check::ExpiredGone => "every expired lease purged, its bytes gone",
        }
    }
}

#[derive(Default)]
struct Op {
    latencies: Vec<Duration>,
    refused: u64,
    failed: u64,
}

#[derive(Default)]
struct Tally {
    held: u64,
    violated: u64,
    details: Vec<String>,
}

/// Everything a run records.
#[derive(Default)]
pub struct Record {
    ops: Mutex<BTreeMap<&'static str, Op>>,
    checks: Mutex<BTreeMap<Check, Tally>>,
}

impl Record {
    fn op<R>(&self, name: &'static str, f: impl FnOnce(&mut Op) -> R) -> R {
        f(self.ops.lock().unwrap_or_else(PoisonError::into_inner).entry(name).or_default())
    }

    /// A successful call of `name` that started at `started`.
    pub fn latency(&self, name: &'static str, started: Instant) {
        let elapsed = started.elapsed();
        self.op(name, |op| op.latencies.push(elapsed));
    }

    /// A refusal by the API (a 4xx the workload expects: full, exhausted, conflict…).
    pub fn refused(&self, name: &'static str) {
        self.op(name, |op| op.refused += 1);
    }

    /// A call cut off by a fault (5xx from the balancer, a broken connection).
    pub fn failed(&self, name: &'static str) {
        self.op(name, |op| op.failed += 1);
    }

    /// Classifies a response that should have `want` status; its JSON when it did.
    pub async fn outcome(
        &self,
        name: &'static str,
        started: Instant,
        res: reqwest::Result<reqwest::Response>,
        want: u16,
    ) -> Option<serde_json::Value> {
        match res {
            Ok(r) if r.status().as_u16() == want => match r.json::<serde_json::Value>().await {
                Ok(body) => {
                    self.latency(name, started);
                    Some(body)
                }
                Err(_) => {
                    self.failed(name);
                    None
                }
            },
            Ok(r) if r.status().is_client_error() => {
                self.refused(name);
                None
            }
            _ => {
                self.failed(name);
                None
            }
        }
    }

    /// One trial of `check`; `detail` says what was wrong when it did not hold.
    pub fn check(&self, check: Check, held: bool, detail: impl FnOnce() -> String) {
        let mut checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = checks.entry(check).or_default();
        if held {
            tally.held += 1;
        } else {
            tally.violated += 1;
            if tally.details.len() < 5 {
                tally.details.push(detail());
            }
        }
    }

    /// Successful calls of every operation.
    pub fn completed(&self) -> BTreeMap<&'static str, u64> {
        let ops = self.ops.lock().unwrap_or_else(PoisonError::into_inner);
        ops.iter().map(|(name, op)| (*name, op.latencies.len() as u64)).collect()
    }

    /// Prints the operations table.
    pub fn print_ops(&self, seconds: f64) {
        println!(
            "{:<14} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9}",
            "operation", "ok", "refused", "cut", "ok/s", "p50 ms", "p99 ms"
        );
        for (name, op) in self.ops.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            println!(
                "{name:<14} {:>8} {:>8} {:>8} {:>9.1} {:>9.1} {:>9.1}",
                op.latencies.len(),
                op.refused,
                op.failed,
                op.latencies.len() as f64 / seconds,
                percentile(&op.latencies, 0.5),
                percentile(&op.latencies, 0.99)
            );
        }
    }

    /// Prints the operations and the checks tables; returns the number of violations (an
    /// invariant never tried counts as one).
    pub fn print(&self, seconds: f64) -> u64 {
        self.print_ops(seconds);
        println!();
        println!("{:<62} {:>7} {:>7} {:>9}", "invariant", "tried", "held", "violated");
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut violated = 0;
        for check in Check::ALL {
            let tally = checks.get(&check);
            let (held, bad) = tally.map_or((0, 0), |t| (t.held, t.violated));
            violated += bad;
            println!("{:<62} {:>7} {:>7} {:>9}", check.describe(), held + bad, held, bad);
            for detail in tally.map(|t| t.details.as_slice()).unwrap_or_default() {
                println!("    ✘ {detail}");
            }
        }
        let untried: Vec<&str> = Check::ALL.iter().filter(|c| !checks.contains_key(c)).map(|c| c.describe()).collect();
        if !untried.is_empty() {
            println!("never tried: {untried:?}");
        }
        violated + untried.len() as u64
    }
}
