//! Value parsers shared by every section: durations, booleans, counts,
//! ports, octal modes, comma lists, pool modes and auth types. Each returns a
//! short reason on failure, which the caller wraps with file, line and key.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::model::{AuthType, PoolMode, TlsMode};

const DURATION_EXPECTED: &str =
    "expected a number of seconds such as 15 or 0.5, optionally with a unit: us, ms, s, min, h, d";

/// A PgBouncer time value. A plain number is seconds and may have a fraction
/// (`"15"`, `"0.5"`); a unit may follow, with or without a space:
/// `us`, `ms`, `s`, `min`, `h`, `d` (`"100ms"`, `"2 min"`). Negative values,
/// exponents and anything else are rejected. Precision is one microsecond,
/// as in PgBouncer.
pub fn parse_duration_secs(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err(format!("must not be negative; {DURATION_EXPECTED}"));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(DURATION_EXPECTED.to_string());
    }
    let value: f64 = number.parse().map_err(|_| DURATION_EXPECTED.to_string())?;
    let micros_per_unit: f64 = match unit.trim() {
        "" | "s" => 1e6,
        "us" => 1.0,
        "ms" => 1e3,
        "min" => 60e6,
        "h" => 3600e6,
        "d" => 86_400e6,
        other => return Err(format!("unknown unit \"{other}\"; {DURATION_EXPECTED}")),
    };
    let micros = (value * micros_per_unit).round();
    // u64::MAX as f64 rounds up to 2^64, so `>=` keeps the cast in range.
    if !micros.is_finite() || micros >= u64::MAX as f64 {
        return Err("duration is too large".to_string());
    }
    Ok(Duration::from_micros(micros as u64))
}

/// A boolean: `1`/`0`, `yes`/`no`, `on`/`off`, `true`/`false`, any case.
/// (PgBouncer itself takes integers here; the words are an extension.)
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Ok(true),
        "0" | "no" | "off" | "false" => Ok(false),
        _ => Err("expected a boolean: 1/0, yes/no, on/off or true/false".to_string()),
    }
}

/// A non-negative decimal integer that fits `T`.
pub(crate) fn parse_uint<T: FromStr>(s: &str) -> Result<T, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("expected an integer".to_string());
    }
    if s.starts_with('-') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a non-negative integer".to_string());
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected an integer".to_string());
    }
    s.parse::<T>()
        .map_err(|_| "number is too large for this setting".to_string())
}

/// A per-database or per-user count where `-1` means "not set" (PgBouncer's
/// convention in connection strings).
pub(crate) fn parse_optional_uint<T: FromStr>(s: &str) -> Result<Option<T>, String> {
    if s.trim() == "-1" {
        return Ok(None);
    }
    parse_uint(s).map(Some)
}

/// A per-database or per-user duration where `-1` means "not set".
pub(crate) fn parse_optional_duration(s: &str) -> Result<Option<Duration>, String> {
    if s.trim() == "-1" {
        return Ok(None);
    }
    parse_duration_secs(s).map(Some)
}

/// A server port in a connection string: 1–65535.
pub(crate) fn parse_port(s: &str) -> Result<u16, String> {
    match parse_uint::<u16>(s) {
        Ok(0) | Err(_) => Err("expected a port number from 1 to 65535".to_string()),
        Ok(port) => Ok(port),
    }
}

/// A file mode, always read as octal: `0777`, `777` and `0o777` are the same.
/// (PgBouncer reads it with C rules, so only a leading 0 makes it octal
/// there; every real config writes the leading 0.)
pub(crate) fn parse_octal_mode(s: &str) -> Result<u32, String> {
    const EXPECTED: &str = "expected an octal file mode such as 0777";
    let s = s.trim();
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(EXPECTED.to_string());
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(format!("{EXPECTED} (at most 07777)")),
    }
}

/// A comma-separated list; items are trimmed and empty items dropped.
pub(crate) fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// `session`, `transaction` or `statement`, any case.
pub(crate) fn parse_pool_mode(s: &str) -> Result<PoolMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "session" => Ok(PoolMode::Session),
        "transaction" => Ok(PoolMode::Transaction),
        "statement" => Ok(PoolMode::Statement),
        _ => Err("expected session, transaction or statement".to_string()),
    }
}

/// One of PgBouncer's `auth_type` values that Sluice knows, any case.
pub(crate) fn parse_auth_type(s: &str) -> Result<AuthType, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trust" => Ok(AuthType::Trust),
        "any" => Ok(AuthType::Any),
        "plain" => Ok(AuthType::Plain),
        "md5" => Ok(AuthType::Md5),
        "scram-sha-256" => Ok(AuthType::ScramSha256),
        "cert" => Ok(AuthType::Cert),
        "hba" => Ok(AuthType::Hba),
        "pam" => Ok(AuthType::Pam),
        "ldap" => Err("ldap authentication is not supported by Sluice".to_string()),
        "crypt" => {
            Err("crypt authentication is no longer supported by PgBouncer or Sluice".to_string())
        }
        _ => {
            Err("expected one of trust, any, plain, md5, scram-sha-256, cert, hba, pam".to_string())
        }
    }
}

/// A TLS mode: `disable`, `allow`, `prefer`, `require`, `verify-ca` or
/// `verify-full`, any case.
pub(crate) fn parse_tls_mode(s: &str) -> Result<TlsMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "disable" => Ok(TlsMode::Disable),
        "allow" => Ok(TlsMode::Allow),
        "prefer" => Ok(TlsMode::Prefer),
        "require" => Ok(TlsMode::Require),
        "verify-ca" => Ok(TlsMode::VerifyCa),
        "verify-full" => Ok(TlsMode::VerifyFull),
        _ => Err(
            "expected one of disable, allow, prefer, require, verify-ca, verify-full".to_string(),
        ),
    }
}

/// A string setting where empty means "not set".
pub(crate) fn optional_string(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A path setting where empty means "not set". Kept as written: a relative
/// path is relative to the working directory, as in PgBouncer.
pub(crate) fn optional_path(s: &str) -> Option<PathBuf> {
    optional_string(s).map(PathBuf::from)
}
