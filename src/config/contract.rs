//! `[[contract]]` tables: target, coverage calendar, no-data policy, fee and credit tiers.

use std::collections::HashSet;

use toml::de::DeValue;

use super::fields::{email_list, quorum, required_id, route_reference, time_zone};
use super::reader::{Diagnostics, Table, Value, as_string, type_name};
use super::*;
use crate::sla::calendar::Holiday;
use crate::sla::credit::DowntimeCount;

pub(super) fn contracts_section(
    values: &[Value<'_, '_>],
    default_tz: &TimeZoneName,
    locations: &[String],
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
        let downtime_credit = t.get("downtime_credit").and_then(|v| downtime_credit(v, d));
        let respond_within = t.duration("respond_within", d);
        let restore_within = t.duration("restore_within", d);
        let quorum = quorum(&mut t, locations, d);
        let breach_credit = t.get("breach_credit").and_then(|v| breach_credit(v, d));
        let terms = t
            .get("terms")
            .map(|v| dated_terms(v, d))
            .unwrap_or_default();
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
        let client_token_env = t.string("client_token_env", d);
        let credit_on = t.choice(
            "credit_on",
            &[
                ("service", CreditOn::Service),
                ("contract", CreditOn::Contract),
            ],
            d,
        );
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
            downtime_credit,
            terms,
            respond_within,
            restore_within,
            quorum,
            breach_credit,
            statement_to,
            statements: statements.unwrap_or(StatementPolicy::Always),
            statement_hour: statement_hour.unwrap_or(6) as u8,
            client_token_env,
            credit_on: credit_on.unwrap_or(CreditOn::Service),
            at_risk_below: at_risk_below
                .unwrap_or_else(|| Fraction::parse_percent("25%").expect("a valid percentage")),
            alert: alert.unwrap_or(Alert::Inherit),
        });
    }
    contracts
}

fn coverage(v: &DeValue<'_>) -> Result<Coverage, String> {
    const HINT: &str = "write \"24x7\", { days = \"Mon-Fri\", hours = \"09:00-18:00\" } or \
                        { hours = { \"Mon-Fri\" = \"09:00-18:00\", \"Sat\" = [\"10:00-12:00\"] } }, \
                        with holidays = [\"2026-12-24\", \"--01-01\"] if any";
    let table = match v {
        DeValue::String(s) if s == "24x7" => return Ok(Coverage::Always),
        DeValue::Table(table) => table,
        _ => return Err(format!("not a coverage: {HINT}")),
    };
    let mut days = None;
    let mut hours = None;
    let mut weekly = None;
    let mut holidays = Vec::new();
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "days" => days = Some(parse_days(as_string(value.get_ref())?)?),
            "hours" => match value.get_ref() {
                DeValue::Table(per_day) => weekly = Some(parse_week(per_day)?),
                other => hours = Some(parse_hours(as_string(other)?)?),
            },
            "holidays" => {
                let DeValue::Array(items) = value.get_ref() else {
                    return Err(format!("`holidays` must be a list of dates: {HINT}"));
                };
                for item in items {
                    holidays.push(parse_holiday(item.get_ref())?);
                }
            }
            other => return Err(format!("unknown key `{other}`: {HINT}")),
        }
    }
    match (weekly, hours, days) {
        (Some(_), _, Some(_)) => Err(format!(
            "with `hours` given per day, `days` has nothing to say: drop it ({HINT})"
        )),
        (Some(days), ..) => Ok(Coverage::Weekly { days, holidays }),
        (None, Some((start, end)), days) => Ok(Coverage::business_hours(
            days.unwrap_or([true, true, true, true, true, false, false]),
            start,
            end,
            holidays,
        )),
        (None, None, _) => Err(format!("`hours` is missing: {HINT}")),
    }
}

/// `{ "Mon-Fri" = "09:00-18:00", "Sat" = ["10:00-12:00", "13:00-15:00"] }`: each weekday's
/// ranges; a day named twice is an error.
fn parse_week(per_day: &toml::de::DeTable<'_>) -> Result<[Vec<(u32, u32)>; 7], String> {
    let mut week: [Vec<(u32, u32)>; 7] = Default::default();
    let mut named = [false; 7];
    for (key, value) in per_day.iter() {
        let set = parse_days(key.get_ref())?;
        let ranges = match value.get_ref() {
            DeValue::String(s) => vec![parse_hours(s)?],
            DeValue::Array(items) => items
                .iter()
                .map(|i| as_string(i.get_ref()).and_then(parse_hours))
                .collect::<Result<_, _>>()?,
            other => {
                return Err(format!(
                    "`{}`: expected hours such as \"09:00-18:00\" or a list of them, found {}",
                    key.get_ref(),
                    type_name(other)
                ));
            }
        };
        for day in 0..7 {
            if !set[day] {
                continue;
            }
            if named[day] {
                return Err(format!(
                    "`{}` names a day another key names too: give each day its hours once",
                    key.get_ref()
                ));
            }
            named[day] = true;
            week[day].extend(&ranges);
        }
    }
    Ok(week)
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
    const HINT: &str = "write hours such as \"09:00-18:00\" or \"22:00-06:00\" (24-hour clock; an \
                        end at or before the start is the next day's)";
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
    if start >= 1440 {
        return Err(format!("`{text}`: a range starts before 24:00 ({HINT})"));
    }
    Ok((start, end))
}

/// A holiday: a date (`"2026-12-24"`) or the same day every year (`"--01-01"`).
fn parse_holiday(v: &DeValue<'_>) -> Result<Holiday, String> {
    if let DeValue::String(s) = v
        && let Some(rest) = s.strip_prefix("--")
    {
        let bad = || format!("`{s}` is not a yearly date: write --MM-DD, e.g. \"--01-01\"");
        let (m, d) = rest.split_once('-').ok_or_else(bad)?;
        let (month, day): (i8, i8) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
        // Checked against a leap year, so that --02-29 is allowed (it applies in leap years).
        if m.len() != 2 || d.len() != 2 || jiff::civil::Date::new(2028, month, day).is_err() {
            return Err(bad());
        }
        return Ok(Holiday::Yearly { month, day });
    }
    parse_date(v).map(Holiday::On)
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

/// `[[contract.terms]]` tables (an array of tables inside the contract), sorted by `from`;
/// two with the same `from` are an error.
fn dated_terms(v: Value<'_, '_>, d: &mut Diagnostics) -> Vec<DatedTerms> {
    let DeValue::Array(items) = v.get_ref() else {
        d.error(
            v.span(),
            "`terms` is a list of tables: write [[contract.terms]] sections after the contract",
        );
        return Vec::new();
    };
    let mut all: Vec<DatedTerms> = Vec::new();
    for item in items {
        let Some(mut t) = Table::new(item, "[[contract.terms]]", d) else {
            continue;
        };
        let from = match t.get("from") {
            None => {
                t.missing(
                    "from",
                    "write from = \"2027-01\" (the first month they apply to)",
                    d,
                );
                None
            }
            Some(v) => d.parse(v, "from", |v| {
                let text = as_string(v)?;
                let bad = || format!("`{text}` is not a month: write YYYY-MM, e.g. 2027-01");
                let (y, m) = text.split_once('-').ok_or_else(bad)?;
                let year: i16 = y.parse().map_err(|_| bad())?;
                let month: i8 = m.parse().map_err(|_| bad())?;
                if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&month) {
                    return Err(bad());
                }
                Ok((text.to_string(), year, month))
            }),
        };
        if let Some((text, ..)) = &from
            && all.iter().any(|other| &other.from == text)
        {
            d.error(
                t.key_span("from"),
                format!("two [[contract.terms]] start in {text}: give each month one set of terms"),
            );
        }
        let target = t.percent("target", d);
        let coverage = t
            .get("coverage")
            .and_then(|v| d.parse(v, "coverage", coverage));
        let credits = t.get("credits").map(|v| credit_tiers(v, d));
        let credit_cap = t.percent("credit_cap", d);
        let credit_min = t.money("credit_min", d);
        let monthly_fee = t.money("monthly_fee", d);
        let downtime_credit = t.get("downtime_credit").and_then(|v| downtime_credit(v, d));
        let respond_within = t.duration("respond_within", d);
        let restore_within = t.duration("restore_within", d);
        let breach_credit = t.get("breach_credit").and_then(|v| breach_credit(v, d));
        t.finish(d);
        let Some((from, from_year, from_month)) = from else {
            continue;
        };
        all.push(DatedTerms {
            from,
            from_year,
            from_month,
            target,
            coverage,
            credits,
            credit_cap,
            credit_min,
            monthly_fee,
            downtime_credit,
            respond_within,
            restore_within,
            breach_credit,
        });
    }
    all.sort_by_key(|t| (t.from_year, t.from_month));
    all
}

/// `breach_credit = { response = "5%", restore = "10%" }`: either may be left out (0%).
fn breach_credit(v: Value<'_, '_>, d: &mut Diagnostics) -> Option<BreachCredit> {
    let mut t = Table::new(v, "`breach_credit`", d)?;
    let response = t.percent("response", d);
    let restore = t.percent("restore", d);
    if !t.has("response") && !t.has("restore") {
        d.error(
            v.span(),
            "`breach_credit` names no share: write breach_credit = { response = \"5%\", \
             restore = \"10%\" } (the share of the service's fee per breaching incident)",
        );
    }
    t.finish(d);
    Some(BreachCredit {
        response: response.unwrap_or(Fraction::ZERO),
        restore: restore.unwrap_or(Fraction::ZERO),
    })
}

/// `downtime_credit = { per = "1h", amount = 50.00, count = "started", beyond = "budget" }`.
fn downtime_credit(v: Value<'_, '_>, d: &mut Diagnostics) -> Option<DowntimeCredit> {
    let mut t = Table::new(v, "`downtime_credit`", d)?;
    let per = t.duration("per", d);
    if per.is_none() && !t.has("per") {
        t.missing(
            "per",
            "write per = \"1h\" (the unit of downtime paid for)",
            d,
        );
    }
    if let Some(p) = per
        && p.as_millis() == 0
    {
        d.error(
            t.key_span("per"),
            "`per` must be longer than zero: write e.g. \"1h\"",
        );
    }
    let amount = t.money("amount", d);
    if amount.is_none() && !t.has("amount") {
        t.missing(
            "amount",
            "write amount = 50.00 (paid for each `per` of downtime)",
            d,
        );
    }
    let count = t.choice(
        "count",
        &[
            ("started", DowntimeCount::Started),
            ("prorata", DowntimeCount::Prorata),
        ],
        d,
    );
    let beyond = t.choice("beyond", &[("budget", true)], d);
    t.finish(d);
    Some(DowntimeCredit {
        per_ms: per.filter(|p| p.as_millis() > 0)?.as_millis() as i64,
        amount: amount?,
        count: count.unwrap_or(DowntimeCount::Started),
        beyond_budget: beyond.unwrap_or(false),
    })
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
