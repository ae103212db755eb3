//! The daemon's own counters: probes run, in flight, and schedule lateness.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;

/// Sub-buckets per power of two: values are kept within about 3%.
const SUB_BUCKETS: usize = 32;
/// Covers up to 2^40 µs (12 days).
const BUCKETS: usize = SUB_BUCKETS * 36;

/// A lock-free histogram of durations in microseconds (log-linear buckets).
pub struct DurationRecorder {
    counts: Vec<AtomicU64>,
    max_us: AtomicU64,
    total: AtomicU64,
}

impl Default for DurationRecorder {
    fn default() -> Self {
        DurationRecorder {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_us: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

fn bucket_of(us: u64) -> usize {
    if us < SUB_BUCKETS as u64 {
        return us as usize;
    }
    let exponent = 63 - us.leading_zeros() as usize - 5; // us >> exponent is in 32..64
    let index = (exponent + 1) * SUB_BUCKETS + ((us >> exponent) as usize - SUB_BUCKETS);
    index.min(BUCKETS - 1)
}

/// The largest value a bucket holds.
fn bucket_upper_us(index: usize) -> u64 {
    if index < SUB_BUCKETS {
        return index as u64;
    }
    let exponent = index / SUB_BUCKETS - 1;
    let mantissa = (index % SUB_BUCKETS + SUB_BUCKETS) as u64;
    ((mantissa + 1) << exponent) - 1
}

impl DurationRecorder {
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The `q` quantile in microseconds (upper edge of its bucket, capped at the maximum).
    pub fn quantile_us(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return bucket_upper_us(i).min(self.max_us());
            }
        }
        self.max_us()
    }

    pub fn max_us(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> DurationSummary {
        DurationSummary {
            count: self.count(),
            p50_us: self.quantile_us(0.50),
            p99_us: self.quantile_us(0.99),
            max_us: self.max_us(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DurationSummary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Bucket edges (seconds) of the `/metrics` lateness histogram: from a millisecond, which a
/// healthy daemon stays under, to a minute, which only overload reaches.
const LATENESS_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Counters shared by every service task.
pub struct DaemonMetrics {
    pub probes: AtomicU64,
    pub probes_failed: AtomicU64,
    pub in_flight: AtomicI64,
    /// How late probes started against their schedule (waiting for a slot included), for the
    /// quantiles of `/api/v1/daemon`.
    pub lateness: DurationRecorder,
    /// The same, as the `/metrics` histogram `slaprobe_schedule_lateness_seconds`.
    pub lateness_seconds: Histogram,
    /// Probes that started more than their interval late: a schedule point was missed.
    pub probes_late: AtomicU64,
    /// Unix ms of the last "running late" warning (they are logged at most once a minute).
    late_warned_ms: AtomicI64,
    /// Whether this daemon decides and sends alerts, digests and statements (always on SQLite;
    /// in a fleet, while it holds the speaker lock).
    pub speaking: std::sync::atomic::AtomicBool,
    /// The location of the daemon that speaks, as last seen (`None`: none, or not known).
    speaker: std::sync::Mutex<Option<String>>,
}

impl Default for DaemonMetrics {
    fn default() -> Self {
        DaemonMetrics {
            probes: AtomicU64::new(0),
            probes_failed: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            lateness: DurationRecorder::default(),
            lateness_seconds: Histogram::new(LATENESS_BUCKETS),
            probes_late: AtomicU64::new(0),
            late_warned_ms: AtomicI64::new(0),
            speaking: std::sync::atomic::AtomicBool::new(false),
            speaker: std::sync::Mutex::new(None),
        }
    }
}

/// Running late is logged at most this often.
const LATE_WARNING_EVERY_MS: i64 = 60_000;

impl DaemonMetrics {
    pub fn set_speaking(&self, speaking: bool) {
        self.speaking.store(speaking, Ordering::Relaxed);
    }

    pub fn set_speaker(&self, location: Option<String>) {
        *self.speaker.lock().unwrap_or_else(|p| p.into_inner()) = location;
    }

    /// The location of the daemon that speaks for the fleet, as last seen.
    pub fn speaker(&self) -> Option<String> {
        self.speaker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records how late a probe started against its schedule.
    pub fn record_lateness(&self, late: Duration) {
        self.lateness.record(late);
        self.lateness_seconds.observe(late.as_secs_f64());
    }

    /// Counts a probe that started `late` after it was due, more than its interval; returns
    /// the probes late so far when a warning is due (at most once a minute).
    pub fn note_late(&self, now_ms: i64) -> Option<u64> {
        let late = self.probes_late.fetch_add(1, Ordering::Relaxed) + 1;
        let warned = self.late_warned_ms.load(Ordering::Relaxed);
        let due = warned == 0 || now_ms - warned >= LATE_WARNING_EVERY_MS;
        (due && self
            .late_warned_ms
            .compare_exchange(warned, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok())
        .then_some(late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_late_warns_once_a_minute() {
        let m = DaemonMetrics::default();
        assert_eq!(m.note_late(1_000), Some(1));
        assert_eq!(m.note_late(2_000), None);
        assert_eq!(m.note_late(60_999), None);
        assert_eq!(m.note_late(61_000), Some(4));
        assert_eq!(m.probes_late.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn buckets_cover_values_with_small_error() {
        for us in [
            0u64, 1, 31, 32, 33, 63, 64, 100, 1_000, 9_999, 123_456, 10_000_000,
        ] {
            let b = bucket_of(us);
            let upper = bucket_upper_us(b);
            assert!(upper >= us, "{us} in bucket {b} with upper {upper}");
            assert!(upper as f64 <= us as f64 * 1.04 + 1.0, "{us}: {upper}");
            if b > 0 {
                assert!(bucket_upper_us(b - 1) < us, "{us}");
            }
        }
    }

    #[test]
    fn quantiles() {
        let r = DurationRecorder::default();
        for ms in 1..=100 {
            r.record(Duration::from_millis(ms));
        }
        let p50 = r.quantile_us(0.5);
        assert!((50_000..=52_000).contains(&p50), "{p50}");
        assert_eq!(r.max_us(), 100_000);
        assert_eq!(r.quantile_us(1.0), 100_000);
    }
}
