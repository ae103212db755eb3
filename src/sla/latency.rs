//! The latency histogram's bucket edges, shared by the hourly rollups that count into them and
//! the config that checks a latency SLO's threshold against them.
//!
//! Every latency threshold people write (whole ms up to 100 ms, 10 ms steps to 1 s, 100 ms
//! steps to 10 s, whole seconds to 60 s) is an edge: "share of probes under 300 ms" is then
//! exact from rollups alone.

use std::time::Duration;

/// Number of histogram buckets; the last holds everything from 60 s up.
pub const BUCKETS: usize = 331;

/// The bucket of a latency in microseconds.
pub fn bucket_of(latency_us: u32) -> usize {
    let ms = latency_us / 1000;
    match ms {
        0..100 => ms as usize,
        100..1000 => 100 + ((ms - 100) / 10) as usize,
        1000..10_000 => 190 + ((ms - 1000) / 100) as usize,
        10_000..60_000 => 280 + ((ms - 10_000) / 1000) as usize,
        _ => BUCKETS - 1,
    }
}

/// The lower edge of a bucket, in milliseconds.
pub fn bucket_lower_ms(bucket: usize) -> u32 {
    let b = bucket as u32;
    match bucket {
        0..100 => b,
        100..190 => 100 + (b - 100) * 10,
        190..280 => 1000 + (b - 190) * 100,
        280..330 => 10_000 + (b - 280) * 1000,
        _ => 60_000,
    }
}

/// The upper edge (exclusive) of a bucket, in milliseconds; `u32::MAX` for the last.
pub fn bucket_upper_ms(bucket: usize) -> u32 {
    if bucket + 1 >= BUCKETS {
        u32::MAX
    } else {
        bucket_lower_ms(bucket + 1)
    }
}

/// Whether "latency < threshold" can be counted exactly from the histogram.
pub fn latency_threshold_is_exact(threshold: Duration) -> bool {
    if !threshold.subsec_nanos().is_multiple_of(1_000_000) || threshold.is_zero() {
        return false;
    }
    let ms = threshold.as_millis();
    match ms {
        1..=100 => true,
        101..=1000 => ms.is_multiple_of(10),
        1001..=10_000 => ms.is_multiple_of(100),
        10_001..=60_000 => ms.is_multiple_of(1000),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_edges_match() {
        for b in 0..BUCKETS - 1 {
            assert_eq!(bucket_upper_ms(b), bucket_lower_ms(b + 1));
            assert_eq!(bucket_of(bucket_lower_ms(b) * 1000), b, "bucket {b}");
            assert_eq!(bucket_of(bucket_upper_ms(b) * 1000 - 1), b, "bucket {b}");
        }
        assert_eq!(bucket_of(u32::MAX), BUCKETS - 1);
    }

    #[test]
    fn exact_thresholds_are_bucket_edges() {
        for ms in 1..=60_000u32 {
            let exact = latency_threshold_is_exact(Duration::from_millis(u64::from(ms)));
            let is_edge = (0..BUCKETS).any(|b| bucket_lower_ms(b) == ms);
            assert_eq!(exact, is_edge, "{ms} ms");
        }
        assert!(!latency_threshold_is_exact(Duration::from_micros(300_500)));
        assert!(latency_threshold_is_exact(Duration::from_millis(300)));
        assert!(latency_threshold_is_exact(Duration::from_millis(1500)));
        assert!(!latency_threshold_is_exact(Duration::from_millis(333)));
    }
}
