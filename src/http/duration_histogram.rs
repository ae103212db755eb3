//! A probe-duration histogram for `/metrics` kept inline: fixed buckets of atomic counts, no
//! lock, 104 bytes. prometheus-client's own histogram keeps a vector of buckets and room for a
//! native histogram behind a mutex, 464 bytes a service in two allocations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

/// The upper bounds of the buckets, in seconds (a last bucket, `+Inf`, takes the rest).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
pub struct DurationHistogram {
    /// The sum of the durations, in nanoseconds (exact, and 584 years of probing before it
    /// wraps).
    sum_ns: AtomicU64,
    /// Observations in each bucket alone (not cumulative); the last is `+Inf`'s.
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

impl DurationHistogram {
    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Writes the histogram's series (`_sum`, `_count`, `_bucket`, the buckets cumulative).
    pub fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(f64::INFINITY, 0u64); BUCKETS.len() + 1];
        for (i, (bound, count)) in buckets.iter_mut().enumerate() {
            if let Some(&b) = BUCKETS.get(i) {
                *bound = b;
            }
            *count = self.buckets[i].load(Ordering::Relaxed);
        }
        // The count is the buckets' total, so a scrape between two updates never shows more
        // observations than the buckets hold.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}
