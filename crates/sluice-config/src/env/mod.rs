//! Configuration from environment variables, in the dialects of the three
//! popular PgBouncer container images, so that Sluice is a drop-in for them:
//! `pgbouncer/pgbouncer` (`DATABASES_*`, `PGBOUNCER_<KEY>`),
//! `edoburu/pgbouncer` (`DATABASE_URL`, `DB_*`, unprefixed keys) and
//! `bitnami/pgbouncer` (`POSTGRESQL_*`, `PGBOUNCER_*`, `*_FILE`).
//!
//! The dialect is picked by the variables that name the backend; a mix of
//! two dialects is an error naming the variables. What a dialect yields is a
//! list of ini lines (as if appended to pgbouncer.ini, so they win over a
//! file's) and userlist entries. Lines are built as events, never as text,
//! so a value cannot smuggle in a line or an `%include`.

mod bitnami;
mod edoburu;
mod pgbouncer_image;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::ConfigError;
use crate::ini::{IniEvent, Location};

/// Which image's variables configure Sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `pgbouncer/pgbouncer` (Cal.com's guide).
    PgBouncerImage,
    /// `edoburu/pgbouncer`.
    Edoburu,
    /// `bitnami/pgbouncer`.
    Bitnami,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::PgBouncerImage => "pgbouncer/pgbouncer",
            Dialect::Edoburu => "edoburu/pgbouncer",
            Dialect::Bitnami => "bitnami/pgbouncer",
        })
    }
}

/// What the environment configures.
#[derive(Debug, Clone)]
pub struct EnvConfig {
    pub dialect: Dialect,
    pub(crate) events: Vec<IniEvent>,
    /// userlist.txt lines the image would have written.
    pub userlist: String,
    /// Whether those lines win over the auth_file's for the same user
    /// (bitnami rewrites its file; edoburu only adds missing users).
    pub userlist_wins: bool,
}

/// The variables of the process, with the `<VAR>_FILE` rule: when
/// `<VAR>_FILE` is set, `<VAR>` is read from that file (trailing newlines
/// removed), as bitnami's images do for secrets.
#[derive(Debug, Clone, Default)]
pub struct EnvVars {
    vars: BTreeMap<String, String>,
}

impl EnvVars {
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> EnvVars {
        EnvVars {
            vars: vars.into_iter().collect(),
        }
    }

    /// This process's environment (variables that are not UTF-8 skipped).
    pub fn from_process() -> EnvVars {
        EnvVars::new(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// `name`'s value (its `_FILE`'s contents first); empty is unset.
    pub fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}_FILE");
        if let Some(path) = self.vars.get(&file_var).filter(|v| !v.is_empty()) {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Env(format!("{file_var}: cannot read {path}: {e}")))?;
            let text = text.trim_end_matches(['\n', '\r']);
            return Ok((!text.is_empty()).then(|| text.to_owned()));
        }
        Ok(self.vars.get(name).filter(|v| !v.is_empty()).cloned())
    }

    fn get_or(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(name)?.unwrap_or_else(|| default.to_owned()))
    }

    fn has(&self, name: &str) -> bool {
        self.names()
            .any(|n| n == name || n == format!("{name}_FILE"))
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.as_str())
    }

    /// Set variables whose names start with `prefix`, without the
    /// `_FILE` suffix, sorted.
    fn with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .names()
            .filter(|n| n.starts_with(prefix))
            .map(|n| n.strip_suffix("_FILE").unwrap_or(n).to_owned())
            .collect();
        out.dedup();
        out
    }
}

/// Variables that say "this is image X's configuration".
fn markers(vars: &EnvVars) -> Vec<(Dialect, String)> {
    let mut found = Vec::new();
    for name in vars.names() {
        let name = name.strip_suffix("_FILE").unwrap_or(name);
        let dialect = if name == "DATABASES" || name.starts_with("DATABASES_") {
            Some(Dialect::PgBouncerImage)
        } else if matches!(name, "DATABASE_URL" | "DATABASE_URLS") || name.starts_with("DB_") {
            Some(Dialect::Edoburu)
        } else if name.starts_with("POSTGRESQL_")
            || name.starts_with("PGBOUNCER_DSN_")
            || matches!(
                name,
                "PGBOUNCER_DATABASE" | "PGBOUNCER_PORT" | "PGBOUNCER_LISTEN_ADDRESS"
            )
        {
            Some(Dialect::Bitnami)
        } else {
            None
        };
        if let Some(d) = dialect {
            found.push((d, name.to_owned()));
        }
    }
    found.dedup();
    found
}

/// The dialect the environment speaks, if any; a mix is an error.
pub fn detect(vars: &EnvVars) -> Result<Option<Dialect>, ConfigError> {
    let found = markers(vars);
    let Some((first, _)) = found.first() else {
        // PGBOUNCER_<KEY> alone (say, next to a config file) is read the
        // pgbouncer/pgbouncer way: each one a [pgbouncer] key.
        return Ok((!vars.with_prefix("PGBOUNCER_").is_empty()).then_some(Dialect::PgBouncerImage));
    };
    let mut by_dialect: Vec<(Dialect, Vec<&str>)> = Vec::new();
    for (d, name) in &found {
        match by_dialect.iter_mut().find(|(x, _)| x == d) {
            Some((_, names)) => names.push(name),
            None => by_dialect.push((*d, vec![name])),
        }
    }
    if by_dialect.len() > 1 {
        let parts: Vec<String> = by_dialect
            .iter()
            .map(|(d, names)| format!("{} ({d})", names.join(", ")))
            .collect();
        return Err(ConfigError::Env(format!(
            "variables of more than one image's dialect are set: {}; use one",
            parts.join(" and ")
        )));
    }
    Ok(Some(*first))
}

/// Reads the environment's configuration, if it has one.
pub fn from_env(vars: &EnvVars) -> Result<Option<EnvConfig>, ConfigError> {
    let Some(dialect) = detect(vars)? else {
        return Ok(None);
    };
    let mut out = Builder::default();
    match dialect {
        Dialect::PgBouncerImage => pgbouncer_image::read(vars, &mut out)?,
        Dialect::Edoburu => edoburu::read(vars, &mut out)?,
        Dialect::Bitnami => bitnami::read(vars, &mut out)?,
    }
    Ok(Some(EnvConfig {
        dialect,
        events: out.events,
        userlist: out.userlist,
        userlist_wins: dialect == Dialect::Bitnami,
    }))
}

/// Collects the lines a dialect makes.
#[derive(Default)]
struct Builder {
    events: Vec<IniEvent>,
    section: Option<&'static str>,
    userlist: String,
}

impl Builder {
    fn at(var: &str) -> Location {
        Location {
            file: PathBuf::from(format!("${var}")),
            line: 1,
        }
    }

    fn section(&mut self, name: &'static str, var: &str) {
        if self.section != Some(name) {
            self.section = Some(name);
            self.events.push(IniEvent::Section {
                name: name.to_owned(),
                at: Self::at(var),
            });
        }
    }

    /// `[pgbouncer] key = value`, from variable `var`.
    fn general(&mut self, key: &str, value: &str, var: &str) {
        self.section("pgbouncer", var);
        self.entry(key, value, var);
    }

    /// `[databases] name = connstr`, from variable `var`.
    fn database(&mut self, name: &str, connstr: &str, var: &str) {
        self.section("databases", var);
        self.entry(name, connstr, var);
    }

    /// A userlist.txt line for `user` (quotes doubled, as the file wants).
    fn user(&mut self, user: &str, secret: &str) {
        let q = |s: &str| s.replace('"', "\"\"");
        self.userlist
            .push_str(&format!("\"{}\" \"{}\"\n", q(user), q(secret)));
    }

    fn entry(&mut self, key: &str, value: &str, var: &str) {
        self.events.push(IniEvent::Entry {
            key: key.to_owned(),
            value: value.to_owned(),
            at: Self::at(var),
        });
    }
}

/// `key=value` for a [databases] connection string, quoted as libpq
/// reads it when the value has spaces, quotes or backslashes.
fn conn_pair(key: &str, value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\')
    {
        return format!("{key}={value}");
    }
    let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
    format!("{key}='{escaped}'")
}

/// The [pgbouncer] key a variable names after its prefix is stripped:
/// `POOL_MODE` → `pool_mode`.
fn key_of(suffix: &str) -> String {
    suffix.to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
