//! A function's configuration: the keys the platform understands, typed and validated, and
//! every other key kept verbatim (never silently dropped) so later versions can give them
//! meaning and clients get back what they sent.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
pub const MAX_TIMEOUT_SECS: f64 = 3600.0;
pub const DEFAULT_MEMORY_MB: u64 = 128;
pub const MAX_MEMORY_MB: u64 = 4096;

/// Validated configuration of one function version.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// Run-time limit of one invocation.
    pub timeout: Duration,
    /// Memory cap in MiB (for WASI: the linear memory).
    pub memory_mb: u64,
    /// Environment variables the function sees.
    pub environment: BTreeMap<String, String>,
    /// Invocable without an API key (a webhook); managing it still needs one.
    pub public: bool,
    /// Invocations per second this function accepts, from all callers together.
    pub rate_limit: Option<f64>,
    /// Keys this version of the platform does not interpret, kept as sent.
    pub extra: Map<String, Value>,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            memory_mb: DEFAULT_MEMORY_MB,
            environment: BTreeMap::new(),
            public: false,
            rate_limit: None,
            extra: Map::new(),
        }
    }
}

fn invalid(message: String) -> Error {
    Error::invalid("invalid_config", message)
}

impl FunctionConfig {
    /// Parses a `config` JSON object; `null` means all defaults.
    pub fn from_json(value: &Value) -> Result<Self> {
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            _ => return Err(invalid("config must be a JSON object".into())),
        };
        let mut config = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "timeout" => config.timeout = parse_timeout(value)?,
                "memory" => config.memory_mb = parse_memory_value(value)?,
                "environment" => config.environment = parse_environment(value)?,
                "public" => {
                    config.public = value.as_bool().ok_or_else(|| {
                        invalid(format!("public must be true or false, got {value}"))
                    })?
                }
                "rate_limit" => {
                    config.rate_limit = match value {
                        Value::Null => None,
                        _ => crate::auth::validate_rate_limit(Some(
                            value.as_f64().unwrap_or(f64::NAN),
                        ))
                        .map_err(|_| {
                            invalid(format!(
                                "rate_limit must be a positive number of invocations per second, got {value}"
                            ))
                        })?,
                    }
                }
                _ => {
                    config.extra.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(config)
    }

    /// The JSON form, as stored and as shown to clients.
    pub fn to_json(&self) -> Value {
        let mut object = self.extra.clone();
        let secs = self.timeout.as_secs_f64();
        let timeout = if secs.fract() == 0.0 {
            Value::from(secs as u64)
        } else {
            Value::from(secs)
        };
        object.insert("timeout".into(), timeout);
        object.insert("memory".into(), Value::from(self.memory_mb));
        object.insert("public".into(), Value::from(self.public));
        if let Some(rate) = self.rate_limit {
            object.insert("rate_limit".into(), Value::from(rate));
        }
        object.insert(
            "environment".into(),
            Value::Object(
                self.environment
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        Value::Object(object)
    }

    /// This configuration with the top-level keys of `patch` replaced (an update).
    pub fn merged(&self, patch: &Value) -> Result<Self> {
        match patch {
            Value::Null => Ok(self.clone()),
            Value::Object(patch) => {
                let Value::Object(mut merged) = self.to_json() else {
                    unreachable!("to_json always returns an object")
                };
                for (key, value) in patch {
                    merged.insert(key.clone(), value.clone());
                }
                Self::from_json(&Value::Object(merged))
            }
            _ => Err(invalid("config must be a JSON object".into())),
        }
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mb * 1024 * 1024
    }
}

fn parse_timeout(value: &Value) -> Result<Duration> {
    let secs = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().trim_end_matches('s').parse::<f64>().ok(),
        _ => None,
    };
    match secs {
        Some(secs) if secs > 0.0 && secs <= MAX_TIMEOUT_SECS => Ok(Duration::from_secs_f64(secs)),
        _ => Err(invalid(format!(
            "timeout must be a number of seconds greater than 0 and at most {MAX_TIMEOUT_SECS}, got {value}"
        ))),
    }
}

fn parse_memory_value(value: &Value) -> Result<u64> {
    let mb = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => parse_memory_mb(s),
        _ => None,
    };
    match mb {
        Some(mb) if (1..=MAX_MEMORY_MB).contains(&mb) => Ok(mb),
        _ => Err(invalid(format!(
            "memory must be a number of MB or a size such as \"128Mi\", between 1 MB and {MAX_MEMORY_MB} MB, got {value}"
        ))),
    }
}

/// Parses a memory size into MiB: `128`, `128M`, `128Mi`, `128MB`, `1G`, `1Gi`, `1GB`.
/// Sizes that are not a whole number of MiB are rounded up.
pub fn parse_memory_mb(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let kib_per_unit: u64 = match unit.trim() {
        "" | "M" | "Mi" | "MB" | "MiB" | "m" | "mb" => 1024,
        "G" | "Gi" | "GB" | "GiB" | "g" | "gb" => 1024 * 1024,
        "K" | "Ki" | "KB" | "KiB" | "k" | "kb" => 1,
        _ => return None,
    };
    let kib = n.checked_mul(kib_per_unit)?;
    Some(kib.div_ceil(1024))
}

fn parse_environment(value: &Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(object) = value else {
        return Err(invalid(
            "environment must be a JSON object of names to string values".into(),
        ));
    };
    let mut environment = BTreeMap::new();
    for (key, value) in object {
        let valid_name = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(invalid(format!(
                "environment variable name '{}' is not valid; use letters, digits and '_', not starting with a digit",
                key.escape_default()
            )));
        }
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(format!(
                    "environment variable '{key}' must be a string"
                )));
            }
        };
        if value.contains('\0') {
            return Err(invalid(format!(
                "environment variable '{key}' contains a NUL byte"
            )));
        }
        environment.insert(key.clone(), value);
    }
    Ok(environment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_apply_and_unknown_keys_are_kept() {
        let config = FunctionConfig::from_json(&json!({"execution_mode": "process"})).unwrap();
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.memory_mb, 128);
        assert_eq!(config.to_json()["execution_mode"], "process");
    }

    #[test]
    fn memory_accepts_numbers_and_units() {
        assert_eq!(parse_memory_mb("128Mi"), Some(128));
        assert_eq!(parse_memory_mb("1Gi"), Some(1024));
        assert_eq!(parse_memory_mb("64"), Some(64));
        assert_eq!(parse_memory_mb("512KB"), Some(1));
        assert_eq!(parse_memory_mb("12 parsecs"), None);
        let config = FunctionConfig::from_json(&json!({"memory": "256M"})).unwrap();
        assert_eq!(config.memory_mb, 256);
        assert!(FunctionConfig::from_json(&json!({"memory": 0})).is_err());
        assert!(FunctionConfig::from_json(&json!({"memory": "lots"})).is_err());
    }

    #[test]
    fn timeout_and_environment_are_validated() {
        let config = FunctionConfig::from_json(
            &json!({"timeout": 0.5, "environment": {"A_1": "x", "N": 3}}),
        )
        .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert_eq!(config.environment["N"], "3");
        assert!(FunctionConfig::from_json(&json!({"timeout": -1})).is_err());
        assert!(FunctionConfig::from_json(&json!({"timeout": "soon"})).is_err());
        assert!(FunctionConfig::from_json(&json!({"environment": {"1A": "x"}})).is_err());
        assert!(FunctionConfig::from_json(&json!({"environment": {"A=B": "x"}})).is_err());
        assert!(FunctionConfig::from_json(&json!([1])).is_err());
    }

    #[test]
    fn merge_replaces_top_level_keys() {
        let base = FunctionConfig::from_json(&json!({"timeout": 5, "custom": 1})).unwrap();
        let merged = base.merged(&json!({"memory": 64})).unwrap();
        assert_eq!(merged.timeout, Duration::from_secs(5));
        assert_eq!(merged.memory_mb, 64);
        assert_eq!(merged.extra["custom"], 1);
        let round_trip = FunctionConfig::from_json(&merged.to_json()).unwrap();
        assert_eq!(round_trip, merged);
    }
}
