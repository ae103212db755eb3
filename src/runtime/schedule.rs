//! When a service's next probe is due: a drift-free grid on the monotonic clock, offset by a
//! stable per-service jitter and put on the daemon's ticks, with retries after a failure. Pure:
//! times in, times out.

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

/// The tick lengths a daemon may use, shortest first; each divides the next (and a second), so
/// probes put on a longer tick are on every shorter one too.
const TICK_LENGTHS_MS: [u64; 4] = [10, 20, 100, 200];
/// A tick holds about this many probes at most (unless even the shortest tick holds more).
const PROBES_PER_TICK: f64 = 32.0;

/// The instants at which probes start: every service's schedule is rounded up onto one shared
/// grid of ticks, so that the daemon wakes once for a batch of probes instead of once for each.
/// (A wake-up costs about what a probe's own work does; at a thousand probes a second, spread
/// evenly, the daemon otherwise wakes a thousand times a second.) The tick is the longest that
/// holds at most `PROBES_PER_TICK` probes at the daemon's rate, between 10 and 200 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    origin: Instant,
    length: Duration,
}

impl Ticks {
    /// Ticks from `origin` for a daemon that starts `per_second` probes a second on average.
    pub fn new(origin: Instant, per_second: f64) -> Ticks {
        let fits = |ms: &&u64| per_second * (**ms as f64 / 1000.0) <= PROBES_PER_TICK;
        let ms = TICK_LENGTHS_MS
            .iter()
            .rev()
            .find(fits)
            .unwrap_or(&TICK_LENGTHS_MS[0]);
        Ticks {
            origin,
            length: Duration::from_millis(*ms),
        }
    }

    pub fn length(&self) -> Duration {
        self.length
    }

    /// The first tick at or after `t`.
    pub fn at_or_after(&self, t: Instant) -> Instant {
        self.tick(t, u128::div_ceil)
    }

    /// The last tick at or before `t` (the origin for an earlier `t`).
    pub fn at_or_before(&self, t: Instant) -> Instant {
        self.tick(t, |a, b| a / b)
    }

    /// Tick number `round(t - origin, length)`.
    fn tick(&self, t: Instant, round: impl Fn(u128, u128) -> u128) -> Instant {
        let length_ns = self.length.as_nanos();
        let since = t.saturating_duration_since(self.origin).as_nanos();
        self.origin + Duration::from_nanos((round(since, length_ns) * length_ns) as u64)
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    /// Grid point zero: the start plus the jitter, on a tick.
    anchor: Instant,
    interval: Duration,
    retry_interval: Duration,
    next: Instant,
    ticks: Ticks,
}

impl Schedule {
    /// The schedule of service `id` starting at `start`. Its grid points are on `ticks` when
    /// the interval is a whole number of ticks (intervals of whole seconds always are).
    pub fn new(
        ticks: Ticks,
        start: Instant,
        id: &str,
        interval: Duration,
        retry_interval: Duration,
    ) -> Self {
        // The jitter's tick, unless that is before the start (a service a reload added).
        let anchor = ticks
            .at_or_before(start + jitter(id, interval))
            .max(ticks.at_or_after(start));
        Schedule {
            ticks,
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

    /// The ticks it keeps to.
    pub fn ticks(&self) -> Ticks {
        self.ticks
    }

    /// Moves on after a probe that ended at `now`: to the next grid point after a success
    /// (missed points are skipped, never bunched up), or `retry_interval` later (on the next
    /// tick) after a failure, but never after the next grid point.
    pub fn advance(&mut self, ok: bool, now: Instant) {
        let next_grid = self.grid_after(now.max(self.next));
        self.next = if ok {
            next_grid
        } else {
            self.ticks
                .at_or_after(now + self.retry_interval)
                .min(next_grid)
        };
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

    /// Ticks of 200 ms (a daemon of a few probes a second).
    fn slow_ticks(origin: Instant) -> Ticks {
        Ticks::new(origin, 1.0)
    }

    #[test]
    fn the_tick_is_the_longest_that_holds_about_32_probes() {
        // (probes a second, tick in ms): computed by hand, 32 / rate rounded down to a length.
        let cases = [
            (0.0, 200),
            (1.0, 200),
            (100.0, 200),  // 1,000 services at 10 s: 20 a tick
            (160.0, 200),  // exactly 32
            (161.0, 100),  // 32.2 at 200 ms
            (320.0, 100),  // exactly 32
            (1_000.0, 20), // 10,000 services at 10 s: 20 a tick
            (1_600.0, 20), // exactly 32
            (1_667.0, 10), // 100,000 services at 60 s
            (50_000.0, 10),
        ];
        let origin = Instant::now();
        for (rate, ms) in cases {
            assert_eq!(
                Ticks::new(origin, rate).length(),
                Duration::from_millis(ms),
                "{rate} probes a second"
            );
        }
        // Each length divides the next and a second: a longer tick is on every shorter grid.
        for pair in TICK_LENGTHS_MS.windows(2) {
            assert_eq!(pair[1] % pair[0], 0);
        }
        assert_eq!(1000 % TICK_LENGTHS_MS[3], 0);
    }

    #[test]
    fn times_round_up_onto_the_ticks() {
        let origin = Instant::now();
        let ticks = Ticks::new(origin, 1_000.0); // 20 ms
        let ms = |n: u64| origin + Duration::from_millis(n);
        assert_eq!(ticks.at_or_after(origin), origin);
        assert_eq!(ticks.at_or_after(ms(20)), ms(20));
        assert_eq!(ticks.at_or_after(ms(20) + Duration::from_nanos(1)), ms(40));
        assert_eq!(ticks.at_or_after(ms(39)), ms(40));
        assert_eq!(ticks.at_or_after(ms(10_001)), ms(10_020));
        assert_eq!(ticks.at_or_before(ms(39)), ms(20));
        assert_eq!(ticks.at_or_before(ms(40)), ms(40));
        assert_eq!(ticks.at_or_before(origin), origin);
    }

    #[test]
    fn a_first_probe_falls_within_the_first_interval_on_a_tick() {
        let origin = Instant::now();
        let ticks = Ticks::new(origin, 1_000.0); // 20 ms
        let interval = Duration::from_secs(10);
        let later = origin + Duration::from_millis(12_345);
        for i in 0..2_000 {
            let id = format!("svc-{i}");
            for start in [origin, later] {
                let due = Schedule::new(ticks, start, &id, interval, interval).due();
                assert!(due >= start && due < start + interval, "{id}");
                assert_eq!(ticks.at_or_after(due), due, "{id}");
            }
        }
    }

    #[test]
    fn services_share_ticks_and_keep_them() {
        // 1,000 services at 10 s on 20 ms ticks: every grid point of every service is on a
        // tick, and the 500 ticks of an interval each start a batch of about 2 probes.
        let origin = Instant::now();
        let ticks = Ticks::new(origin, 1_000.0);
        let interval = Duration::from_secs(10);
        let mut starts = std::collections::HashMap::<Instant, u32>::new();
        for i in 0..1_000 {
            let mut s = Schedule::new(ticks, origin, &format!("svc-{i}"), interval, interval);
            for _ in 0..3 {
                let offset = (s.due() - origin).as_nanos();
                assert_eq!(offset % 20_000_000, 0, "svc-{i}: {offset} ns");
                s.advance(true, s.due() + Duration::from_millis(7));
            }
            *starts.entry(s.due()).or_default() += 1;
        }
        assert!(starts.len() <= 500, "{} ticks", starts.len());
        assert!(starts.values().all(|n| *n <= 12), "{starts:?}");
        // A service added later, by a reload, lands on the same ticks.
        let later = origin + Duration::from_millis(12_345);
        let s = Schedule::new(ticks, later, "added", interval, interval);
        assert_eq!((s.due() - origin).as_nanos() % 20_000_000, 0);
    }

    #[test]
    fn grid_does_not_drift_and_skips_missed_points() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut s = Schedule::new(
            slow_ticks(start),
            start,
            "x",
            interval,
            Duration::from_secs(2),
        );
        let anchor = s.due();
        // A probe taking 300 ms does not push the grid.
        s.advance(true, anchor + Duration::from_millis(300));
        assert_eq!(s.due(), anchor + interval);
        // A late probe (25 s) skips the missed points instead of bunching.
        s.advance(true, anchor + Duration::from_secs(25));
        assert_eq!(s.due(), anchor + interval * 3);
    }

    #[test]
    fn failure_retries_sooner_on_a_tick_but_never_past_the_grid() {
        let start = Instant::now();
        let interval = Duration::from_secs(10);
        let mut s = Schedule::new(
            slow_ticks(start),
            start,
            "x",
            interval,
            Duration::from_secs(3),
        );
        let anchor = s.due();
        // Ended 100 ms after its start: 3 s later is 3.1 s, the next 200 ms tick 3.2 s.
        s.advance(false, anchor + Duration::from_millis(100));
        assert_eq!(s.due(), anchor + Duration::from_millis(3200));
        // On a tick already: exactly 3 s later.
        s.advance(false, anchor + Duration::from_millis(3200));
        assert_eq!(s.due(), anchor + Duration::from_millis(6200));
        // A retry that would pass the grid point is capped to it.
        s.advance(false, anchor + Duration::from_millis(9_000));
        assert_eq!(s.due(), anchor + interval);
        // Back on the grid after a success.
        s.advance(true, anchor + Duration::from_millis(10_050));
        assert_eq!(s.due(), anchor + interval * 2);
    }
}
