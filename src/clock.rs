//! The wall clock for outcome timestamps (UTC milliseconds), never going backwards.
//!
//! Durations and schedules use the monotonic clock (`tokio::time::Instant`); this clock only
//! stamps outcomes. Tests can make it follow tokio's (pausable) clock instead of the system's.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

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
            },
            last_ms: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let read = match &self.source {
            Source::System => jiff::Timestamp::now().as_millisecond(),
            Source::FollowTokio { start, start_ms } => {
                start_ms + start.elapsed().as_millis() as i64
            }
        };
        let previous = self.last_ms.fetch_max(read, Ordering::Relaxed);
        read.max(previous)
    }
}
