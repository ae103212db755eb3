//! A large config read a piece at a time: the TOML parser holds every token and event of the text
//! it parses besides the document it builds (for 100,000 services, 146 MB of the 253 MB it took
//! at once), so a file over `PIECE_BYTES` is cut before `[[service]]` headers, each piece
//! parsed alone, and the pieces' documents joined. Anything unusual (a piece that does not
//! parse, a table in two pieces, a `service` key written as a value) gives `None`, and the
//! caller parses the whole text as one: that reading is the reference, and the one whose errors
//! are shown.

use toml::de::{DeTable, DeValue};

/// Files up to this size are parsed whole; larger ones in pieces of about this size.
pub const PIECE_BYTES: usize = 1 << 20;

/// The header each piece after the first starts with.
const HEADER: &str = "[[service]]";

/// `text`'s document, parsed in pieces; `None` when it is not large or not plain enough (see
/// the module's note). Positions in the result are relative to each piece: use it only for a
/// config that has no errors.
pub fn parse(text: &str) -> Option<DeTable<'_>> {
    if text.len() <= PIECE_BYTES || writes_service_as_a_value(text) {
        return None;
    }
    let mut pieces = split(text).into_iter();
    let mut document = DeTable::parse(pieces.next()?).ok()?.into_inner();
    for piece in pieces {
        for (key, value) in DeTable::parse(piece).ok()?.into_inner() {
            let name = key.get_ref().as_ref();
            let existing = document
                .iter_mut()
                .find(|(k, _)| k.get_ref().as_ref() == name)
                .map(|(_, v)| v);
            match existing {
                None => {
                    document.insert(key, value);
                }
                Some(existing) if name == "service" => {
                    let (DeValue::Array(services), DeValue::Array(more)) =
                        (existing.get_mut(), value.into_inner())
                    else {
                        return None;
                    };
                    for service in more {
                        services.push(service);
                    }
                }
                // The same table in two pieces: an error the whole reading reports.
                Some(_) => return None,
            }
        }
    }
    Some(document)
}

/// Whether a line sets `service` as a key (`service = [...]`, an array that `[[service]]`
/// headers may not extend). Lines of other tables that set a `service` key make this true too;
/// the text is then parsed whole, which is only slower.
fn writes_service_as_a_value(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        let rest = line
            .strip_prefix("service")
            .or_else(|| line.strip_prefix("\"service\""))
            .or_else(|| line.strip_prefix("'service'"));
        rest.is_some_and(|r| r.trim_start().starts_with(['=', '.']))
    })
}

/// `text` cut before lines that are exactly `[[service]]`, into pieces of at least
/// `PIECE_BYTES` (but the last). The first `[[service]]` line is never a cut: the first piece
/// holds the tables before the services and the first services. A cut inside a multi-line
/// string or array leaves the piece before it unfinished, so it does not parse.
fn split(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    let mut seen_header = false;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == HEADER {
            if seen_header && offset - start >= PIECE_BYTES {
                pieces.push(&text[start..offset]);
                start = offset;
            }
            seen_header = true;
        }
        offset += line.len();
    }
    pieces.push(&text[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A config of `services` HTTP services under two contracts, with a maintenance window
    /// after the services.
    fn config(services: usize, extra: &str) -> String {
        let mut text = String::from(
            "[daemon]\ndatabase = \"/tmp/x.db\"\n\n\
             [[contract]]\nid = \"a\"\nclient = \"A\"\ntarget = \"99.9%\"\n\n\
             [[contract]]\nid = \"b\"\nclient = \"B\"\ntarget = \"99%\"\n\n",
        );
        for i in 0..services {
            let contract = if i % 3 == 0 { "a" } else { "b" };
            text.push_str(&format!(
                "[[service]]\nid = \"svc-{i}\"\ncontract = \"{contract}\"\n\
                 http = \"http://127.0.0.1:{}/health\"\nbody_contains = \"ok\"\n\n",
                8000 + i % 100
            ));
        }
        text.push_str(extra);
        text
    }

    const WINDOW: &str = "[[maintenance]]\ncontract = \"a\"\nstart = \"2026-12-01T02:00:00Z\"\n\
                          duration = \"1h\"\n";

    #[test]
    fn a_large_config_read_in_pieces_is_the_config_read_whole() {
        let text = config(30_000, WINDOW);
        assert!(text.len() > 2 * PIECE_BYTES, "{}", text.len());
        assert!(split(&text).len() >= 3);
        let in_pieces = parse(&text).expect("read in pieces");
        let services = in_pieces
            .get("service")
            .unwrap()
            .get_ref()
            .as_array()
            .unwrap();
        assert_eq!(services.len(), 30_000);
        // Through the whole loader: the same config as the text read whole.
        let file = Path::new("big.toml");
        let config = crate::config::parse(&text, file).unwrap_or_else(|e| panic!("{e}"));
        let whole = crate::config::build::parse_whole(&text, file).unwrap();
        assert_eq!(format!("{config:?}"), format!("{whole:?}"));
        assert_eq!(config.services.len(), 30_000);
        assert_eq!(config.services[29_999].id, "svc-29999");
        assert_eq!(config.maintenance.len(), 1);
    }

    #[test]
    fn an_error_in_a_later_piece_is_shown_where_it_is_in_the_file() {
        let mut text = config(30_000, "");
        let at = text.find("id = \"svc-25000\"").unwrap();
        text.insert_str(at, "colour = \"red\"\n");
        let line = text[..at].lines().count() + 1;
        let errors = crate::config::parse(&text, Path::new("big.toml")).unwrap_err();
        assert_eq!(errors.errors.len(), 1, "{errors}");
        assert_eq!(errors.errors[0].line, line, "{errors}");
        assert_eq!(errors.errors[0].column, 1, "{errors}");
        assert!(errors.errors[0].message.contains("colour"), "{errors}");
        // A table given twice, once in each of two pieces: TOML's error, at its place.
        let text = format!("{}[daemon]\nlisten = \"127.0.0.1:1\"\n", config(30_000, ""));
        let errors = crate::config::parse(&text, Path::new("big.toml")).unwrap_err();
        assert!(
            errors.errors[0].message.contains("TOML syntax error"),
            "{errors}"
        );
        assert_eq!(errors.errors[0].line, text.lines().count() - 1, "{errors}");
    }

    #[test]
    fn a_header_inside_a_string_or_a_service_array_is_read_as_toml_says() {
        // A `[[service]]` line inside a multi-line string is not a cut: the piece before it
        // would not parse, so the text is read whole.
        let long = "x".repeat(PIECE_BYTES + 10);
        let text = format!(
            "{}[[service]]\nid = \"last\"\ncontract = \"a\"\nhttp = \"http://127.0.0.1:1/\"\n\
             body_contains = \"\"\"\n{long}\n[[service]]\n\"\"\"\n",
            config(3, "")
        );
        assert!(parse(&text).is_none());
        let config = crate::config::parse(&text, Path::new("big.toml")).unwrap();
        assert_eq!(config.services.len(), 4);
        let crate::probe::ProbeSpec::Http(last) = &config.services[3].probe else {
            panic!("an HTTP probe");
        };
        assert!(
            last.body_contains
                .as_deref()
                .unwrap()
                .ends_with("\n[[service]]\n")
        );
        // `service = [...]` may not be extended by headers: left to the whole reading.
        assert!(writes_service_as_a_value(
            "x = 1\nservice = [{ id = \"a\" }]\n"
        ));
        assert!(writes_service_as_a_value("\"service\" = []\n"));
        assert!(writes_service_as_a_value("service.id = \"a\"\n"));
        assert!(!writes_service_as_a_value(
            "[[service]]\nid = \"service = 1\"\n"
        ));
        assert!(!writes_service_as_a_value("services = [\"a\"]\n"));
    }
}
