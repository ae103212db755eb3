//! Readers for fields several tables share: ids, route references, e-mail lists, time zones.

use std::collections::HashSet;

use toml::de::DeValue;

use super::Alert;
use super::reader::{Diagnostics, Table, as_string, type_name};
use crate::sla::calendar::TimeZoneName;

/// `quorum` on a contract or a service: how many of `[daemon] locations` must see a service
/// down for the fleet's verdict to be down (DESIGN.md §6.3).
pub(super) fn quorum(
    t: &mut Table<'_, '_>,
    locations: &[String],
    d: &mut Diagnostics,
) -> Option<usize> {
    let n = t.integer("quorum", 1, 1_000, d)? as usize;
    if n > locations.len() {
        d.error(
            t.key_span("quorum"),
            format!(
                "`quorum = {n}` is more than the {} location(s) in `[daemon] locations` ({}): \
                 an outage could never be confirmed; write at most {}",
                locations.len(),
                locations.join(", "),
                locations.len()
            ),
        );
        return None;
    }
    Some(n)
}

/// A location's name: short, lower case, as it appears in reports ("confirmed from fra, nyc").
pub(super) fn location_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a location name: use 1 to 32 lower-case letters, digits, '-' and '_', \
             such as \"fra\" or \"us-east\""
        ))
    }
}

const ID_HINT: &str = "use letters, digits, '.', '_' and '-' only";

pub(super) fn time_zone(v: &DeValue<'_>) -> Result<TimeZoneName, String> {
    let name = as_string(v)?;
    jiff::tz::TimeZone::get(name)
        .map(|zone| TimeZoneName {
            name: name.to_string(),
            zone,
        })
        .map_err(|_| {
            format!(
                "unknown time zone `{name}`: write an IANA name such as \"Europe/Berlin\" or \"UTC\""
            )
        })
}

pub(super) fn email_list(
    t: &mut Table<'_, '_>,
    key: &'static str,
    d: &mut Diagnostics,
) -> Vec<String> {
    let Some(list) = t.strings(key, d) else {
        return Vec::new();
    };
    for address in &list {
        let ok = address
            .parse::<lettre::Address>()
            .is_ok_and(|a| a.domain().contains('.'));
        if !ok {
            d.error(
                t.get(key).unwrap().span(),
                format!(
                    "`{key}`: `{address}` is not an e-mail address: write e.g. \"ops@example.com\""
                ),
            );
        }
    }
    list
}

/// Reads `id`, checking its characters and that it is not among `seen` (then adds it there).
pub(super) fn required_id(
    t: &mut Table<'_, '_>,
    seen: &mut Vec<String>,
    d: &mut Diagnostics,
) -> Option<String> {
    let Some(v) = t.get("id") else {
        t.missing("id", "write id = \"a-unique-name\"", d);
        return None;
    };
    let id = d.parse(v, "id", |v| as_string(v).map(str::to_string))?;
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        d.error(
            v.span(),
            format!("`id`: `{id}` is not a valid id: {ID_HINT}"),
        );
        return None;
    }
    if seen.contains(&id) {
        d.error(
            v.span(),
            format!(
                "`id`: `{id}` is used twice in {}: ids must be unique",
                t.name
            ),
        );
        return None;
    }
    t.name = format!("{} \"{id}\"", t.name);
    seen.push(id.clone());
    Some(id)
}

pub(super) fn route_reference(
    t: &mut Table<'_, '_>,
    route_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Option<Alert> {
    let v = t.get("alert")?;
    d.parse(v, "alert", |v| match v {
        DeValue::Boolean(false) => Ok(Alert::Muted),
        DeValue::Boolean(true) => Ok(Alert::Inherit),
        DeValue::String(id) if route_ids.contains(id.as_ref()) => Ok(Alert::Route(id.to_string())),
        DeValue::String(id) => Err(format!(
            "no [[route]] has id `{id}`: define it or write alert = false to mute"
        )),
        other => Err(format!(
            "expected a route id or false, found {}",
            type_name(other)
        )),
    })
}
