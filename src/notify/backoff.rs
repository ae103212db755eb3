//! Retry timing for delivery: exponential backoff between attempts.

/// Retry timing: the first retry after `first_ms`, each later one twice as long, up to `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first_ms: i64,
    pub max_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first_ms: 5_000,
            max_ms: 5 * 60_000,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones.
    pub fn delay_ms(&self, attempts: u32) -> i64 {
        let doublings = attempts.saturating_sub(1).min(16);
        (self.first_ms << doublings).min(self.max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let b = Backoff::default();
        let delays: Vec<i64> = (1..=8).map(|n| b.delay_ms(n)).collect();
        assert_eq!(
            delays,
            [
                5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000
            ]
        );
        assert_eq!(b.delay_ms(1000), 300_000);
    }
}
