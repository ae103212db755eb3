//! Text for people and JSON alike: instants as RFC 3339 UTC, durations, exact percentages.
//!
//! The lowest layer beside `clock`: everything that prints a time or a share formats it here,
//! so the CLI, reports, statements, alerts and the endpoint agree to the character.

/// An instant (UTC milliseconds) as RFC 3339, e.g. `2026-10-01T00:00:30Z`.
pub fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `part / whole` for people, truncated (never rounded up past a target) and computed on
/// integers: 99.89997% shows as 99.8999%, exactly 99.9% as 99.9000%.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "n/a".to_string();
    }
    let millionths = (part as u128) * 1_000_000 / (whole as u128);
    format!("{}.{:04}%", millionths / 10_000, millionths % 10_000)
}

/// A duration for people: "1 h 02 m 03 s", "45 s".
pub fn human_duration(ms: i64) -> String {
    if ms < 0 {
        return format!("-{}", human_duration(-ms));
    }
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, _) => format!("{m} m {sec:02} s"),
        (0, _, _) => format!("{h} h {m:02} m {sec:02} s"),
        _ => format!("{d} d {h:02} h {m:02} m"),
    }
}

/// An instant as RFC 3339 UTC to the second, for tables people read.
pub fn timestamp_to_second(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// An error and every `source` beneath it, "outer: cause: root cause", for log lines: a
/// `thiserror` enum's own message names the step that failed, its sources say why.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_truncate_on_integers() {
        assert_eq!(percent(9_989_997, 10_000_000), "99.8999%");
        assert_eq!(percent(999, 1000), "99.9000%");
        assert_eq!(percent(1, 1), "100.0000%");
        assert_eq!(percent(0, 5), "0.0000%");
        assert_eq!(percent(0, 0), "n/a");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(45_000), "45 s");
        assert_eq!(human_duration(3_723_000), "1 h 02 m 03 s");
        assert_eq!(human_duration(-18_000), "-18 s");
        assert_eq!(human_duration(90_061_000), "1 d 01 h 01 m");
    }

    #[test]
    fn an_error_chain_shows_every_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open the database")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(Chain(&e).to_string(), "cannot open the database: disk full");
    }
}
