//! The wall clock for outcome timestamps (UTC milliseconds), never going backwards.
//!
//! Durations and schedules use the monotonic clock (`tokio::time::Instant`); this clock only
//! stamps outcomes. When the system clock steps back, stamps hold at the latest one handed out
//! until the clock passes it again (no negative interval, no stretch counted twice); when it
//! steps forward, the stretch skipped becomes no-data. Tests can make it follow tokio's
//! (pausable) clock instead of the system's, and step it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Clock {
    source: Source,
    /// The latest value handed out: a wall clock stepping back never yields an earlier stamp.
    last_ms: Arc<AtomicI64>,
}

#[derive(Clone)]
enum Source {
    System,
    /// `start_ms` plus the time elapsed on tokio's clock since `start`.
    FollowTokio {
        start: tokio::time::Instant,
        start_ms: i64,
        /// Steps applied so far (`Clock::step`), in ms.
        stepped_ms: Arc<AtomicI64>,
    },
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
            last_ms: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// A clock that reads `start_ms` now and advances with tokio's clock (paused in tests).
    pub fn following_tokio(start_ms: i64) -> Clock {
        Clock {
            source: Source::FollowTokio {
                start: tokio::time::Instant::now(),
                start_ms,
                stepped_ms: Arc::new(AtomicI64::new(0)),
            },
            last_ms: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let read = match &self.source {
            Source::System => jiff::Timestamp::now().as_millisecond(),
            Source::FollowTokio {
                start,
                start_ms,
                stepped_ms,
            } => start_ms + start.elapsed().as_millis() as i64 + stepped_ms.load(Ordering::Relaxed),
        };
        let previous = self.last_ms.fetch_max(read, Ordering::Relaxed);
        read.max(previous)
    }

    /// Never hands out a stamp before `ms` (the latest stored outcome, at start: a clock set
    /// back while the daemon was stopped must not stamp outcomes before those stored).
    pub fn not_before(&self, ms: i64) {
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Steps the wall clock by `delta_ms`, as an operator or NTP stepping the system clock
    /// would. For clocks made by `following_tokio` (tests); the system clock cannot be stepped
    /// from here, so this panics on it.
    pub fn step(&self, delta_ms: i64) {
        match &self.source {
            Source::FollowTokio { stepped_ms, .. } => {
                stepped_ms.fetch_add(delta_ms, Ordering::Relaxed);
            }
            Source::System => panic!("the system clock is stepped by the operating system"),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.source {
            Source::System => "system",
            Source::FollowTokio { .. } => "following tokio",
        };
        f.debug_struct("Clock").field("source", &source).finish()
    }
}

/// A loop's sign of life on the monotonic clock: how long ago it last beat, unmoved by steps
/// of the wall clock (a step must neither report a stall nor hide one).
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// Microseconds after `origin` of the latest beat.
    beat_us: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            beat_us: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    pub fn beat(&self) {
        let us = self.origin.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.beat_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Time since the latest beat (since creation before the first).
    pub fn since_last(&self) -> Duration {
        let beat = Duration::from_micros(self.beat_us.load(Ordering::Relaxed));
        self.origin.elapsed().saturating_sub(beat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stamps_never_go_back_and_follow_forward_steps() {
        let clock = Clock::following_tokio(1_000_000);
        assert_eq!(clock.now_ms(), 1_000_000);
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert_eq!(clock.now_ms(), 1_000_500);
        // Back an hour: stamps hold at the latest one until the clock passes it again.
        clock.step(-3_600_000);
        assert_eq!(clock.now_ms(), 1_000_500);
        tokio::time::advance(std::time::Duration::from_secs(60)).await;
        assert_eq!(clock.now_ms(), 1_000_500);
        // Forward two hours: followed at once (the stretch skipped is for the tracker to see).
        clock.step(7_200_000);
        assert_eq!(clock.now_ms(), 1_000_000 + 60_500 + 3_600_000);
        // A floor from the store holds the same way.
        clock.not_before(9_000_000);
        assert_eq!(clock.now_ms(), 9_000_000);
    }

    #[test]
    fn a_heartbeat_measures_time_since_the_latest_beat() {
        let heart = Heartbeat::default();
        std::thread::sleep(Duration::from_millis(20));
        assert!(heart.since_last() >= Duration::from_millis(20));
        heart.beat();
        assert!(heart.since_last() < Duration::from_millis(20));
    }
}
