//! Hourly rollups, kept for ever: counts, a latency histogram and per-minute masks.
//!
//! The histogram's buckets are `sla::latency`'s, so a latency SLO is counted exactly from
//! rollups alone. Percentiles are read to the bucket's upper edge.

use super::chunk::{RawOutcome, read_varint, write_varint};
use crate::sla::latency::{BUCKETS, bucket_of, bucket_upper_ms};

/// A latency histogram of successful probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u32>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
        }
    }
}

impl Histogram {
    pub fn add(&mut self, latency_us: u32) {
        self.counts[bucket_of(latency_us)] += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// How many latencies are strictly below `threshold_ms` (exact when it is a bucket edge).
    pub fn count_below(&self, threshold_ms: u32) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(b, _)| bucket_upper_ms(*b) <= threshold_ms)
            .map(|(_, c)| u64::from(*c))
            .sum()
    }

    /// The `q` quantile (0..=1) as the upper edge of its bucket, in ms; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<u32> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(bucket_upper_ms(b));
            }
        }
        None
    }

    /// Sparse encoding: (bucket gap, count) pairs as LEB128, only non-empty buckets.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut previous = 0usize;
        for (b, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                write_varint((b - previous) as u64, &mut out);
                write_varint(u64::from(*c), &mut out);
                previous = b;
            }
        }
        out
    }

    /// `count_below` read straight from the encoding, without building the histogram.
    pub fn encoded_count_below(data: &[u8], threshold_ms: u32) -> u64 {
        let mut rest = data;
        let mut bucket = 0usize;
        let mut below = 0;
        while let Some((gap, r)) = read_varint(rest) {
            let Some((count, r)) = read_varint(r) else {
                break;
            };
            rest = r;
            bucket += gap as usize;
            if bucket >= BUCKETS || bucket_upper_ms(bucket) > threshold_ms {
                break;
            }
            below += count;
        }
        below
    }

    pub fn decode(data: &[u8]) -> Histogram {
        let mut histogram = Histogram::default();
        let mut rest = data;
        let mut bucket = 0usize;
        while let Some((gap, r)) = read_varint(rest) {
            let Some((count, r)) = read_varint(r) else {
                break;
            };
            rest = r;
            bucket += gap as usize;
            if bucket >= BUCKETS {
                break;
            }
            histogram.counts[bucket] = count.min(u64::from(u32::MAX)) as u32;
        }
        histogram
    }
}

/// One service-hour, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourRollup {
    pub probes: u32,
    pub failures: u32,
    /// Latencies of successful probes.
    pub latency: Histogram,
    /// Bit m set: at least one probe started in minute m of the hour.
    pub minutes_probed: u64,
    /// Bit m set: every probe that started in minute m failed.
    pub minutes_all_failed: u64,
}

impl HourRollup {
    /// Summarises the outcomes of one hour (`hour_start_ms` is the hour's first millisecond).
    pub fn from_outcomes(hour_start_ms: i64, outcomes: &[RawOutcome]) -> HourRollup {
        let mut rollup = HourRollup::default();
        let mut minute_ok = 0u64;
        for o in outcomes {
            let minute = ((o.at_ms - hour_start_ms) / 60_000).clamp(0, 59) as u32;
            rollup.probes += 1;
            rollup.minutes_probed |= 1 << minute;
            if o.is_ok() {
                rollup.latency.add(o.latency_us);
                minute_ok |= 1 << minute;
            } else {
                rollup.failures += 1;
            }
        }
        rollup.minutes_all_failed = rollup.minutes_probed & !minute_ok;
        rollup
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_below_threshold_is_strict() {
        let mut h = Histogram::default();
        h.add(299_999); // 299.999 ms: good under 300 ms
        h.add(300_000); // exactly 300 ms: not under
        h.add(5_000);
        assert_eq!(h.count_below(300), 2);
        assert_eq!(h.count_below(310), 3);
        assert_eq!(h.quantile_ms(0.5), Some(300));
        assert_eq!(Histogram::decode(&h.encode()), h);
        for threshold in [1, 5, 300, 310, 60_000] {
            assert_eq!(
                Histogram::encoded_count_below(&h.encode(), threshold),
                h.count_below(threshold)
            );
        }
    }

    #[test]
    fn minute_masks() {
        let hour = 1_000 * 3_600_000;
        let ok = |m: i64| RawOutcome {
            at_ms: hour + m * 60_000 + 5,
            latency_us: 1000,
            reason: None,
        };
        let bad = |m: i64| RawOutcome {
            at_ms: hour + m * 60_000 + 30_000,
            latency_us: 1000,
            reason: Some(crate::probe::Reason::Timeout),
        };
        let r = HourRollup::from_outcomes(hour, &[ok(0), bad(0), bad(1), bad(1), ok(2)]);
        assert_eq!(r.probes, 5);
        assert_eq!(r.failures, 3);
        assert_eq!(r.minutes_probed, 0b111);
        assert_eq!(r.minutes_all_failed, 0b010);
        assert_eq!(r.latency.total(), 2);
    }
}
