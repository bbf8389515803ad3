//! Who is calling: API keys, their scopes, and rate limits.
//!
//! Invariants:
//! - every endpoint but `/health` goes through [`Auth::require`] (by route group, see
//!   `lib.rs`), or through [`Auth::authorize_invoke`] for invocations, where a function
//!   whose config says `public` needs no key at all (a webhook: its caller's own
//!   `Authorization` header is passed to the function untouched);
//! - an unknown function is answered 401 to a caller without a valid key, so names do
//!   not leak to strangers;
//! - secrets are looked up by their SHA-256 and never logged; a revoked key stops working
//!   at once (it leaves the cache in the same call that deletes its row);
//! - rate limits are token buckets (`governor`): per key, and per function from its
//!   config; a caller over one gets 429 with `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use minifaas_core::auth::{KEY_PREFIX, key_hash, secret_from_random};
use minifaas_core::{
    Error, ErrorKind, FunctionAccess, FunctionName, KeyRecord, KeyStore, Result, Scope,
};

/// Whether keys are checked at all (`serve --no-auth` turns it off, loopback only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Required,
    Disabled,
}

/// A known, unrevoked key with its rate limiter.
struct ActiveKey {
    record: KeyRecord,
    limiter: Option<DefaultDirectRateLimiter>,
}

pub struct Auth {
    keys: Arc<dyn KeyStore>,
    mode: AuthMode,
    /// Known keys by hash: the registry is read once per key, not per request.
    active: RwLock<HashMap<String, Arc<ActiveKey>>>,
    /// Per-function limiters, rebuilt when the function's rate changes.
    functions: Mutex<HashMap<FunctionName, (u64, Arc<DefaultDirectRateLimiter>)>>,
}

/// A token bucket allowing `rate` per second on average and bursts of one second's worth.
fn limiter(rate: f64) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let burst =
        NonZeroU32::new(rate.ceil().clamp(1.0, u32::MAX as f64) as u32).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    DefaultDirectRateLimiter::direct(quota)
}

/// 429 if the bucket is empty, with how long until a token is back.
fn take_token(limiter: &DefaultDirectRateLimiter, what: &str) -> Result<()> {
    match limiter.check() {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Err(Error::new(
                ErrorKind::Overloaded,
                "rate_limited",
                format!("{what} is over its rate limit; retry after the time in Retry-After"),
            )
            .retry_after(wait.as_secs_f64().ceil() as u64))
        }
    }
}

fn unauthorized(message: &str) -> Error {
    Error::new(ErrorKind::Unauthorized, "unauthorized", message)
}

/// The bearer token of a request, if it sent one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl Auth {
    pub fn new(keys: Arc<dyn KeyStore>, mode: AuthMode) -> Self {
        Self {
            keys,
            mode,
            active: RwLock::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The key behind the request's bearer token. 401 if there is none or it is unknown.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<ActiveKey>> {
        let Some(secret) = bearer(headers) else {
            return Err(unauthorized(
                "this endpoint needs an API key: send 'Authorization: Bearer <key>'",
            ));
        };
        let hash = key_hash(secret);
        let cached = self
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned();
        if let Some(key) = cached {
            return Ok(key);
        }
        let Some(record) = self.keys.key_by_hash(&hash).await? else {
            return Err(unauthorized(
                "the API key is not valid (unknown or revoked)",
            ));
        };
        let key = Arc::new(ActiveKey {
            limiter: record.rate_limit.map(limiter),
            record,
        });
        self.active
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(hash)
            .or_insert_with(|| key.clone());
        Ok(key)
    }

    /// `Ok` if the request's key has `scope` and is within its rate limit.
    pub async fn require(&self, headers: &HeaderMap, scope: Scope) -> Result<()> {
        if self.mode == AuthMode::Disabled {
            return Ok(());
        }
        let key = self.authenticate(headers).await?;
        if !key.record.scopes.allow(scope) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "forbidden",
                format!(
                    "this API key ({}) lacks the '{scope}' scope this endpoint needs",
                    key.record.id
                ),
            ));
        }
        match &key.limiter {
            Some(limiter) => take_token(limiter, "this API key"),
            None => Ok(()),
        }
    }

    /// May this request invoke `name`? `access` is `None` for an unknown function, which
    /// is 404 to a caller with the invoke scope and 401 to anyone else.
    pub async fn authorize_invoke(
        &self,
        headers: &HeaderMap,
        name: Option<&FunctionName>,
        access: Option<FunctionAccess>,
    ) -> Result<()> {
        if !access.is_some_and(|a| a.public) {
            self.require(headers, Scope::Invoke).await?;
        }
        let (Some(name), Some(access)) = (name, access) else {
            return Err(Error::function_not_found());
        };
        if let Some(rate) = access.rate_limit {
            let limiter = {
                let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
                let entry = functions
                    .entry(name.clone())
                    .or_insert_with(|| (rate.to_bits(), Arc::new(limiter(rate))));
                if entry.0 != rate.to_bits() {
                    *entry = (rate.to_bits(), Arc::new(limiter(rate)));
                }
                entry.1.clone()
            };
            take_token(&limiter, &format!("function '{name}'"))?;
        }
        Ok(())
    }

    /// Creates a key and returns it with its secret (shown once, never stored).
    pub async fn create_key(
        &self,
        name: String,
        scopes: minifaas_core::Scopes,
        rate_limit: Option<f64>,
    ) -> Result<(KeyRecord, String)> {
        let secret = new_secret()?;
        let record = self.store_key(name, scopes, rate_limit, &secret).await?;
        Ok((record, secret))
    }

    /// Stores a key whose secret the caller chose (`MINIFAAS_ADMIN_KEY`, checked with
    /// the rest of the config before the server starts), unless a key with that secret
    /// exists already. Returns whether it was new.
    pub async fn ensure_key(
        &self,
        name: String,
        scopes: minifaas_core::Scopes,
        secret: &str,
    ) -> Result<bool> {
        if self.keys.key_by_hash(&key_hash(secret)).await?.is_some() {
            return Ok(false);
        }
        self.store_key(name, scopes, None, secret).await?;
        Ok(true)
    }

    async fn store_key(
        &self,
        name: String,
        scopes: minifaas_core::Scopes,
        rate_limit: Option<f64>,
        secret: &str,
    ) -> Result<KeyRecord> {
        let mut id_bytes = [0u8; 6];
        getrandom::fill(&mut id_bytes)
            .map_err(|e| Error::platform_ctx("reading OS randomness", e))?;
        let record = KeyRecord {
            id: format!("key_{}", hex::encode(id_bytes)),
            name,
            scopes,
            rate_limit,
            hash: key_hash(secret),
            created_at: crate::records::unix_ms() / 1000,
        };
        self.keys.create_key(record.clone()).await?;
        Ok(record)
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        self.keys.list_keys().await
    }

    /// Revokes a key: gone from the registry and from the cache before this returns.
    pub async fn revoke(&self, id: &str) -> Result<bool> {
        let existed = self.keys.delete_key(id).await?;
        self.active
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, key| key.record.id != id);
        Ok(existed)
    }

    /// Whether any key exists (first start creates the admin key when none does).
    pub async fn has_keys(&self) -> Result<bool> {
        Ok(!self.keys.list_keys().await?.is_empty())
    }
}

/// Removes the caller's platform key from what a non-public function sees: a function
/// must never learn the keys of the people calling it.
pub(crate) fn strip_platform_credentials(headers: &mut HeaderMap, access: Option<FunctionAccess>) {
    if !access.is_some_and(|a| a.public) {
        headers.remove(header::AUTHORIZATION);
    }
}

/// A fresh secret from the OS's randomness.
fn new_secret() -> Result<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|e| Error::platform_ctx("reading OS randomness", e))?;
    let secret = secret_from_random(random);
    debug_assert!(secret.starts_with(KEY_PREFIX));
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer mfk_abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("mfk_abc"));
        headers.insert(header::AUTHORIZATION, "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn a_limiter_allows_its_burst_then_refuses_with_a_wait() {
        let limiter = limiter(2.0);
        assert!(take_token(&limiter, "k").is_ok());
        assert!(take_token(&limiter, "k").is_ok());
        let err = take_token(&limiter, "k").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Overloaded);
        assert_eq!(err.retry_after_secs, Some(1));
    }

    #[test]
    fn fractional_rates_work() {
        let limiter = limiter(0.5);
        assert!(take_token(&limiter, "k").is_ok());
        let err = take_token(&limiter, "k").unwrap_err();
        assert_eq!(err.retry_after_secs, Some(2));
    }
}
