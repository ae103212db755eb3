//! `/metrics` through a strict OpenMetrics reader: what Prometheus's own linter (`promtool check
//! metrics`) and the OpenMetrics specification reject is an error here too.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use slaprobe::runtime::{self, Options};

use crate::support::{Mode, TestHttp, Workspace};

/// One family: its type and the names its samples may carry.
struct Family {
    kind: String,
    /// Bucket counts by series (labels without `le`) in order of `le`, for histograms.
    buckets: BTreeMap<String, Vec<(f64, f64)>>,
    counts: BTreeMap<String, f64>,
}

/// Reads `text` as OpenMetrics and returns every violation found, each with its line.
fn violations(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut seen_series = HashSet::new();
    let mut ended = false;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let mut problem = |what: String| problems.push(format!("line {n}: {what}: {line}"));
        if ended {
            problem("text after # EOF".into());
            continue;
        }
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.splitn(3, ' ');
            let (keyword, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            match keyword {
                "TYPE" => {
                    let kind = words.next().unwrap_or("").to_string();
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "info",
                        "unknown",
                    ];
                    if !known.contains(&kind.as_str()) {
                        problem(format!("unknown type `{kind}`"));
                    }
                    if families.contains_key(name) {
                        problem(format!("family `{name}` declared twice"));
                    }
                    if kind == "counter" && name.ends_with("_total") {
                        problem("a counter family is named without `_total`".into());
                    }
                    families.insert(
                        name.to_string(),
                        Family {
                            kind,
                            buckets: BTreeMap::new(),
                            counts: BTreeMap::new(),
                        },
                    );
                    current = Some(name.to_string());
                }
                "HELP" | "UNIT" => {
                    if current.as_deref() != Some(name) && families.contains_key(name) {
                        problem(format!("{keyword} for `{name}` away from its family"));
                    }
                }
                _ => problem("unknown comment line".into()),
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            problem("not a sample, a descriptor or # EOF".into());
            continue;
        }
        let (name, labels, value) = match parse_sample(line) {
            Ok(sample) => sample,
            Err(e) => {
                problem(e);
                continue;
            }
        };
        let Some(family_name) = current.clone() else {
            problem("a sample before any # TYPE".into());
            continue;
        };
        let family = families.get_mut(&family_name).unwrap();
        let suffix = name.strip_prefix(family_name.as_str()).unwrap_or("?");
        let allowed: &[&str] = match family.kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        if !allowed.contains(&suffix) {
            problem(format!(
                "sample `{name}` does not belong to {} family `{family_name}`",
                family.kind
            ));
            continue;
        }
        let has = |label: &str| labels.iter().any(|(k, _)| k == label);
        if has("quantile") && family.kind != "summary" {
            problem("a `quantile` label outside a summary".into());
        }
        if has("le") != (family.kind == "histogram" && suffix == "_bucket") {
            problem("an `le` label belongs to histogram buckets, and only there".into());
        }
        let mut names = HashSet::new();
        for (k, _) in &labels {
            if !names.insert(k.clone()) {
                problem(format!("label `{k}` twice"));
            }
        }
        let key = format!("{name}{labels:?}");
        if !seen_series.insert(key) {
            problem("the same series twice".into());
        }
        if family.kind == "counter" && (value < 0.0 || value.is_nan()) {
            problem("a counter below zero".into());
        }
        if family.kind == "histogram" {
            let series = format!(
                "{:?}",
                labels.iter().filter(|(k, _)| k != "le").collect::<Vec<_>>()
            );
            match suffix {
                "_bucket" => {
                    let le = labels.iter().find(|(k, _)| k == "le").unwrap().1.clone();
                    let le: f64 = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap_or(f64::NAN)
                    };
                    family.buckets.entry(series).or_default().push((le, value));
                }
                "_count" => {
                    family.counts.insert(series, value);
                }
                _ => {}
            }
        }
    }
    if !ended {
        problems.push("no # EOF at the end".into());
    }
    for (name, family) in &families {
        for (series, buckets) in &family.buckets {
            let ordered = buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
            if !ordered {
                problems.push(format!(
                    "{name}{series}: buckets not in order or not cumulative"
                ));
            }
            match buckets.last() {
                Some((le, count)) if le.is_infinite() => {
                    if family.counts.get(series) != Some(count) {
                        problems.push(format!("{name}{series}: the +Inf bucket is not _count"));
                    }
                }
                _ => problems.push(format!("{name}{series}: no +Inf bucket")),
            }
        }
    }
    problems
}

/// A sample's name, labels and value.
type Sample = (String, Vec<(String, String)>, f64);

/// `name{a="b",c="d"} 1.5` (an optional timestamp after the value).
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("a bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut end = None;
        while let Some(&(start, c)) = chars.peek() {
            if c == '}' {
                end = Some(start + 1);
                break;
            }
            let key_end = inner[start..].find('=').ok_or("a label without `=`")? + start;
            let key = inner[start..key_end].to_string();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("a bad label name `{key}`"));
            }
            if !inner[key_end + 1..].starts_with('"') {
                return Err("a label value not in double quotes".into());
            }
            let mut value = String::new();
            let mut i = key_end + 2;
            let bytes = inner.as_bytes();
            loop {
                match bytes.get(i) {
                    None => return Err("an unterminated label value".into()),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        match bytes.get(i + 1) {
                            Some(b'n') => value.push('\n'),
                            Some(b'"') => value.push('"'),
                            Some(b'\\') => value.push('\\'),
                            _ => return Err("a bad escape in a label value".into()),
                        }
                        i += 2;
                    }
                    Some(_) => {
                        let c = inner[i..].chars().next().unwrap();
                        value.push(c);
                        i += c.len_utf8();
                    }
                }
            }
            labels.push((key, value));
            i += 1;
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err("labels not separated by `,`".into()),
            }
            while chars.peek().is_some_and(|&(at, _)| at < i) {
                chars.next();
            }
        }
        let end = end.ok_or("labels without `}`")?;
        rest = &inner[end..];
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no single space before the value")?
        .split(' ');
    let value = fields.next().unwrap_or("");
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("`{v}` is not a number"))?,
    };
    if let Some(ts) = fields.next()
        && ts.parse::<f64>().is_err()
    {
        return Err(format!("`{ts}` is not a timestamp"));
    }
    if fields.next().is_some() {
        return Err("more after the timestamp".into());
    }
    Ok((name.to_string(), labels, value))
}

#[test]
fn the_reader_rejects_what_promtool_rejects() {
    let good = "# HELP a_seconds How long.\n# TYPE a_seconds histogram\n\
                a_seconds_bucket{le=\"0.1\"} 1\na_seconds_bucket{le=\"+Inf\"} 2\n\
                a_seconds_sum 0.3\na_seconds_count 2\n# TYPE b counter\nb_total{x=\"y\"} 3\n# EOF\n";
    assert_eq!(violations(good), Vec::<String>::new());
    let bad = [
        // A gauge with a quantile label (what the lateness gauge once was).
        "# TYPE late_seconds gauge\nlate_seconds{quantile=\"0.5\"} 0.1\n# EOF\n",
        // A counter sample without _total.
        "# TYPE b counter\nb 3\n# EOF\n",
        // The same series twice.
        "# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n# EOF\n",
        // No EOF.
        "# TYPE g gauge\ng 1\n",
        // Buckets that shrink, and no +Inf.
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\nh_count 5\n# EOF\n",
        // A sample of another family.
        "# TYPE g gauge\nother 1\n# EOF\n",
        // An unquoted label value.
        "# TYPE g gauge\ng{a=1} 1\n# EOF\n",
    ];
    for text in bad {
        assert!(!violations(text).is_empty(), "accepted:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_a_strict_openmetrics_reader() {
    let up = TestHttp::start().await;
    let down = TestHttp::start().await;
    down.set(Mode::Status(503));
    let ws = Workspace::new();
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[[contract]]\nid = \"c\"\nclient = \"C\"\n\
         target = \"99.9%\"\n\n[[service]]\nid = \"web\"\ncontract = \"c\"\nhttp = \"{}\"\n\
         interval = \"1s\"\ntimeout = \"500ms\"\nretry_interval = \"200ms\"\n\n[[service]]\n\
         id = \"api\"\ncontract = \"c\"\nhttp = \"{}\"\ninterval = \"1s\"\n\
         timeout = \"500ms\"\nretry_interval = \"200ms\"\n",
        up.url("/"),
        down.url("/")
    );
    let running = runtime::start(ws.config_text(&text), Options::default())
        .await
        .unwrap();
    let url = format!("http://{}/metrics", running.endpoint_addr().unwrap());
    let client = reqwest::Client::new();
    let mut page = String::new();
    for _ in 0..100 {
        page = client.get(&url).send().await.unwrap().text().await.unwrap();
        if page.contains("slaprobe_availability_month_ratio")
            && page.contains("slaprobe_schedule_lateness_seconds_count")
            && page.contains("result=\"failed\"")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.stop().await.unwrap();
    let problems = violations(&page);
    assert!(problems.is_empty(), "{}\n\n{page}", problems.join("\n"));
    assert!(
        page.contains("# TYPE slaprobe_schedule_lateness_seconds histogram"),
        "{page}"
    );
}
