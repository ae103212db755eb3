//! Incident response (DESIGN.md §6.2): how fast an incident was acknowledged and restored,
//! judged against the contract's `respond_within` and `restore_within`, and the figures a
//! report shows (MTTA, breaches, the longest restore). Pure: `now` is a parameter.

use super::values::{Cents, ExactCents, Fraction};

/// The contract's response targets, in milliseconds; `None`: no such target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    /// Incident start → acknowledgement.
    pub respond_within_ms: Option<i64>,
    /// Incident start → end.
    pub restore_within_ms: Option<i64>,
}

/// `breach_credit = { response = "5%", restore = "10%" }`: the share of the service's fee
/// added per breaching incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreachCredit {
    pub response: Fraction,
    pub restore: Fraction,
}

/// Who acknowledged an incident, when, and what they said (`slaprobe ack`, the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub at_ms: i64,
    pub by: Option<String>,
    pub note: Option<String>,
}

/// The longest `by` and `note` an acknowledgement keeps, in characters.
pub const MAX_BY: usize = 200;
pub const MAX_NOTE: usize = 2_000;

impl Ack {
    /// An acknowledgement at `at_ms` with who and why, trimmed (empty means not given), or why
    /// it cannot be recorded.
    pub fn new(at_ms: i64, by: Option<&str>, note: Option<&str>) -> Result<Ack, String> {
        let clean =
            |text: Option<&str>, what: &str, max: usize| -> Result<Option<String>, String> {
                let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
                    return Ok(None);
                };
                if text.chars().count() > max {
                    return Err(format!("{what} is longer than {max} characters"));
                }
                if text
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t')
                {
                    return Err(format!("{what} holds control characters"));
                }
                Ok(Some(text.to_string()))
            };
        Ok(Ack {
            at_ms,
            by: clean(by, "the name (by)", MAX_BY)?,
            note: clean(note, "the note", MAX_NOTE)?,
        })
    }
}

/// One incident as recorded: its start, its end (`None` while open) and its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub ack_ms: Option<i64>,
}

/// An incident judged against the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// Start → acknowledgement; `None` when not acknowledged.
    pub ack_ms: Option<i64>,
    /// Start → end; `None` while open.
    pub restore_ms: Option<i64>,
    /// Not acknowledged within `respond_within` while it lasted longer than that.
    pub response_breach: bool,
    /// Lasted (or, open, has lasted) longer than `restore_within`.
    pub restore_breach: bool,
}

/// Judges one incident as of `now_ms`.
///
/// "Within" includes the limit: acknowledged exactly `respond_within` after the start is in
/// time, and an incident that lasted exactly `restore_within` kept the target. An incident
/// that ended before `respond_within` never breaches response, acknowledged or not.
pub fn judge(incident: Response, targets: Targets, now_ms: i64) -> Judged {
    let lasted = incident.end_ms.unwrap_or(now_ms) - incident.start_ms;
    let ack_ms = incident.ack_ms.map(|at| (at - incident.start_ms).max(0));
    let response_breach = targets
        .respond_within_ms
        .is_some_and(|limit| lasted > limit && ack_ms.is_none_or(|ack| ack > limit));
    let restore_breach = targets
        .restore_within_ms
        .is_some_and(|limit| lasted > limit);
    Judged {
        ack_ms,
        restore_ms: incident.end_ms.map(|end| end - incident.start_ms),
        response_breach,
        restore_breach,
    }
}

/// A period's response figures over the incidents that started in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub acknowledged: usize,
    /// Mean start → acknowledgement over the acknowledged incidents; `None` if none.
    pub mtta_ms: Option<i64>,
    pub response_breaches: u32,
    pub restore_breaches: u32,
    /// The longest start → end of the ended incidents; `None` if none ended.
    pub max_restore_ms: Option<i64>,
}

impl Summary {
    pub fn of<'a>(judged: impl IntoIterator<Item = &'a Judged>) -> Summary {
        let mut s = Summary::default();
        let mut ack_total = 0i64;
        for j in judged {
            if let Some(ack) = j.ack_ms {
                s.acknowledged += 1;
                ack_total += ack;
            }
            s.response_breaches += u32::from(j.response_breach);
            s.restore_breaches += u32::from(j.restore_breach);
            if let Some(restore) = j.restore_ms {
                s.max_restore_ms = Some(s.max_restore_ms.map_or(restore, |m| m.max(restore)));
            }
        }
        s.mtta_ms = (s.acknowledged > 0).then(|| ack_total / s.acknowledged as i64);
        s
    }

    /// What the breaches add to the credit, exactly: each breach its `breach_credit` share
    /// of `fee` (before the contract's cap, which may bring the total down).
    pub fn breach_credit(&self, fee: Cents, credit: BreachCredit) -> ExactCents {
        let times = |share: Fraction, n: u32| {
            ExactCents::new(
                fee.0 as i128 * share.num() as i128 * n as i128,
                share.den() as i128,
            )
        };
        times(credit.response, self.response_breaches)
            + times(credit.restore, self.restore_breaches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_790_000_000_000;

    fn targets() -> Targets {
        Targets {
            respond_within_ms: Some(15 * MIN),
            restore_within_ms: Some(4 * 60 * MIN),
        }
    }

    fn incident(minutes: Option<i64>, ack_after: Option<i64>) -> Response {
        Response {
            start_ms: T0,
            end_ms: minutes.map(|m| T0 + m * MIN),
            ack_ms: ack_after.map(|m| T0 + m * MIN),
        }
    }

    #[test]
    fn incidents_are_judged_against_the_targets() {
        // (lasted minutes or open, acknowledged after minutes, now after minutes,
        //  ack, restore, response breach, restore breach), by hand:
        #[allow(clippy::type_complexity)]
        let table: &[(
            Option<i64>,
            Option<i64>,
            i64,
            Option<i64>,
            Option<i64>,
            bool,
            bool,
        )] = &[
            // Acknowledged in time (10 min), restored in 30 min: no breach.
            (Some(30), Some(10), 600, Some(10), Some(30), false, false),
            // Acknowledged exactly at 15 min: in time.
            (Some(30), Some(15), 600, Some(15), Some(30), false, false),
            // Acknowledged late (20 min): response breach.
            (Some(30), Some(20), 600, Some(20), Some(30), true, false),
            // Never acknowledged, ended after 12 min, before respond_within: no breach.
            (Some(12), None, 600, None, Some(12), false, false),
            // Never acknowledged, lasted 16 min: response breach.
            (Some(16), None, 600, None, Some(16), true, false),
            // Lasted exactly 4 h: restore kept.
            (Some(240), Some(5), 600, Some(5), Some(240), false, false),
            // Lasted 4 h 1 min: restore breach.
            (Some(241), Some(5), 600, Some(5), Some(241), false, true),
            // Open for 14 min, not acknowledged: nothing yet.
            (None, None, 14, None, None, false, false),
            // Open for 16 min, not acknowledged: response breach in progress.
            (None, None, 16, None, None, true, false),
            // Open for 5 h, acknowledged at 3 min: restore breach in progress.
            (None, Some(3), 300, Some(3), None, false, true),
        ];
        for &(lasted, ack, now, want_ack, want_restore, response, restore) in table {
            let j = judge(incident(lasted, ack), targets(), T0 + now * MIN);
            let row = (lasted, ack, now);
            assert_eq!(j.ack_ms, want_ack.map(|m| m * MIN), "{row:?}");
            assert_eq!(j.restore_ms, want_restore.map(|m| m * MIN), "{row:?}");
            assert_eq!(j.response_breach, response, "{row:?} response");
            assert_eq!(j.restore_breach, restore, "{row:?} restore");
        }
    }

    #[test]
    fn an_ack_keeps_a_clean_name_and_note() {
        let ack = Ack::new(5, Some("  jo "), Some("")).unwrap();
        assert_eq!((ack.by.as_deref(), ack.note), (Some("jo"), None));
        assert!(Ack::new(5, Some("a\u{1b}[31m"), None).is_err());
        assert!(Ack::new(5, None, Some(&"x".repeat(MAX_NOTE + 1))).is_err());
        let multi = Ack::new(5, None, Some("line 1\nline 2")).unwrap();
        assert_eq!(multi.note.as_deref(), Some("line 1\nline 2"));
    }

    #[test]
    fn without_targets_nothing_breaches() {
        let j = judge(
            incident(Some(600), None),
            Targets::default(),
            T0 + 700 * MIN,
        );
        assert!(!j.response_breach && !j.restore_breach);
        assert_eq!(j.restore_ms, Some(600 * MIN));
    }

    #[test]
    fn the_summary_is_computed_by_hand() {
        // Acknowledged after 10 and 20 min (MTTA 15 min), one never acknowledged that lasted
        // 16 min, one open; restores of 30, 300 and 16 min.
        let now = T0 + 1000 * MIN;
        let judged: Vec<Judged> = [
            incident(Some(30), Some(10)),
            incident(Some(300), Some(20)),
            incident(Some(16), None),
            incident(None, None),
        ]
        .into_iter()
        .map(|i| judge(i, targets(), now))
        .collect();
        let s = Summary::of(&judged);
        assert_eq!(s.acknowledged, 2);
        assert_eq!(s.mtta_ms, Some(15 * MIN));
        // Late at 20 min, never at 16 min, never and open for 1000 min.
        assert_eq!(s.response_breaches, 3);
        // 300 min and the open one.
        assert_eq!(s.restore_breaches, 2);
        assert_eq!(s.max_restore_ms, Some(300 * MIN));
        let credit = BreachCredit {
            response: Fraction::parse_percent("5%").unwrap(),
            restore: Fraction::parse_percent("10%").unwrap(),
        };
        // 3 × 5% + 2 × 10% = 35% of 333.33 = 116.6655 → 116.67 (in cents: 11,666.55 → 11,667).
        let amount = s.breach_credit(Cents(33_333), credit);
        assert_eq!(amount, ExactCents::new(1_166_655, 100));
        assert_eq!(amount.round_half_up(), Cents(11_667));
        assert_eq!(Summary::of(&[]).mtta_ms, None);
    }
}
