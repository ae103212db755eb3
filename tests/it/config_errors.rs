//! A table of broken configs: each error is reported at its line and column, all at once.

use slaprobe::config;

const BASE: &str = "[[contract]]\nid = \"c\"\nclient = \"C\"\ntarget = \"99.9%\"\n";

/// (what is wrong, the config after BASE, expected line, column, text in the message)
const CASES: &[(&str, &str, usize, usize, &str)] = &[
    (
        "days beside hours given per day",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\n\
         coverage = { days = \"Mon-Fri\", hours = { \"Sat\" = \"10:00-12:00\" } }\n",
        9,
        12,
        "drop it",
    ),
    (
        "a day given hours twice",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\n\
         coverage = { hours = { \"Mon-Fri\" = \"09:00-18:00\", \"Fri\" = \"22:00-06:00\" } }\n",
        9,
        12,
        "give each day its hours once",
    ),
    (
        "a yearly holiday that is no date",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\n\
         coverage = { days = \"Mon-Fri\", hours = \"09:00-18:00\", holidays = [\"--02-30\"] }\n",
        9,
        12,
        "is not a yearly date",
    ),
    (
        "terms from a month that is not YYYY-MM",
        "[[contract.terms]]\nfrom = \"2027-1\"\ntarget = \"99%\"\n",
        6,
        8,
        "is not a month: write YYYY-MM",
    ),
    (
        "two sets of terms from the same month",
        "[[contract.terms]]\nfrom = \"2027-01\"\n[[contract.terms]]\nfrom = \"2027-01\"\n",
        8,
        1,
        "two [[contract.terms]] start in 2027-01",
    ),
    (
        "an unknown key in terms",
        "[[contract.terms]]\nfrom = \"2027-01\"\ntraget = \"99%\"\n",
        7,
        1,
        "did you mean `target`",
    ),
    (
        "a fee on both the contract and a service",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\nmonthly_fee = 100\ncurrency = \"EUR\"\n\
         [[service]]\nid = \"s\"\ncontract = \"d\"\ntcp = \"127.0.0.1:1\"\nmonthly_fee = 50\n",
        15,
        1,
        "has a `monthly_fee` too",
    ),
    (
        "a fee share beside an own fee",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nmonthly_fee = 0\nfee_share = 2\n",
        10,
        1,
        "keep one of them",
    ),
    (
        "some services of a contract with their own fee, one without",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nmonthly_fee = 0\n\
         [[service]]\nid = \"t\"\ncontract = \"c\"\ntcp = \"127.0.0.1:2\"\n",
        10,
        1,
        "has no `monthly_fee`",
    ),
    (
        "a service fee without a currency",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nmonthly_fee = 10\n",
        9,
        1,
        "needs currency",
    ),
    (
        "a downtime credit with an unknown count",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\n\
         downtime_credit = { per = \"1h\", amount = 50, count = \"rounded\" }\n",
        9,
        54,
        "write one of \"started\", \"prorata\"",
    ),
    (
        "a downtime credit without an amount",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\ndowntime_credit = { per = \"1h\" }\n",
        9,
        19,
        "write amount = 50.00",
    ),
    (
        "burn rule with short not shorter than long",
        "[[route]]\nid = \"r\"\nemail = [\"o@x.example\"]\nburn_rules = [ { long = \"5m\", short = \"1h\", burn = 14.4 } ]\n",
        8,
        14,
        "must be shorter than its `long`",
    ),
    (
        "burn rate with two decimals",
        "[[route]]\nid = \"r\"\nemail = [\"o@x.example\"]\nburn_rules = [ { long = \"1h\", short = \"5m\", burn = 14.44 } ]\n",
        8,
        14,
        "at most one decimal",
    ),
    (
        "a sender that is not a mailbox",
        "[smtp]\nurl = \"smtp://127.0.0.1:25\"\nfrom = \"SLA monitor\"\n",
        7,
        8,
        "is not a sender",
    ),
    (
        "statement hour out of range",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\nstatement_hour = 24\n",
        9,
        18,
        "from 0 to 23",
    ),
    (
        "unknown key with a suggestion",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nintervall = \"5s\"\n",
        9,
        1,
        "did you mean `interval`",
    ),
    (
        "bad duration",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\ninterval = \"5 parsecs\"\n",
        9,
        12,
        "write a duration such as",
    ),
    (
        "duration without unit",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\ntimeout = 5\n",
        9,
        11,
        "has no unit",
    ),
    (
        "bad percentage",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = 99.9\n",
        8,
        10,
        "percentages are strings",
    ),
    (
        "percentage above 100",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"100.5%\"\n",
        8,
        10,
        "above 100%",
    ),
    (
        "bad URL",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\nhttp = \"ftp://example.com/\"\n",
        8,
        8,
        "http:// or https://",
    ),
    (
        "unknown contract",
        "[[service]]\nid = \"s\"\ncontract = \"acme\"\ntcp = \"127.0.0.1:1\"\n",
        7,
        12,
        "no [[contract]] has id `acme`",
    ),
    (
        "duplicate service id",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\n[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:2\"\n",
        10,
        6,
        "used twice",
    ),
    (
        "timeout not below interval",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\ninterval = \"10s\"\ntimeout = \"10s\"\n",
        10,
        1,
        "must be shorter than interval",
    ),
    (
        "invalid time zone",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\ntimezone = \"Europe/Berln\"\n",
        9,
        12,
        "unknown time zone",
    ),
    (
        "two targets",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nhttp = \"http://127.0.0.1/\"\n",
        8,
        1,
        "keep one of",
    ),
    (
        "key of another probe kind",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nbody_contains = \"ok\"\n",
        9,
        1,
        "applies to http services only",
    ),
    (
        "dns without server",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ndns = \"example.com\"\n",
        5,
        1,
        "missing `server`",
    ),
    (
        "bad cron",
        "[[maintenance]]\ncontract = \"c\"\ncron = \"61 3 * * *\"\nduration = \"30m\"\n",
        7,
        8,
        "not a cron expression",
    ),
    (
        "maintenance end before start",
        "[[maintenance]]\ncontract = \"c\"\nstart = \"2026-11-29T02:00:00Z\"\nend = \"2026-11-29T01:00:00Z\"\n",
        8,
        1,
        "after `start`",
    ),
    (
        "maintenance of an unknown service",
        "[[maintenance]]\nservices = [\"nope\"]\nstart = 2026-11-29T02:00:00Z\nduration = \"1h\"\n",
        6,
        12,
        "no [[service]] has id `nope`",
    ),
    (
        "local datetime without offset",
        "[[maintenance]]\ncontract = \"c\"\nstart = 2026-11-29T02:00:00\nduration = \"1h\"\n",
        7,
        9,
        "no time zone offset",
    ),
    (
        "unknown table",
        "[servce]\nid = \"x\"\n",
        5,
        2,
        "did you mean `service`",
    ),
    (
        "latency threshold that histograms cannot count exactly",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nlatency = { threshold = \"333ms\", target = \"95%\" }\n",
        9,
        11,
        "cannot be measured exactly",
    ),
    (
        "money with three decimals",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\nmonthly_fee = 10.005\ncurrency = \"EUR\"\n",
        9,
        15,
        "more than two decimal places",
    ),
    (
        "credit tiers that shrink",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\ncredits = [ { below = \"99%\", credit = \"25%\" }, { below = \"95%\", credit = \"10%\" } ]\n",
        9,
        11,
        "must not shrink",
    ),
    (
        "unknown alert route",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nalert = \"pager\"\n",
        9,
        9,
        "no [[route]] has id `pager`",
    ),
    (
        "password in the smtp table",
        "[smtp]\nurl = \"smtp://127.0.0.1:25\"\nfrom = \"a@b.example\"\npassword = \"hunter2\"\n",
        8,
        1,
        "never goes in the config",
    ),
    (
        "a Slack URL written into the config",
        "[[route]]\nid = \"r\"\nslack = { url = \"https://hooks.slack.example/T0/B0/x\" }\n",
        7,
        11,
        "is a secret and never goes in the config",
    ),
    (
        "a webhook without its signing secret",
        "[[route]]\nid = \"r\"\nwebhook = [ { url = \"https://hooks.example.com/x\" } ]\n",
        7,
        13,
        "is missing `secret_env`",
    ),
    (
        "a webhook URL with credentials",
        "[[route]]\nid = \"r\"\nwebhook = [ { url = \"https://u:p@hooks.example.com/x\", secret_env = \"S\" } ]\n",
        7,
        21,
        "do not put credentials in the URL",
    ),
    (
        "a secret where its variable's name goes",
        "[[route]]\nid = \"r\"\ntelegram = { token_env = \"123:abc\", chat_id = 5 }\n",
        7,
        26,
        "is not an environment variable's name",
    ),
    (
        "both escalation forms",
        "[[route]]\nid = \"r\"\nemail = [\"a@b.example\"]\nescalate_after = \"1h\"\n\
         escalate_to = [\"c@d.example\"]\nescalate = [ { after = \"30m\", to = [\"e@f.example\"] } ]\n",
        8,
        1,
        "keep the chain",
    ),
    (
        "an escalation step without a time",
        "[[route]]\nid = \"r\"\nemail = [\"a@b.example\"]\nescalate = [ { to = [\"e@f.example\"] } ]\n",
        8,
        14,
        "is missing `after`",
    ),
    (
        "a digest hour without a digest",
        "[[route]]\nid = \"r\"\nemail = [\"a@b.example\"]\ndigest_hour = 8\n",
        8,
        1,
        "write digest = \"daily\" as well",
    ),
    (
        "a route that reaches nobody",
        "[[route]]\nid = \"r\"\n",
        5,
        1,
        "or a channel such as webhook",
    ),
    (
        "a breach credit naming no share",
        "[[contract]]\nid = \"d\"\nclient = \"D\"\ntarget = \"99%\"\nbreach_credit = {}\n",
        9,
        17,
        "names no share",
    ),
    (
        "a contract's quorum above the number of locations",
        "quorum = 2\n",
        5,
        1,
        "more than the 1 location(s) in `[daemon] locations` (local)",
    ),
    (
        "a service's quorum of none",
        "[[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\nquorum = 0\n",
        9,
        10,
        "from 1 to",
    ),
    (
        "syntax error",
        "[[service]\nid = \"s\"\n",
        5,
        11,
        "TOML syntax error",
    ),
];

#[test]
fn each_broken_config_points_at_its_line_and_column() {
    let path = std::path::Path::new("/etc/slaprobe/probes.toml");
    for (what, text, line, column, needle) in CASES {
        let full = format!("{BASE}{text}");
        let errors = match config::parse(&full, path) {
            Ok(_) => panic!("{what}: accepted\n{full}"),
            Err(e) => e.errors,
        };
        let found = errors
            .iter()
            .find(|e| e.message.contains(needle))
            .unwrap_or_else(|| panic!("{what}: no error containing {needle:?}; got:\n{errors:#?}"));
        assert_eq!(
            (found.line, found.column),
            (*line, *column),
            "{what}: {found}\n{full}"
        );
        assert_eq!(found.file, path);
        assert!(
            found
                .to_string()
                .starts_with(&format!("/etc/slaprobe/probes.toml:{line}:{column}: ")),
            "{found}"
        );
    }
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let text = format!(
        "{BASE}[daemon]\ndatabse = \"x.db\"\n[[service]]\nid = \"a\"\ncontract = \"zz\"\ntcp = \"h:1\"\n\
         interval = \"nope\"\n[[service]]\nid = \"b\"\ncontract = \"c\"\nhttp = \"::\"\n"
    );
    let errors = config::parse(&text, std::path::Path::new("p.toml"))
        .unwrap_err()
        .errors;
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(errors.len(), 4, "{messages:#?}");
    // In document order.
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
}

#[test]
fn the_example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes.example.toml");
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    // Its active probes point at loopback only.
    for service in &config.services {
        let target = service.probe.target();
        assert!(
            target.contains("127.0.0.1"),
            "{} probes {target}",
            service.id
        );
    }
}

#[test]
fn defaults_apply_and_services_override_them() {
    let text = format!(
        "{BASE}[defaults]\ninterval = \"1m\"\ntimeout = \"5s\"\nconfirm_down = 3\ntls_verify = false\n\
         [[service]]\nid = \"a\"\ncontract = \"c\"\nhttp = \"https://127.0.0.1/\"\n\
         [[service]]\nid = \"b\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\ninterval = \"20s\"\nconfirm_down = 1\n"
    );
    let config = config::parse(&text, std::path::Path::new("p.toml")).unwrap();
    let a = config.service("a").unwrap();
    let b = config.service("b").unwrap();
    assert_eq!(a.interval, std::time::Duration::from_secs(60));
    assert_eq!(a.confirm_down, 3);
    assert_eq!(a.retry_interval, std::time::Duration::from_secs(5));
    match &a.probe {
        slaprobe::probe::ProbeSpec::Http(h) => assert!(!h.tls_verify),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.interval, std::time::Duration::from_secs(20));
    assert_eq!(b.timeout, std::time::Duration::from_secs(5));
    assert_eq!(b.confirm_down, 1);
}

/// `slaprobe run` on each broken config exits with 64 (EX_USAGE, as `check`), names the position,
/// and creates no database.
#[test]
fn the_daemon_refuses_each_broken_config_and_writes_nothing() {
    for (what, text, line, column, _) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probes.toml");
        std::fs::write(
            &path,
            format!("[daemon]\ndatabase = \"slaprobe.db\"\n{BASE}{text}"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slaprobe"))
            .args(["run", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{what}: {stderr}");
        // Two lines of [daemon] come first here.
        assert!(
            stderr.contains(&format!("probes.toml:{}:{column}: ", line + 2)),
            "{what}: {stderr}"
        );
        let written: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "probes.toml")
            .collect();
        assert!(written.is_empty(), "{what}: wrote {written:?}");
    }
}

/// `[daemon] location` and `locations` (DESIGN.md §6.3): names, membership, and SQLite's one
/// location. (A `[daemon]` table cannot be in CASES: the daemon test adds its own.)
#[test]
fn locations_are_checked_where_they_are_written() {
    let cases: &[(&str, &str, usize, usize, &str)] = &[
        (
            "an upper-case location",
            "location = \"FRA\"\n",
            2,
            12,
            "not a location name",
        ),
        (
            "this location missing from the list",
            "location = \"fra\"\nlocations = [\"nyc\"]\n",
            3,
            13,
            "does not include this daemon's `location = \"fra\"`",
        ),
        (
            "a location listed twice",
            "locations = [\"local\", \"local\"]\n",
            2,
            13,
            "names `local` twice",
        ),
        (
            "several locations in one SQLite file",
            "location = \"fra\"\nlocations = [\"fra\", \"nyc\", \"sgp\"]\n",
            3,
            13,
            "3 locations cannot share an SQLite file",
        ),
        (
            "a password in the PostgreSQL URL",
            "database = \"postgres://slaprobe:hunter2@db.example/slaprobe\"\n",
            2,
            12,
            "holds a password",
        ),
        (
            "a URL that is not a connection URI",
            "database = \"postgres://db.example:notaport/slaprobe\"\n",
            2,
            12,
            "not a PostgreSQL connection URI",
        ),
        (
            "a password variable for an SQLite file",
            "database = \"history.db\"\ndatabase_password_env = \"PGPASS\"\n",
            3,
            25,
            "`database_password_env` is for a PostgreSQL `database`",
        ),
    ];
    for (what, daemon, line, column, needle) in cases {
        let text = format!("[daemon]\n{daemon}{BASE}");
        let errors = config::parse(&text, std::path::Path::new("p.toml"))
            .map(|_| panic!("{what}: accepted"))
            .unwrap_err()
            .errors;
        let found = errors
            .iter()
            .find(|e| e.message.contains(needle))
            .unwrap_or_else(|| panic!("{what}: no error containing {needle:?}: {errors:#?}"));
        assert_eq!(
            (found.line, found.column),
            (*line, *column),
            "{what}: {found}"
        );
    }

    // The defaults: one location, "local", and a majority quorum of it (1); a location of our
    // own, listed alone, is accepted; a contract's quorum is its services' unless they set one.
    let config = config::parse(
        &format!(
            "[daemon]\nlocation = \"fra-1\"\nlocations = [\"fra-1\"]\n{BASE}quorum = 1\n\
             [[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\n"
        ),
        std::path::Path::new("p.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.daemon.location, "fra-1");
    assert_eq!(config.daemon.locations, vec!["fra-1".to_string()]);
    assert_eq!(config.quorum_of(config.service("s").unwrap()), 1);
    let config = config::parse(BASE, std::path::Path::new("p.toml")).unwrap();
    assert_eq!(
        (
            config.daemon.location.as_str(),
            config.daemon.locations.len()
        ),
        ("local", 1)
    );
    assert_eq!(
        config.daemon.database,
        config::Database::Sqlite(std::path::PathBuf::from("slaprobe.db"))
    );

    // A URL selects PostgreSQL, where a fleet of locations shares one history; the password
    // comes from the named variable.
    let config = config::parse(
        &format!(
            "[daemon]\ndatabase = \"postgresql:///slaprobe?host=/run/postgresql\"\n\
             database_password_env = \"SLAPROBE_DB_PASSWORD\"\nlocation = \"nyc\"\n\
             locations = [\"fra\", \"nyc\", \"sgp\"]\n{BASE}\
             [[service]]\nid = \"s\"\ncontract = \"c\"\ntcp = \"127.0.0.1:1\"\n"
        ),
        std::path::Path::new("p.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.daemon.database,
        config::Database::Postgres(config::PgTarget {
            url: "postgresql:///slaprobe?host=/run/postgresql".to_string(),
            password_env: Some("SLAPROBE_DB_PASSWORD".to_string()),
        })
    );
    assert_eq!(config.daemon.locations.len(), 3);
    assert_eq!(config.quorum_of(&config.services[0]), 2);
}
