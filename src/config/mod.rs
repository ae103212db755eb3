//! The validated configuration: typed values built from `probes.toml` (see DESIGN.md §3).
//!
//! `load` reads a file, `parse` reads text; both return every problem found, each with the file,
//! line and column, or a `Config` whose values are all known to be usable.

mod build;
mod contract;
mod fields;
mod maintenance;
mod pieces;
mod reader;
mod route;
mod service;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use build::{load, parse};

use crate::probe::ProbeSpec;
use crate::sla::availability::{Granularity, NoDataPolicy};
use crate::sla::burn::BurnRule;
use crate::sla::calendar::{Coverage, TimeZoneName};
use crate::sla::credit::{CreditTier, DowntimeCredit};
use crate::sla::maintenance::Maintenance;
use crate::sla::response::{BreachCredit, Targets};
use crate::sla::tracker::Rules;
use crate::sla::values::{Cents, Fraction};

/// Everything the daemon and the CLI need, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from; relative paths in it are relative to its directory.
    pub path: PathBuf,
    pub daemon: Daemon,
    pub smtp: Option<Smtp>,
    /// `[provider]`: who issues the statements.
    pub provider: Option<Provider>,
    pub contracts: Vec<Contract>,
    pub services: Vec<Arc<Service>>,
    pub maintenance: Vec<Maintenance>,
    pub routes: Vec<Route>,
}

impl Config {
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id).map(|s| &**s)
    }

    pub fn contract(&self, id: &str) -> Option<&Contract> {
        self.contracts.iter().find(|c| c.id == id)
    }

    /// The contract a service is under. Validation guarantees it exists (every service names
    /// a declared contract), so a miss is a bug, not bad input.
    pub fn contract_of(&self, service: &Service) -> &Contract {
        self.contract(&service.contract)
            .unwrap_or_else(|| panic!("service `{}` names an undeclared contract", service.id))
    }

    /// A service's monthly fee under `contract` (the contract as in force for the period):
    /// its own `monthly_fee`, or its `fee_share` of the contract's, split so that the shares
    /// add up to the contract's fee (DESIGN.md §6.1). Credits are shares of it.
    pub fn fee_of(&self, service: &Service, contract: &Contract) -> Cents {
        if let Some(fee) = service.own_fee {
            return fee;
        }
        let members = self
            .services
            .iter()
            .filter(|s| s.contract == service.contract);
        let mut index = None;
        let mut shares = Vec::new();
        for (i, member) in members.enumerate() {
            if member.id == service.id {
                index = Some(i);
            }
            shares.push(member.fee_share);
        }
        index.map_or(Cents(0), |i| {
            crate::sla::credit::fee_share_of(contract.monthly_fee, &shares, i)
        })
    }

    /// A service's response targets under `contract` (the contract as in force): its own
    /// `respond_within` and `restore_within`, else the contract's.
    pub fn targets_of(&self, service: &Service, contract: &Contract) -> Targets {
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as i64);
        Targets {
            respond_within_ms: ms(service.respond_within.or(contract.respond_within)),
            restore_within_ms: ms(service.restore_within.or(contract.restore_within)),
        }
    }

    /// How many of `[daemon] locations` must see `service` down for the verdict to be down:
    /// its own `quorum`, else its contract's, else a majority of the locations.
    pub fn quorum_of(&self, service: &Service) -> usize {
        let contract = self.contract(&service.contract).and_then(|c| c.quorum);
        service
            .quorum
            .or(contract)
            .unwrap_or_else(|| crate::sla::quorum::majority(self.daemon.locations.len()))
    }

    /// The route a service's alerts follow, if any (`alert = false` anywhere mutes).
    pub fn route_of(&self, service: &Service) -> Option<&Route> {
        let id = match &service.alert {
            Alert::Muted => return None,
            Alert::Route(id) => id,
            Alert::Inherit => match &self.contract(&service.contract)?.alert {
                Alert::Route(id) => id,
                Alert::Muted | Alert::Inherit => return None,
            },
        };
        self.routes.iter().find(|r| &r.id == id && !r.muted)
    }
}

/// The config in force in a running daemon, replaced as a whole by a reload. Readers take
/// `current()` at the start of each piece of work, so each piece sees one consistent config.
#[derive(Debug, Clone)]
pub struct LiveConfig(tokio::sync::watch::Receiver<Arc<Config>>);

impl LiveConfig {
    /// A live config and the sender that replaces it.
    pub fn new(config: Arc<Config>) -> (tokio::sync::watch::Sender<Arc<Config>>, LiveConfig) {
        let (sender, receiver) = tokio::sync::watch::channel(config);
        (sender, LiveConfig(receiver))
    }

    pub fn current(&self) -> Arc<Config> {
        self.0.borrow().clone()
    }

    /// Waits for the next replacement; `false` once none can come.
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}

/// `[daemon]`.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Where the history is kept: this machine's SQLite file or a fleet's PostgreSQL.
    pub database: Database,
    pub listen: Option<SocketAddr>,
    pub timezone: TimeZoneName,
    /// How long raw outcomes are kept (hourly rollups are kept for ever).
    pub retention: Duration,
    /// At most this many probes run at once, across all services.
    pub max_in_flight: usize,
    /// The store commits at least this often; a kill loses at most this much.
    pub flush_interval: Duration,
    /// Threads running probes; `None`: one per core.
    pub worker_threads: Option<usize>,
    /// The contracts the status page at `/`, and the API without a token, show; `None`: all.
    pub public_contracts: Option<Vec<String>>,
    /// The variable holding the operator's API token (sees every contract).
    pub operator_token_env: Option<String>,
    /// Where this daemon probes from (DESIGN.md §6.3); `"local"` unless set.
    pub location: String,
    /// Every location the fleet expects, this one included; `[location]` unless set.
    pub locations: Vec<String>,
}

/// Where the history is kept (`[daemon] database`: a path selects SQLite, a URL PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// Absolute, or relative to the working directory (already joined with the config's folder).
    Sqlite(PathBuf),
    /// A fleet's shared PostgreSQL (DESIGN.md §6.3).
    Postgres(PgTarget),
}

impl Database {
    /// The SQLite file, if the history is kept in one.
    pub fn sqlite(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }
}

impl std::fmt::Display for Database {
    /// The path, or the URL as written (which holds no password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(target) => f.write_str(&target.url),
        }
    }
}

/// Whether `database` names PostgreSQL (a `postgres://` or `postgresql://` URI) rather than an
/// SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Where a fleet's PostgreSQL is and how to log in; the password never comes from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgTarget {
    /// As written in the config (it holds no password: the config refuses one).
    pub url: String,
    /// The variable holding the password (`database_password_env`); else `PGPASSWORD`.
    pub password_env: Option<String>,
}

/// `[provider]`: the issuer named on every statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub address: Option<String>,
    pub contact: Option<String>,
}

/// `[smtp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smtp {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub from: String,
}

/// Where a secret is read from at run time; the secret itself is never in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// `[[contract]]`.
#[derive(Debug, Clone)]
pub struct Contract {
    pub id: String,
    pub client: String,
    pub timezone: TimeZoneName,
    pub target: Fraction,
    pub coverage: Coverage,
    pub no_data: NoDataPolicy,
    pub granularity: Granularity,
    pub monthly_fee: Cents,
    pub currency: String,
    /// Sorted by `below`, highest first.
    pub credits: Vec<CreditTier>,
    pub credit_cap: Fraction,
    pub credit_min: Cents,
    /// `downtime_credit = { per, amount, count, beyond }`.
    pub downtime_credit: Option<DowntimeCredit>,
    /// `[[contract.terms]]`: changes of terms from a month on, sorted by `from`.
    pub terms: Vec<DatedTerms>,
    /// `respond_within` and `restore_within` (DESIGN.md §6.2); a service may set its own.
    pub respond_within: Option<Duration>,
    pub restore_within: Option<Duration>,
    /// How many locations must see a service down (DESIGN.md §6.3); a service may set its own.
    pub quorum: Option<usize>,
    /// `breach_credit = { response = "5%", restore = "10%" }`.
    pub breach_credit: Option<BreachCredit>,
    /// Whether the tier credit is decided per service (default) or on the contract as one
    /// service, against the total fee.
    pub credit_on: CreditOn,
    pub statement_to: Vec<String>,
    pub statements: StatementPolicy,
    /// The local hour on the 1st after which last month's statement is sent.
    pub statement_hour: u8,
    /// The variable holding this contract's client token (a client portal: that contract only).
    pub client_token_env: Option<String>,
    /// "SLA AT RISK" when less than this share of the month's error budget is left (0: never).
    pub at_risk_below: Fraction,
    pub alert: Alert,
}

/// `[[contract.terms]]`: what changes from the month `from` on (local months of the contract's
/// zone); keys left out keep the base contract's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatedTerms {
    /// `YYYY-MM`.
    pub from: String,
    pub from_year: i16,
    pub from_month: i8,
    pub target: Option<Fraction>,
    pub coverage: Option<Coverage>,
    pub credits: Option<Vec<CreditTier>>,
    pub credit_cap: Option<Fraction>,
    pub credit_min: Option<Cents>,
    pub monthly_fee: Option<Cents>,
    pub downtime_credit: Option<DowntimeCredit>,
    pub respond_within: Option<Duration>,
    pub restore_within: Option<Duration>,
    pub breach_credit: Option<BreachCredit>,
}

impl Contract {
    /// The terms in force in the local month that contains `at_ms`: the latest
    /// `[[contract.terms]]` whose `from` is not after that month, if any.
    pub fn terms_at(&self, at_ms: i64) -> Option<&DatedTerms> {
        if self.terms.is_empty() {
            return None;
        }
        let date = crate::sla::calendar::local_date(&self.timezone.zone, at_ms);
        let month = (date.year(), date.month());
        self.terms
            .iter()
            .rev()
            .find(|t| (t.from_year, t.from_month) <= month)
    }

    /// The contract as in force at `at_ms`: the base terms overridden by `terms_at`.
    pub fn in_force(&self, at_ms: i64) -> std::borrow::Cow<'_, Contract> {
        let Some(t) = self.terms_at(at_ms) else {
            return std::borrow::Cow::Borrowed(self);
        };
        let mut c = self.clone();
        c.terms = Vec::new();
        if let Some(v) = t.target {
            c.target = v;
        }
        if let Some(v) = &t.coverage {
            c.coverage = v.clone();
        }
        if let Some(v) = &t.credits {
            c.credits = v.clone();
        }
        if let Some(v) = t.credit_cap {
            c.credit_cap = v;
        }
        if let Some(v) = t.credit_min {
            c.credit_min = v;
        }
        if let Some(v) = t.monthly_fee {
            c.monthly_fee = v;
        }
        if t.downtime_credit.is_some() {
            c.downtime_credit = t.downtime_credit;
        }
        if t.respond_within.is_some() {
            c.respond_within = t.respond_within;
        }
        if t.restore_within.is_some() {
            c.restore_within = t.restore_within;
        }
        if t.breach_credit.is_some() {
            c.breach_credit = t.breach_credit;
        }
        std::borrow::Cow::Owned(c)
    }
}

/// `credit_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOn {
    Service,
    Contract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementPolicy {
    Always,
    OnBreach,
    Never,
}

/// Who hears about a service: a route id, nobody, or the default (the contract's route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Inherit,
    Muted,
    Route(String),
}

/// `[[service]]`: one probed target under a contract. Equal services probe and judge alike
/// (a reload compares them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    pub contract: String,
    /// Its `name` when one is given (`name()` falls back to the id).
    pub given_name: Option<String>,
    pub probe: ProbeSpec,
    pub interval: Duration,
    pub timeout: Duration,
    pub retry_interval: Duration,
    pub confirm_down: u32,
    pub confirm_up: u32,
    pub latency: Option<LatencySlo>,
    pub alert: Alert,
    /// Its own `monthly_fee`; `None`: a `fee_share` of the contract's fee.
    pub own_fee: Option<Cents>,
    /// Its share of the contract's `monthly_fee` (default 1).
    pub fee_share: u32,
    /// Its own response targets, over the contract's.
    pub respond_within: Option<Duration>,
    pub restore_within: Option<Duration>,
    /// Its own `quorum`, over the contract's.
    pub quorum: Option<usize>,
}

impl Service {
    /// What clients read: its `name`, else its id.
    pub fn name(&self) -> &str {
        self.given_name.as_deref().unwrap_or(&self.id)
    }

    /// A result stands for the time until the next one as long as the next one comes within
    /// this gap; a longer gap is no-data (DESIGN.md §2, sample and hold).
    pub fn max_gap(&self) -> Duration {
        self.interval * 2 + self.timeout
    }

    /// What the state machine needs of this service.
    pub fn tracker_rules(&self) -> Rules {
        Rules {
            confirm_down: self.confirm_down,
            confirm_up: self.confirm_up,
            interval_ms: self.interval.as_millis() as i64,
            max_gap_ms: self.max_gap().as_millis() as i64,
        }
    }
}

/// `latency = { threshold = "300ms", target = "95%" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySlo {
    pub threshold: Duration,
    pub target: Fraction,
}

/// `[[route]]`: where alerts go.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: String,
    /// `alert = false`: the route is muted (services using it send nothing).
    pub muted: bool,
    pub email: Vec<String>,
    /// Webhooks, Slack and Telegram beside (or instead of) e-mail.
    pub channels: Vec<Channel>,
    /// The escalation chain, by `after`; `escalate_after` + `escalate_to` is a chain of one.
    pub escalate: Vec<EscalationStep>,
    pub repeat: Option<Duration>,
    /// Transitions within it to the same recipients go out as one message.
    pub group_window: Duration,
    /// More than `flap_transitions` transitions (opened or closed) within `flap_window` mark a
    /// service flapping: one notice, then quiet until a whole `flap_window` passes without one.
    pub flap_transitions: u32,
    pub flap_window: Duration,
    /// Whether outages inside a maintenance window alert (default: no).
    pub maintenance_alerts: bool,
    /// The multiwindow, multi-burn-rate rules (DESIGN.md §2); empty: no burn-rate alerts.
    pub burn_rules: Vec<BurnRule>,
    /// `digest = "daily"`: one summary a day, after `digest_hour` in `[daemon] timezone`.
    pub digest: Option<Digest>,
}

/// One step of an escalation chain: `after` the DOWN, unless acknowledged or recovered first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationStep {
    pub after: Duration,
    pub email: Vec<String>,
    pub channels: Vec<Channel>,
}

/// `digest = "daily"` and `digest_hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    /// The local hour (in `[daemon] timezone`) after which yesterday's digest goes out.
    pub hour: u8,
}

/// A channel beside e-mail (DESIGN.md §6.2). It holds the names of the environment variables
/// with its secrets, never the secrets: the sender reads them when it sends.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// POST of the event as JSON, signed with HMAC-SHA256 of the body.
    Webhook { url: String, secret_env: String },
    /// A Slack incoming webhook; its URL is the secret.
    Slack { url_env: String },
    /// The Telegram Bot API's `sendMessage`.
    Telegram {
        token_env: String,
        chat_id: String,
        api: String,
    },
}

impl Channel {
    /// The environment variables holding its secrets.
    pub fn secret_envs(&self) -> Vec<&str> {
        match self {
            Channel::Webhook { secret_env, .. } => vec![secret_env],
            Channel::Slack { url_env } => vec![url_env],
            Channel::Telegram { token_env, .. } => vec![token_env],
        }
    }

    /// How logs and `status` name it, without secrets: `webhook https://hooks.example/x`,
    /// `slack $SLACK_URL`, `telegram -100123`.
    pub fn describe(&self) -> String {
        match self {
            Channel::Webhook { url, .. } => format!("webhook {url}"),
            Channel::Slack { url_env } => format!("slack ${url_env}"),
            Channel::Telegram { chat_id, .. } => format!("telegram {chat_id}"),
        }
    }
}

impl Config {
    /// The environment variables the config's channels need that are not set (a daemon does
    /// not start, and a reload is refused, while any is missing).
    pub fn missing_channel_secrets(&self) -> Vec<String> {
        let mut missing: Vec<String> = self
            .routes
            .iter()
            .flat_map(|r| {
                r.channels
                    .iter()
                    .chain(r.escalate.iter().flat_map(|s| &s.channels))
            })
            .flat_map(|c| c.secret_envs())
            .filter(|name| std::env::var_os(name).is_none_or(|v| v.is_empty()))
            .map(str::to_string)
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }
}

/// Every problem found in a config, in document order.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    fn render(&self) -> String {
        let lines: Vec<String> = self.errors.iter().map(|e| e.to_string()).collect();
        lines.join("\n")
    }
}

/// One problem: `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

/// The config file used when `--config` is not given: `./probes.toml`, else
/// `/etc/slaprobe/probes.toml`.
pub fn default_path() -> PathBuf {
    let local = PathBuf::from("probes.toml");
    if local.exists() {
        local
    } else {
        PathBuf::from("/etc/slaprobe/probes.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_inherited_overridden_and_muted() {
        let text = r#"
[[route]]
id = "oncall"
email = ["o@x.example"]

[[route]]
id = "quiet"
email = ["q@x.example"]
alert = false

[[contract]]
id = "c"
client = "C"
target = "99.9%"
alert = "oncall"

[[contract]]
id = "d"
client = "D"
target = "99.9%"

[[service]]
id = "inherits"
contract = "c"
tcp = "127.0.0.1:1"

[[service]]
id = "muted"
contract = "c"
tcp = "127.0.0.1:1"
alert = false

[[service]]
id = "muted-route"
contract = "c"
tcp = "127.0.0.1:1"
alert = "quiet"

[[service]]
id = "no-route"
contract = "d"
tcp = "127.0.0.1:1"

[[service]]
id = "own-route"
contract = "d"
tcp = "127.0.0.1:1"
alert = "oncall"
"#;
        let config = parse(text, std::path::Path::new("t.toml")).unwrap();
        let route = |id: &str| {
            config
                .route_of(config.service(id).unwrap())
                .map(|r| r.id.as_str())
        };
        assert_eq!(route("inherits"), Some("oncall"));
        assert_eq!(route("muted"), None);
        assert_eq!(route("muted-route"), None);
        assert_eq!(route("no-route"), None);
        assert_eq!(route("own-route"), Some("oncall"));
    }

    #[test]
    fn coverage_per_weekday_overnight_and_yearly_holidays_parse() {
        use crate::sla::calendar::{Coverage, Holiday};
        let text = r#"
[[contract]]
id = "c"
client = "C"
target = "99.9%"
coverage = { hours = { "Mon-Thu" = "09:00-18:00", "Fri" = ["09:00-12:00", "22:00-06:00"], "Sun" = "00:00-24:00" }, holidays = ["2026-12-24", "--01-01"] }

[[contract]]
id = "old"
client = "Old"
target = "99.9%"
coverage = { days = "Sat", hours = "22:00-06:00" }
"#;
        let config = parse(text, std::path::Path::new("t.toml")).unwrap();
        let Coverage::Weekly { days, holidays } = &config.contracts[0].coverage else {
            panic!("weekly")
        };
        assert_eq!(days[0], [(540, 1080)]);
        assert_eq!(days[4], [(540, 720), (1320, 360)]);
        assert!(days[5].is_empty());
        assert_eq!(days[6], [(0, 1440)]);
        assert_eq!(
            holidays,
            &[
                Holiday::On("2026-12-24".parse().unwrap()),
                Holiday::Yearly { month: 1, day: 1 }
            ]
        );
        // The old form, now with an overnight range.
        let Coverage::Weekly { days, .. } = &config.contracts[1].coverage else {
            panic!("weekly")
        };
        assert_eq!(days[5], [(1320, 360)]);
        assert!(days[0].is_empty());
    }
}
