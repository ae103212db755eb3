//! Who is asking the API (DESIGN.md §6.4): the public (no token: `public_contracts` only), the
//! operator (`[daemon] operator_token_env`: everything) or a client (`client_token_env` of a
//! contract: that contract only). Tokens are compared in constant time and never logged.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

use crate::config::Config;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Public,
    Operator,
    /// A client token: the id of its contract.
    Client(String),
}

/// A token that matched nothing: answered 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

impl Audience {
    /// From a request's `Authorization: Bearer TOKEN` header (none: the public).
    pub fn of(headers: &HeaderMap, config: &Config) -> Result<Audience, Unauthorized> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Audience::Public);
        };
        let given = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Unauthorized)?;
        if matches(given, config.daemon.operator_token_env.as_deref()) {
            return Ok(Audience::Operator);
        }
        // Every contract's token is compared, so the time taken says nothing of which matched.
        let mut client = None;
        for contract in &config.contracts {
            if matches(given, contract.client_token_env.as_deref()) && client.is_none() {
                client = Some(contract.id.clone());
            }
        }
        client.map(Audience::Client).ok_or(Unauthorized)
    }

    /// Whether this audience may see contract `id`; a contract it may not see is answered
    /// 404, as if it did not exist.
    pub fn sees(&self, config: &Config, id: &str) -> bool {
        match self {
            Audience::Operator => true,
            Audience::Client(own) => own == id,
            Audience::Public => config
                .daemon
                .public_contracts
                .as_ref()
                .is_none_or(|public| public.iter().any(|p| p == id)),
        }
    }
}

/// Whether `given` equals the token in the variable `env` (none set: nothing matches). Both are
/// hashed first, so that the comparison takes the same time whatever their lengths.
fn matches(given: &str, env: Option<&str>) -> bool {
    let Some(expected) = env.and_then(|name| std::env::var(name).ok()) else {
        return false;
    };
    if expected.is_empty() {
        return false;
    }
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    digest(given)
        .as_ref()
        .ct_eq(digest(&expected).as_ref())
        .into()
}
