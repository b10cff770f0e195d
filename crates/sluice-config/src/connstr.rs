//! The libpq-style `key=value key2='quoted value'` strings of the
//! `[databases]` and `[users]` sections.
//!
//! Grammar (PgBouncer's `cstr_get_pair`, which follows libpq):
//! - pairs are separated by whitespace; spaces around `=` are allowed;
//! - a value starting with `'` runs to the closing `'`; inside it `\'` and
//!   `''` stand for a quote and `\\` for a backslash; any other backslash is
//!   kept as written; the closing quote must be followed by whitespace or the
//!   end;
//! - an unquoted value runs to the next whitespace and is taken literally
//!   (backslashes included, as PgBouncer does);
//! - `key=` with nothing after it gives an empty value (PgBouncer rejects
//!   it; callers here treat an empty value as "not set");
//! - note that, as in libpq, `host= port=5432` gives `host` the value
//!   `port=5432`.

/// Splits a connection string into `(key, value)` pairs, in order, with keys
/// as written. The error says what is wrong without repeating any value (a
/// value may be a password).
pub fn parse_connstr(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.is_empty() {
            return Err("missing parameter name before \"=\"".to_string());
        }
        let after_key = rest[key_end..].trim_start();
        let Some(after_eq) = after_key.strip_prefix('=') else {
            return Err(format!("missing \"=\" after \"{key}\""));
        };
        let value_start = after_eq.trim_start();
        let (value, next) = match value_start.strip_prefix('\'') {
            Some(quoted) => read_quoted(quoted, key)?,
            None => {
                let end = value_start
                    .find(char::is_whitespace)
                    .unwrap_or(value_start.len());
                (value_start[..end].to_string(), &value_start[end..])
            }
        };
        pairs.push((key.to_string(), value));
        rest = next;
    }
}

/// Reads a quoted value after its opening quote; returns the value and the
/// text after the closing quote.
fn read_quoted<'a>(s: &'a str, key: &str) -> Result<(String, &'a str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&(_, escaped @ ('\'' | '\\'))) => {
                    value.push(escaped);
                    chars.next();
                }
                _ => value.push('\\'),
            },
            '\'' => {
                if matches!(chars.peek(), Some((_, '\''))) {
                    value.push('\'');
                    chars.next();
                    continue;
                }
                let after = &s[i + 1..];
                if !after.is_empty() && !after.starts_with(char::is_whitespace) {
                    return Err(format!(
                        "unexpected text right after the quoted value of \"{key}\" (missing space?)"
                    ));
                }
                return Ok((value, after));
            }
            other => value.push(other),
        }
    }
    Err(format!("unterminated quoted value for \"{key}\""))
}
