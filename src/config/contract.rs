//! `[[contract]]` tables: target, coverage calendar, no-data policy, fee and credit tiers.

use std::collections::HashSet;

use toml::de::DeValue;

use super::fields::{email_list, required_id, route_reference, time_zone};
use super::reader::{Diagnostics, Table, Value, as_string, type_name};
use super::*;

pub(super) fn contracts_section(
    values: &[Value<'_, '_>],
    default_tz: &TimeZoneName,
    route_ids: &HashSet<&str>,
    d: &mut Diagnostics,
) -> Vec<Contract> {
    let mut contracts: Vec<Contract> = Vec::new();
    let mut seen = Vec::new();
    for value in values {
        let Some(mut t) = Table::new(value, "[[contract]]", d) else {
            continue;
        };
        let id = required_id(&mut t, &mut seen, d);
        let client = t.string("client", d);
        if client.is_none() && !t.has("client") {
            t.missing("client", "write client = \"the client's name\"", d);
        }
        let timezone = t.get("timezone").map(|v| d.parse(v, "timezone", time_zone));
        let target = t.percent("target", d);
        if target.is_none() && !t.has("target") {
            t.missing("target", "write target = \"99.9%\"", d);
        }
        let coverage = t.get("coverage").map(|v| d.parse(v, "coverage", coverage));
        let no_data = t.choice(
            "no_data",
            &[
                ("exclude", NoDataPolicy::Exclude),
                ("hold", NoDataPolicy::Hold),
                ("down", NoDataPolicy::Down),
            ],
            d,
        );
        let granularity = t.choice(
            "granularity",
            &[
                ("second", Granularity::Second),
                ("minute", Granularity::Minute),
            ],
            d,
        );
        let monthly_fee = t.money("monthly_fee", d).unwrap_or_default();
        let currency = t.string("currency", d);
        if let Some(c) = &currency
            && !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            d.error(
                t.get("currency").unwrap().span(),
                format!("`currency`: `{c}` is not an ISO 4217 code: write e.g. \"EUR\" or \"USD\""),
            );
        }
        if monthly_fee > Cents(0) && currency.is_none() {
            t.missing(
                "currency",
                "with a `monthly_fee`, write currency = \"EUR\" (or another ISO 4217 code)",
                d,
            );
        }
        let credits = t
            .get("credits")
            .map(|v| credit_tiers(v, d))
            .unwrap_or_default();
        let credit_cap = t.percent("credit_cap", d);
        let credit_min = t.money("credit_min", d);
        let statement_to = email_list(&mut t, "statement_to", d);
        let statements = t.choice(
            "statements",
            &[
                ("always", StatementPolicy::Always),
                ("on_breach", StatementPolicy::OnBreach),
                ("never", StatementPolicy::Never),
            ],
            d,
        );
        let statement_hour = t.integer("statement_hour", 0, 23, d);
        let at_risk_below = t.percent("at_risk_below", d);
        let alert = route_reference(&mut t, route_ids, d);
        t.finish(d);
        let (Some(id), Some(client), Some(target)) = (id, client, target) else {
            continue;
        };
        contracts.push(Contract {
            id,
            client,
            timezone: timezone.flatten().unwrap_or_else(|| default_tz.clone()),
            target,
            coverage: coverage.flatten().unwrap_or(Coverage::Always),
            no_data: no_data.unwrap_or(NoDataPolicy::Exclude),
            granularity: granularity.unwrap_or(Granularity::Second),
            monthly_fee,
            currency: currency.unwrap_or_default(),
            credits,
            credit_cap: credit_cap.unwrap_or(Fraction::ONE),
            credit_min: credit_min.unwrap_or_default(),
            statement_to,
            statements: statements.unwrap_or(StatementPolicy::Always),
            statement_hour: statement_hour.unwrap_or(6) as u8,
            at_risk_below: at_risk_below
                .unwrap_or_else(|| Fraction::parse_percent("25%").expect("a valid percentage")),
            alert: alert.unwrap_or(Alert::Inherit),
        });
    }
    contracts
}

fn coverage(v: &DeValue<'_>) -> Result<Coverage, String> {
    const HINT: &str = "write \"24x7\" or { days = \"Mon-Fri\", hours = \"09:00-18:00\", \
                        holidays = [\"2026-12-25\"] }";
    let table = match v {
        DeValue::String(s) if s == "24x7" => return Ok(Coverage::Always),
        DeValue::Table(table) => table,
        _ => return Err(format!("not a coverage: {HINT}")),
    };
    let mut days = None;
    let mut hours = None;
    let mut holidays = Vec::new();
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "days" => days = Some(parse_days(as_string(value.get_ref())?)?),
            "hours" => hours = Some(parse_hours(as_string(value.get_ref())?)?),
            "holidays" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(format!("`holidays` must be a list of dates: {HINT}"));
                };
                for item in items {
                    holidays.push(parse_date(item.get_ref())?);
                }
            }
            other => return Err(format!("unknown key `{other}`: {HINT}")),
        }
    }
    let (start_minute, end_minute) = hours.ok_or_else(|| format!("`hours` is missing: {HINT}"))?;
    Ok(Coverage::BusinessHours {
        days: days.unwrap_or([true, true, true, true, true, false, false]),
        start_minute,
        end_minute,
        holidays,
    })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    const HINT: &str = "write days such as \"Mon-Fri\" or \"Mon,Wed,Fri\"";
    let index = |name: &str| {
        let lower = name.trim().to_ascii_lowercase();
        NAMES
            .iter()
            .position(|n| lower.starts_with(n) && lower.len() >= 3)
            .ok_or_else(|| format!("`{}` is not a day: {HINT}", name.trim()))
    };
    let mut days = [false; 7];
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                let mut i = a;
                loop {
                    days[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days[index(part)?] = true,
        }
    }
    Ok(days)
}

fn parse_hours(text: &str) -> Result<(u32, u32), String> {
    const HINT: &str = "write hours such as \"09:00-18:00\" (24-hour clock, end after start)";
    let minute = |s: &str| -> Result<u32, String> {
        let (h, m) = s
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: {HINT}"))?;
        let h: u32 = h.parse().map_err(|_| format!("`{text}`: {HINT}"))?;
        let m: u32 = m.parse().map_err(|_| format!("`{text}`: {HINT}"))?;
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(format!("`{text}`: {HINT}"));
        }
        Ok(h * 60 + m)
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}`: {HINT}"))?;
    let (start, end) = (minute(a)?, minute(b)?);
    if end <= start {
        return Err(format!("`{text}`: {HINT}"));
    }
    Ok((start, end))
}

fn parse_date(v: &DeValue<'_>) -> Result<jiff::civil::Date, String> {
    let text = match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        other => {
            return Err(format!(
                "expected a date such as \"2026-12-25\", found {}",
                type_name(other)
            ));
        }
    };
    text.parse::<jiff::civil::Date>()
        .map_err(|_| format!("`{text}` is not a date: write e.g. \"2026-12-25\""))
}

fn credit_tiers(v: Value<'_, '_>, d: &mut Diagnostics) -> Vec<CreditTier> {
    const HINT: &str = "write credits = [ { below = \"99.9%\", credit = \"10%\" }, … ]";
    let tiers = d.parse(v, "credits", |v| {
        let DeValue::Array(items) = v else {
            return Err(format!("expected a list of tiers: {HINT}"));
        };
        let mut tiers = Vec::new();
        for item in items {
            let DeValue::Table(table) = item.get_ref() else {
                return Err(format!("every tier is a table: {HINT}"));
            };
            let (mut below, mut credit) = (None, None);
            for (key, value) in table.iter() {
                match key.get_ref().as_ref() {
                    "below" => below = Some(super::reader::parse_percent(value.get_ref())?),
                    "credit" => credit = Some(super::reader::parse_percent(value.get_ref())?),
                    other => return Err(format!("unknown key `{other}` in a tier: {HINT}")),
                }
            }
            match (below, credit) {
                (Some(below), Some(credit)) => tiers.push(CreditTier { below, credit }),
                _ => return Err(format!("every tier needs `below` and `credit`: {HINT}")),
            }
        }
        tiers.sort_by(|a, b| {
            let lhs = a.below.num() as u128 * b.below.den() as u128;
            let rhs = b.below.num() as u128 * a.below.den() as u128;
            rhs.cmp(&lhs)
        });
        for pair in tiers.windows(2) {
            if pair[0].below == pair[1].below {
                return Err(format!(
                    "two tiers are below {}: each `below` must differ",
                    pair[0].below
                ));
            }
            let lower_credit = pair[1].credit.num() as u128 * pair[0].credit.den() as u128;
            let higher_credit = pair[0].credit.num() as u128 * pair[1].credit.den() as u128;
            if lower_credit < higher_credit {
                return Err(format!(
                    "the tier below {} credits less than the tier below {}: credits must not \
                     shrink as availability falls",
                    pair[1].below, pair[0].below
                ));
            }
        }
        Ok(tiers)
    });
    tiers.unwrap_or_default()
}
