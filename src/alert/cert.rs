//! Certificates near expiry (DESIGN.md §6.1): a warning, not downtime. One CERT EXPIRING notice
//! per certificate, and again when its last day begins. Pure: times are parameters.

use crate::text::{human_duration, timestamp};

/// The last day of a certificate: it is told of once more.
const LAST_DAY_MS: i64 = 86_400_000;

/// The flag that keeps a certificate's notice to one per stage (`cert:` while more than a day
/// is left, `cert-1d:` on its last day).
pub fn flag(not_after_ms: i64, now_ms: i64) -> String {
    if not_after_ms - now_ms <= LAST_DAY_MS {
        format!("cert-1d:{not_after_ms}")
    } else {
        format!("cert:{not_after_ms}")
    }
}

/// "the certificate expires at 2026-12-07T12:00:00Z, in 5 d 00 h 00 m".
pub fn summary(not_after_ms: i64, now_ms: i64) -> String {
    format!(
        "the certificate expires at {}, in {}",
        timestamp(not_after_ms),
        human_duration((not_after_ms - now_ms).max(0))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn told_once_and_again_on_the_last_day() {
        let now = 1_800_000_000_000;
        let not_after = now + 5 * LAST_DAY_MS;
        assert_eq!(flag(not_after, now), format!("cert:{not_after}"));
        // Four days later: the same certificate, the same flag (no second notice).
        assert_eq!(
            flag(not_after, now + 4 * LAST_DAY_MS - 1),
            format!("cert:{not_after}")
        );
        // Its last day: a new flag, one more notice.
        assert_eq!(
            flag(not_after, now + 4 * LAST_DAY_MS),
            format!("cert-1d:{not_after}")
        );
        // A renewed certificate is another notAfter: told afresh.
        assert_ne!(
            flag(not_after + 90 * LAST_DAY_MS, now),
            flag(not_after, now)
        );
        assert_eq!(
            summary(now + 5 * LAST_DAY_MS, now),
            "the certificate expires at 2027-01-20T08:00:00Z, in 5 d 00 h 00 m"
        );
    }
}
