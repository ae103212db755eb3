//! When a service's next probe is due: a drift-free grid on the monotonic clock, offset by a
//! stable per-service jitter, with retries after a failure. Pure: times in, times out.

use std::time::Duration;

use tokio::time::Instant;

/// A stable offset in `[0, interval)` derived from the service id (FNV-1a), so that first
/// probes spread evenly and a restart keeps each service's phase relative to the others.
pub fn jitter(id: &str, interval: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let interval_us = interval.as_micros().max(1) as u64;
    Duration::from_micros(hash % interval_us)
}

#[derive(Debug, Clone)]
pub struct Schedule {
    /// Grid point zero: the start plus the jitter.
    anchor: Instant,
    interval: Duration,
    retry_interval: Duration,
    next: Instant,
}

impl Schedule {
    pub fn new(start: Instant, id: &str, interval: Duration, retry_interval: Duration) -> Self {
        let anchor = start + jitter(id, interval);
        Schedule {
            anchor,
            interval,
            retry_interval: retry_interval.min(interval),
            next: anchor,
        }
    }

    /// When the next probe is due.
    pub fn due(&self) -> Instant {
        self.next
    }

    /// Moves on after a probe that ended at `now`: to the next grid point after a success
    /// (missed points are skipped, never bunched up), or `retry_interval` later after a
    /// failure, but never after the next grid point.
    pub fn advance(&mut self, ok: bool, now: Instant) {
        let next_grid = self.grid_after(now.max(self.next));
        self.next = if ok {
            next_grid
        } else {
            (now + self.retry_interval).min(next_grid)
        };
    }

    /// Keeps the phase but changes the spacing (a reloaded config).
    pub fn set_intervals(&mut self, interval: Duration, retry_interval: Duration) {
        self.interval = interval;
        self.retry_interval = retry_interval.min(interval);
    }

    /// The first grid point strictly after `t`.
    fn grid_after(&self, t: Instant) -> Instant {
        if t < self.anchor {
            return self.anchor;
        }
        let interval_ns = self.interval.as_nanos().max(1);
        let steps = (t - self.anchor).as_nanos() / interval_ns + 1;
        self.anchor + Duration::from_nanos((steps * interval_ns) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_stable_and_within_interval() {
        let interval = Duration::from_secs(30);
        assert_eq!(jitter("acme-api", interval), jitter("acme-api", interval));
        assert_ne!(jitter("acme-api", interval), jitter("acme-db", interval));
        for i in 0..1000 {
            assert!(jitter(&format!("svc-{i}"), interval) < interval);
        }
    }

    #[test]
    fn jitter_spreads_services_evenly() {
        // 10,000 services over a 10 s interval in 10 one-second slots: each near 1,000.
        let interval = Duration::from_secs(10);
        let mut slots = [0u32; 10];
        for i in 0..10_000 {
            slots[jitter(&format!("service-{i}"), interval).as_secs() as usize] += 1;
        }
        for count in slots {
            assert!((850..=1150).contains(&count), "{slots:?}");
        }
    }

    #[test]
    fn grid_does_not_drift_and_skips_missed_points() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut s = Schedule::new(start, "x", interval, Duration::from_secs(2));
        let anchor = s.due();
        // A probe taking 300 ms does not push the grid.
        s.advance(true, anchor + Duration::from_millis(300));
        assert_eq!(s.due(), anchor + interval);
        // A late probe (25 s) skips the missed points instead of bunching.
        s.advance(true, anchor + Duration::from_secs(25));
        assert_eq!(s.due(), anchor + interval * 3);
    }

    #[test]
    fn failure_retries_sooner_but_never_past_the_grid() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut s = Schedule::new(start, "x", interval, Duration::from_secs(3));
        let anchor = s.due();
        s.advance(false, anchor + Duration::from_millis(100));
        assert_eq!(s.due(), anchor + Duration::from_millis(3100));
        // A retry that would pass the grid point is capped to it.
        s.advance(false, anchor + Duration::from_millis(9_000));
        assert_eq!(s.due(), anchor + interval);
        // Back on the grid after a success.
        s.advance(true, anchor + Duration::from_millis(10_050));
        assert_eq!(s.due(), anchor + interval * 2);
    }
}
