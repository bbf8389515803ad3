//! API keys and what they may do.
//!
//! A key is a random secret shown to its creator once; the registry keeps only its
//! SHA-256 ([`key_hash`]). Keys are 256-bit random strings, so a fast hash is the right
//! one here: there is nothing to brute-force that a slow hash would protect.
//!
//! Scopes: `invoke` calls functions; `manage` deploys, updates, deletes and reads them
//! (code, logs, stats, instances); `admin` manages keys and implies both others.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// One thing a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Invoke,
    Manage,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Invoke, Scope::Manage, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Invoke => "invoke",
            Scope::Manage => "manage",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "invoke" => Ok(Scope::Invoke),
            "manage" => Ok(Scope::Manage),
            "admin" => Ok(Scope::Admin),
            other => Err(Error::invalid(
                "invalid_scope",
                format!("unknown scope '{other}'; scopes are invoke, manage and admin"),
            )),
        }
    }
}

/// The scopes of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Self(scopes.into_iter().collect())
    }

    /// Parses `["invoke", ...]`; at least one, each known.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::invalid(
                "invalid_scope",
                "a key needs at least one scope: invoke, manage or admin",
            ));
        }
        names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<BTreeSet<_>>>()
            .map(Self)
    }

    /// Whether these scopes allow `needed` (admin allows everything).
    pub fn allow(&self, needed: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&needed)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// `invoke,manage` (the registry's column form).
    pub fn joined(&self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn from_joined(joined: &str) -> Result<Self> {
        let names: Vec<&str> = joined.split(',').filter(|s| !s.is_empty()).collect();
        Self::parse(&names)
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Public identifier (`key_…`), used to list and revoke.
    pub id: String,
    pub name: String,
    pub scopes: Scopes,
    /// Requests per second this key may make; `None` is unlimited.
    pub rate_limit: Option<f64>,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    pub created_at: i64,
}

/// The hash under which a key's secret is stored and looked up.
pub fn key_hash(secret: &str) -> String {
    crate::function::sha256_hex(secret.as_bytes())
}

/// Secrets start with this, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "mfk_";

/// A new secret from 32 bytes of OS randomness.
pub fn secret_from_random(random: [u8; 32]) -> String {
    format!("{KEY_PREFIX}{}", hex::encode(random))
}

/// Checks a rate limit given by a user: positive and finite.
pub fn validate_rate_limit(rate: Option<f64>) -> Result<Option<f64>> {
    match rate {
        Some(r) if !(r.is_finite() && r > 0.0) => Err(Error::invalid(
            "invalid_rate_limit",
            "rate_limit must be a positive number of requests per second",
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_other_scopes_only_themselves() {
        let admin = Scopes::new([Scope::Admin]);
        let invoke = Scopes::new([Scope::Invoke]);
        assert!(Scope::ALL.iter().all(|s| admin.allow(*s)));
        assert!(invoke.allow(Scope::Invoke));
        assert!(!invoke.allow(Scope::Manage));
        assert!(!invoke.allow(Scope::Admin));
    }

    #[test]
    fn scopes_parse_and_round_trip() {
        let scopes = Scopes::parse(&["manage", "invoke"]).unwrap();
        assert_eq!(scopes.joined(), "invoke,manage");
        assert_eq!(Scopes::from_joined("invoke,manage").unwrap(), scopes);
        assert!(Scopes::parse::<&str>(&[]).is_err());
        assert!(Scopes::parse(&["root"]).is_err());
    }

    #[test]
    fn rate_limits_must_be_positive() {
        assert!(validate_rate_limit(Some(0.0)).is_err());
        assert!(validate_rate_limit(Some(f64::NAN)).is_err());
        assert_eq!(validate_rate_limit(Some(2.5)).unwrap(), Some(2.5));
        assert_eq!(validate_rate_limit(None).unwrap(), None);
    }

    #[test]
    fn secrets_are_prefixed_and_hashed() {
        let secret = secret_from_random([7; 32]);
        assert!(secret.starts_with(KEY_PREFIX));
        assert_eq!(key_hash(&secret).len(), 64);
        assert_ne!(key_hash(&secret), key_hash("mfk_other"));
    }
}
