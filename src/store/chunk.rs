//! The compact encoding of raw outcomes: one blob per service and hour, appended to.
//!
//! Each outcome is three fields: the milliseconds since the start of the hour (LEB128), the
//! latency in microseconds (LEB128) and a code byte (0 ok, else `Reason::code`). A healthy
//! service at a 30 s interval costs about 7 bytes per outcome; failure details live in their
//! own table, since failures are rare.

use crate::probe::Reason;

pub const HOUR_MS: i64 = 3_600_000;

/// The hour (since the Unix epoch) an instant in milliseconds falls in.
pub fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS)
}

/// One outcome as stored: no failure detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawOutcome {
    pub at_ms: i64,
    pub latency_us: u32,
    /// `None` when the probe succeeded.
    pub reason: Option<Reason>,
}

impl RawOutcome {
    pub fn is_ok(&self) -> bool {
        self.reason.is_none()
    }
}

/// Appends `outcome` (which must fall in `hour`) to `buffer`.
pub fn encode(outcome: &RawOutcome, buffer: &mut Vec<u8>) {
    let offset = outcome.at_ms - hour_of(outcome.at_ms) * HOUR_MS;
    write_varint(offset as u64, buffer);
    write_varint(u64::from(outcome.latency_us), buffer);
    buffer.push(outcome.reason.map_or(0, Reason::code));
}

/// Decodes a chunk of `hour`. A truncated or corrupt tail is ignored (the good prefix is kept).
pub fn decode(hour: i64, data: &[u8]) -> Vec<RawOutcome> {
    let mut outcomes = Vec::with_capacity(data.len() / 7);
    let mut rest = data;
    while let Some((offset, r)) = read_varint(rest) {
        let Some((latency, r)) = read_varint(r) else {
            break;
        };
        let Some((&code, r)) = r.split_first() else {
            break;
        };
        rest = r;
        if offset >= HOUR_MS as u64 {
            break;
        }
        outcomes.push(RawOutcome {
            at_ms: hour * HOUR_MS + offset as i64,
            latency_us: latency.min(u64::from(u32::MAX)) as u32,
            reason: if code == 0 {
                None
            } else {
                Some(Reason::from_code(code).unwrap_or(Reason::Internal))
            },
        });
    }
    outcomes
}

pub(crate) fn write_varint(mut value: u64, buffer: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buffer.push(byte);
            return;
        }
        buffer.push(byte | 0x80);
    }
}

pub(crate) fn read_varint(data: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &data[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip() {
        let hour = hour_of(1_790_000_000_000);
        let outcomes = [
            RawOutcome {
                at_ms: hour * HOUR_MS,
                latency_us: 0,
                reason: None,
            },
            RawOutcome {
                at_ms: hour * HOUR_MS + 1_234_567,
                latency_us: 10_000_000,
                reason: Some(Reason::Timeout),
            },
            RawOutcome {
                at_ms: hour * HOUR_MS + HOUR_MS - 1,
                latency_us: 312,
                reason: Some(Reason::CertExpiry),
            },
        ];
        let mut buffer = Vec::new();
        for o in &outcomes {
            encode(o, &mut buffer);
        }
        assert_eq!(decode(hour, &buffer), outcomes);
        // A torn write keeps the whole outcomes before it.
        assert_eq!(decode(hour, &buffer[..buffer.len() - 1]), outcomes[..2]);
    }

    #[test]
    fn healthy_outcome_is_small() {
        let mut buffer = Vec::new();
        encode(
            &RawOutcome {
                at_ms: 3_599_000,
                latency_us: 45_000,
                reason: None,
            },
            &mut buffer,
        );
        assert!(buffer.len() <= 8, "{} bytes", buffer.len());
    }

    proptest! {
        #[test]
        fn varint_round_trips(value: u64) {
            let mut buffer = Vec::new();
            write_varint(value, &mut buffer);
            prop_assert_eq!(read_varint(&buffer), Some((value, &[][..])));
        }
    }
}
