//! The lock whose holder speaks for a fleet (DESIGN.md §6.3 "one voice"): a session advisory
//! lock, so that it is released the moment the holder's connection ends.

use postgres::Client;

/// Any number: the advisory lock whose holder speaks for the fleet.
pub const SPEAKER_LOCK: i64 = 0x736c_6170_0002;

/// Takes the lock if no other session holds it; whether this session holds it now.
pub fn try_take(client: &mut Client) -> Result<bool, postgres::Error> {
    Ok(client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&SPEAKER_LOCK])?
        .get(0))
}

/// A round trip on the session holding the lock: an error means it (and the lock) is gone.
pub fn check(client: &mut Client) -> Result<(), postgres::Error> {
    client.simple_query("SELECT 1").map(|_| ())
}

/// The `application_name` of the session holding the lock, if any.
pub fn holder(client: &mut Client) -> Result<Option<String>, postgres::Error> {
    // A bigint advisory key shows in pg_locks as its high half (classid) and low half (objid).
    Ok(client
        .query_opt(
            "SELECT a.application_name FROM pg_locks l
             JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1",
            &[&(SPEAKER_LOCK >> 32), &(SPEAKER_LOCK & 0xffff_ffff)],
        )?
        .map(|r| r.get(0)))
}
