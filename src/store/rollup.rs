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

    /// The stored form: the non-empty buckets as (gap from the previous one, count), each
    /// pair packed in one byte when both are small (the common case: a count of 1–14 a few
    /// buckets on), after the two-byte mark `0, 0` that tells it from the first format (plain
    /// LEB128 pairs, which never hold a zero count). See `Pairs` for the reading.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0, 0];
        let mut previous = 0usize;
        for (b, c) in self.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let gap = (b - previous) as u64;
            let count = u64::from(*c);
            let high = gap.min(15) as u8;
            let low = count.min(15) as u8;
            out.push(high << 4 | low);
            if high == 15 {
                write_varint(gap - 15, &mut out);
            }
            if low == 15 {
                write_varint(count - 15, &mut out);
            }
            previous = b;
        }
        out
    }

    /// `count_below` read straight from the encoding, without building the histogram.
    pub fn encoded_count_below(data: &[u8], threshold_ms: u32) -> u64 {
        Pairs::new(data)
            .take_while(|(bucket, _)| bucket_upper_ms(*bucket) <= threshold_ms)
            .map(|(_, count)| count)
            .sum()
    }

    pub fn decode(data: &[u8]) -> Histogram {
        let mut histogram = Histogram::default();
        for (bucket, count) in Pairs::new(data) {
            histogram.counts[bucket] = count.min(u64::from(u32::MAX)) as u32;
        }
        histogram
    }
}

/// The (bucket, count) pairs of a stored histogram, in either format; stops at a bucket out of
/// range or a truncated pair.
struct Pairs<'a> {
    rest: &'a [u8],
    packed: bool,
    bucket: usize,
}

impl<'a> Pairs<'a> {
    fn new(data: &'a [u8]) -> Pairs<'a> {
        match data {
            [0, 0, rest @ ..] => Pairs {
                rest,
                packed: true,
                bucket: 0,
            },
            _ => Pairs {
                rest: data,
                packed: false,
                bucket: 0,
            },
        }
    }

    fn next_pair(&mut self) -> Option<(u64, u64)> {
        if !self.packed {
            let (gap, rest) = read_varint(self.rest)?;
            let (count, rest) = read_varint(rest)?;
            self.rest = rest;
            return Some((gap, count));
        }
        let (&byte, mut rest) = self.rest.split_first()?;
        let (mut gap, mut count) = (u64::from(byte >> 4), u64::from(byte & 15));
        if gap == 15 {
            let (more, r) = read_varint(rest)?;
            gap += more;
            rest = r;
        }
        if count == 15 {
            let (more, r) = read_varint(rest)?;
            count += more;
            rest = r;
        }
        self.rest = rest;
        Some((gap, count))
    }
}

impl Iterator for Pairs<'_> {
    type Item = (usize, u64);

    fn next(&mut self) -> Option<(usize, u64)> {
        let (gap, count) = self.next_pair()?;
        self.bucket = self.bucket.checked_add(usize::try_from(gap).ok()?)?;
        (self.bucket < BUCKETS).then_some((self.bucket, count))
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

    /// The first format: (gap, count) LEB128 pairs, as databases written before hold them.
    fn first_format(h: &Histogram) -> Vec<u8> {
        let mut out = Vec::new();
        let mut previous = 0;
        for (b, c) in h.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            write_varint((b - previous) as u64, &mut out);
            write_varint(u64::from(*c), &mut out);
            previous = b;
        }
        out
    }

    #[test]
    fn both_formats_read_alike_and_the_packed_one_is_smaller() {
        let mut h = Histogram::default();
        // 120 probes over 20–80 ms (the benchmark's spread), one at 0.5 ms, one past 60 s.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..120 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            h.add(20_000 + (seed % 60_000) as u32);
        }
        h.add(500);
        h.add(90_000_000);
        let (packed, first) = (h.encode(), first_format(&h));
        assert_eq!(Histogram::decode(&packed), h);
        assert_eq!(Histogram::decode(&first), h);
        for threshold in [1, 21, 50, 300, 60_000] {
            let want = h.count_below(threshold);
            assert_eq!(Histogram::encoded_count_below(&packed, threshold), want);
            assert_eq!(Histogram::encoded_count_below(&first, threshold), want);
        }
        assert!(
            packed.len() * 10 < first.len() * 6,
            "{} vs {}",
            packed.len(),
            first.len()
        );
        // A large count and a long gap take the escapes.
        let mut big = Histogram::default();
        for _ in 0..1000 {
            big.add(45_000_000);
        }
        assert_eq!(Histogram::decode(&big.encode()), big);
        assert_eq!(
            Histogram::decode(&Histogram::default().encode()),
            Histogram::default()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_histogram_survives_encoding(latencies in proptest::collection::vec(0u32..100_000_000, 0..400)) {
            let mut h = Histogram::default();
            for l in latencies {
                h.add(l);
            }
            proptest::prop_assert_eq!(Histogram::decode(&h.encode()), h.clone());
            for threshold in [1, 50, 1000, 60_000] {
                proptest::prop_assert_eq!(
                    Histogram::encoded_count_below(&h.encode(), threshold),
                    h.count_below(threshold)
                );
            }
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
