//! Reads a spanned TOML document key by key, collecting every error with its byte position.
//!
//! A `Table` remembers which keys were asked for; whatever is left is reported as unknown, with
//! the nearest known key as a suggestion. Value readers never stop at the first problem: they
//! record it in `Diagnostics` and return `None`, so one run of `check` lists every error.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeString, DeValue};

use crate::sla::values::{Cents, Fraction};

pub(crate) type Value<'a, 'i> = &'a Spanned<DeValue<'i>>;

/// The errors found so far, as (byte offset, message).
#[derive(Default)]
pub(crate) struct Diagnostics {
    pub errors: Vec<(usize, String)>,
}

impl Diagnostics {
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push((span.start, message.into()));
    }

    /// Reads a value with `parse`, recording its error at the value's position.
    pub fn parse<T>(
        &mut self,
        value: Value<'_, '_>,
        key: &str,
        parse: impl FnOnce(&DeValue<'_>) -> Result<T, String>,
    ) -> Option<T> {
        match parse(value.get_ref()) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(value.span(), format!("`{key}`: {message}"));
                None
            }
        }
    }
}

/// One TOML table being read.
pub(crate) struct Table<'a, 'i> {
    entries: Vec<(&'a Spanned<DeString<'i>>, Value<'a, 'i>)>,
    asked: Vec<&'static str>,
    /// How the table is named in messages, e.g. "[[service]] \"acme-api\"".
    pub name: String,
    pub span: Range<usize>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// Views `value` as a table, or records that it must be one.
    pub fn new(value: Value<'a, 'i>, name: &str, d: &mut Diagnostics) -> Option<Self> {
        match value.get_ref() {
            DeValue::Table(table) => Some(Table {
                entries: table.iter().collect(),
                asked: Vec::new(),
                name: name.to_string(),
                span: value.span(),
            }),
            other => {
                d.error(
                    value.span(),
                    format!("{name} must be a table, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The value of `key`, if present. Marks `key` as known.
    pub fn get(&mut self, key: &'static str) -> Option<Value<'a, 'i>> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| *v)
    }

    /// Whether `key` is present, without marking it known.
    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.get_ref().as_ref() == key)
    }

    /// The span of `key`'s name, or of the table when it is absent.
    pub fn key_span(&self, key: &str) -> Range<usize> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
            .unwrap_or_else(|| self.span.clone())
    }

    /// Records `key` as missing.
    pub fn missing(&self, key: &str, hint: &str, d: &mut Diagnostics) {
        d.error(
            self.span.clone(),
            format!("{} is missing `{key}`: {hint}", self.name),
        );
    }

    /// Reports every key that was never asked for.
    pub fn finish(self, d: &mut Diagnostics) {
        for (key, _) in &self.entries {
            let key_text: &str = key.get_ref().as_ref();
            if self.asked.contains(&key_text) {
                continue;
            }
            let nearest = self
                .asked
                .iter()
                .map(|k| (strsim::damerau_levenshtein(k, key_text), *k))
                .min();
            let hint = match nearest {
                Some((distance, k)) if distance <= 3 => format!("did you mean `{k}`?"),
                _ => {
                    let mut known = self.asked.clone();
                    known.sort_unstable();
                    format!("known keys are: {}", known.join(", "))
                }
            };
            d.error(
                key.span(),
                format!("unknown key `{key_text}` in {}: {hint}", self.name),
            );
        }
    }

    // Typed getters: each returns `None` when the key is absent or its value is bad (the
    // latter recorded in `d`).

    pub fn string(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<String> {
        let v = self.get(key)?;
        d.parse(v, key, |v| as_string(v).map(str::to_string))
    }

    pub fn bool(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<bool> {
        let v = self.get(key)?;
        d.parse(v, key, |v| match v {
            DeValue::Boolean(b) => Ok(*b),
            other => Err(format!(
                "expected true or false, found {}",
                type_name(other)
            )),
        })
    }

    pub fn duration(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Duration> {
        let v = self.get(key)?;
        d.parse(v, key, parse_duration)
    }

    /// A duration that may be zero ("0s": off).
    pub fn duration_or_zero(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Duration> {
        let v = self.get(key)?;
        d.parse(v, key, |v| match v {
            DeValue::String(s) if humantime::parse_duration(s).is_ok_and(|d| d.is_zero()) => {
                Ok(Duration::ZERO)
            }
            other => parse_duration(other),
        })
    }

    pub fn percent(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Fraction> {
        let v = self.get(key)?;
        d.parse(v, key, parse_percent)
    }

    pub fn money(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Cents> {
        let v = self.get(key)?;
        d.parse(v, key, |v| match v {
            DeValue::Integer(i) if i.radix() == 10 => {
                Cents::parse(i.as_str()).map_err(|e| e.to_string())
            }
            DeValue::Float(f) => Cents::parse(f.as_str()).map_err(|e| e.to_string()),
            DeValue::String(s) => Cents::parse(s).map_err(|e| e.to_string()),
            other => Err(format!(
                "expected an amount such as 2000.00, found {}",
                type_name(other)
            )),
        })
    }

    /// An integer in `min..=max`.
    pub fn integer(
        &mut self,
        key: &'static str,
        min: u64,
        max: u64,
        d: &mut Diagnostics,
    ) -> Option<u64> {
        let v = self.get(key)?;
        d.parse(v, key, |v| {
            let DeValue::Integer(i) = v else {
                return Err(format!(
                    "expected a whole number from {min} to {max}, found {}",
                    type_name(v)
                ));
            };
            match u64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{} is out of range: write a whole number from {min} to {max}",
                    i.as_str()
                )),
            }
        })
    }

    /// A list of strings; a single string is read as a list of one.
    pub fn strings(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Vec<String>> {
        let v = self.get(key)?;
        d.parse(v, key, |v| match v {
            DeValue::String(s) => Ok(vec![s.to_string()]),
            DeValue::Array(items) => items
                .into_iter()
                .map(|item| as_string(item.get_ref()).map(str::to_string))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("every item {e}")),
            other => Err(format!(
                "expected a list of strings such as [\"a\", \"b\"], found {}",
                type_name(other)
            )),
        })
    }

    /// One of a fixed set of words, e.g. `no_data = "exclude"`.
    pub fn choice<T: Copy>(
        &mut self,
        key: &'static str,
        options: &[(&str, T)],
        d: &mut Diagnostics,
    ) -> Option<T> {
        let v = self.get(key)?;
        d.parse(v, key, |v| {
            let text = as_string(v)?;
            options
                .iter()
                .find(|(word, _)| *word == text)
                .map(|(_, value)| *value)
                .ok_or_else(|| {
                    let words: Vec<String> =
                        options.iter().map(|(w, _)| format!("\"{w}\"")).collect();
                    format!("`{text}` is not allowed: write one of {}", words.join(", "))
                })
        })
    }

    /// An instant: an RFC 3339 string or a TOML offset date-time.
    pub fn instant(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<jiff::Timestamp> {
        let v = self.get(key)?;
        d.parse(v, key, parse_instant)
    }
}

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(crate) fn as_string<'v>(v: &'v DeValue<'_>) -> Result<&'v str, String> {
    match v {
        DeValue::String(s) => Ok(s.as_ref()),
        other => Err(format!("expected a string, found {}", type_name(other))),
    }
}

pub(crate) fn parse_duration(v: &DeValue<'_>) -> Result<Duration, String> {
    const HINT: &str = "write a duration such as \"30s\", \"5m\" or \"1h30m\"";
    let text = match v {
        DeValue::String(s) => s.as_ref(),
        DeValue::Integer(i) => {
            return Err(format!(
                "a bare number ({}) has no unit: {HINT}",
                i.as_str()
            ));
        }
        other => {
            return Err(format!(
                "expected a string, found {}: {HINT}",
                type_name(other)
            ));
        }
    };
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("`{text}` is zero: {HINT}")),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("`{text}` is not a duration ({e}): {HINT}")),
    }
}

pub(crate) fn parse_percent(v: &DeValue<'_>) -> Result<Fraction, String> {
    match v {
        DeValue::String(s) => Fraction::parse_percent(s).map_err(|e| e.to_string()),
        DeValue::Integer(_) | DeValue::Float(_) => Err(
            "percentages are strings with a % sign: write e.g. \"99.9%\" (in quotes)".to_string(),
        ),
        other => Err(format!(
            "expected a percentage such as \"99.9%\", found {}",
            type_name(other)
        )),
    }
}

pub(crate) fn parse_instant(v: &DeValue<'_>) -> Result<jiff::Timestamp, String> {
    const HINT: &str =
        "write an RFC 3339 instant with its offset, such as \"2026-11-29T02:00:00Z\"";
    let text = match v {
        DeValue::String(s) => s.to_string(),
        DeValue::Datetime(dt) => {
            if dt.offset.is_none() || dt.time.is_none() {
                return Err(format!("`{dt}` has no time zone offset: {HINT}"));
            }
            dt.to_string()
        }
        other => {
            return Err(format!(
                "expected an instant, found {}: {HINT}",
                type_name(other)
            ));
        }
    };
    text.parse::<jiff::Timestamp>()
        .map_err(|_| format!("`{text}` is not an instant: {HINT}"))
}

/// Converts a byte offset into a 1-based line and (character) column.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}
