//! TLS certificate expiry: reads `notAfter` from the peer's leaf certificate.

use std::time::Duration;

use x509_cert::der::Decode;

use super::{Failure, Reason};

/// Checks the certificate (DER) against `now`: an expired one fails as `tls`; one that expires
/// within `warn` is a warning (its `notAfter`, DESIGN.md §6.1), not a failure: the service is
/// up.
pub fn check_expiry(
    der: &[u8],
    warn: Duration,
    now: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>, Failure> {
    let not_after = not_after(der).map_err(|e| {
        Failure::new(
            Reason::Tls,
            format!("cannot read the peer certificate: {e}"),
        )
    })?;
    let remaining = not_after.duration_since(now);
    let margin = jiff::SignedDuration::try_from(warn).unwrap_or(jiff::SignedDuration::MAX);
    if remaining.is_negative() {
        return Err(Failure::new(
            Reason::Tls,
            format!("certificate expired at {not_after}"),
        ));
    }
    Ok((remaining < margin).then_some(not_after))
}

/// The certificate's `notAfter` instant.
pub fn not_after(der: &[u8]) -> Result<jiff::Timestamp, String> {
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let since_epoch = cert.tbs_certificate.validity.not_after.to_unix_duration();
    jiff::Timestamp::from_second(since_epoch.as_secs() as i64).map_err(|e| e.to_string())
}
