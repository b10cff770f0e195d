//! A client's session parameters: the reported ones every client sees
//! (client_encoding, DateStyle, TimeZone, …) and any other server setting
//! given at startup (search_path, extra_float_digits, `options=-c …`), and
//! the SET/RESET that brings a server in line before it runs this client's
//! transaction.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::OnceLock;

use sluice_pool::ServerConn;
use sluice_protocol::builders::{quote_ident, quote_literal};
use sluice_protocol::startup::StartupParams;

use crate::errors::ClientError;

/// Reported parameters that follow the client from server to server.
pub const TRACKED: [&str; 6] = [
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "standard_conforming_strings",
    "application_name",
];

pub fn canonical(name: &str) -> Option<&'static str> {
    TRACKED
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(name))
}

/// Values of the TRACKED parameters, in a slot each: smaller than a map
/// (every client has one).
#[derive(Debug, Clone, Default, Hash)]
pub struct Tracked([Option<String>; TRACKED.len()]);

impl Tracked {
    fn slot(name: &str) -> Option<usize> {
        TRACKED.iter().position(|t| *t == name)
    }

    /// The value of `name` (spelled as in TRACKED).
    pub fn get(&self, name: &str) -> Option<&String> {
        self.0[Self::slot(name)?].as_ref()
    }

    pub fn insert(&mut self, name: &str, value: String) {
        if let Some(i) = Self::slot(name) {
            self.0[i] = Some(value);
        }
    }

    /// The value of `name`, set with `f()` first if missing. `name` must
    /// be one of TRACKED.
    pub fn get_or_insert_with(&mut self, name: &str, f: impl FnOnce() -> String) -> &mut String {
        let i = Self::slot(name).expect("a tracked parameter");
        self.0[i].get_or_insert_with(f)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &String)> {
        TRACKED
            .iter()
            .zip(&self.0)
            .filter_map(|(k, v)| Some((*k, v.as_ref()?)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut String)> {
        TRACKED
            .iter()
            .zip(&mut self.0)
            .filter_map(|(k, v)| Some((*k, v.as_mut()?)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct ClientParams {
    /// Values of the TRACKED parameters this client expects.
    pub tracked: Tracked,
    /// Other settings from startup, lower-cased names.
    pub extra: BTreeMap<String, String>,
    /// A hash of all of the above; 0 = not computed since the last change
    /// (anyone changing `tracked` or `extra` directly resets it).
    pub fingerprint: u64,
}

/// Startup parameters that are not server settings.
const PROTOCOL_KEYS: [&str; 3] = ["user", "database", "replication"];

impl ClientParams {
    /// Reads a StartupMessage's settings. `ignore` are lower-cased names to
    /// drop (ignore_startup_parameters).
    pub fn from_startup(
        startup: &StartupParams,
        ignore: &[String],
    ) -> Result<ClientParams, ClientError> {
        let mut p = ClientParams::default();
        for (name, value) in &startup.params {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("_pq_.") {
                // Protocol options, answered by NegotiateProtocolVersion.
                continue;
            }
            if PROTOCOL_KEYS.contains(&lower.as_str()) {
                if lower == "replication" && !matches!(value.as_str(), "false" | "off" | "no" | "0")
                {
                    return Err(ClientError::protocol_violation(
                        "replication connections are not supported",
                    ));
                }
                continue;
            }
            if ignore.iter().any(|i| i == &lower) {
                continue;
            }
            if lower == "options" {
                for (k, v) in parse_options(value)? {
                    p.set(&k, v);
                }
                continue;
            }
            p.set(name, value.clone());
        }
        Ok(p)
    }

    fn set(&mut self, name: &str, value: String) {
        self.fingerprint = 0;
        match canonical(name) {
            Some(c) => {
                self.tracked.insert(c, value);
            }
            None => {
                self.extra.insert(name.to_ascii_lowercase(), value);
            }
        }
    }

    /// Fills in the server's values for tracked parameters the client did
    /// not give, and returns the ParameterStatus set to show the client.
    pub fn welcome(&mut self, server_params: &[(String, String)]) -> Vec<(String, String)> {
        self.fingerprint = 0;
        let mut out = Vec::with_capacity(server_params.len());
        for (k, v) in server_params {
            match canonical(k) {
                Some(c) => {
                    let v = self.tracked.get_or_insert_with(c, || v.clone());
                    out.push((k.clone(), v.clone()));
                }
                None => out.push((k.clone(), v.clone())),
            }
        }
        for (k, v) in self.tracked.iter() {
            if !server_params.iter().any(|(s, _)| s == k) {
                out.push((k.to_string(), v.clone()));
            }
        }
        out
    }

    /// A ParameterStatus the server sent while working for this client.
    pub fn note_report(&mut self, name: &str, value: &str) {
        if let Some(c) = canonical(name) {
            self.fingerprint = 0;
            self.tracked.insert(c, value.to_string());
        }
    }

    /// A hash of every setting this client wants, with a per-process
    /// random key (so no client can aim at another's value). A server
    /// marked with it was brought in line with these settings already.
    fn fingerprint(&mut self) -> u64 {
        if self.fingerprint == 0 {
            static KEYS: OnceLock<RandomState> = OnceLock::new();
            let mut h = KEYS.get_or_init(RandomState::new).build_hasher();
            self.tracked.hash(&mut h);
            self.extra.hash(&mut h);
            self.fingerprint = h.finish().max(1);
        }
        self.fingerprint
    }

    /// The statements that make `server` match this client, if any. Marks
    /// the non-reported settings as applied on the server, and the server
    /// as in line with this set of settings: when the next client to take
    /// it wants the same settings (the common case), nothing is compared.
    pub fn sync_sql(&mut self, server: &mut ServerConn) -> Option<String> {
        let fingerprint = self.fingerprint();
        if server.settings_mark == fingerprint {
            return None;
        }
        // If the SET that follows fails, the server is closed.
        server.settings_mark = fingerprint;
        // set_config() reads a value the way the startup packet and the
        // config file do, so list settings such as search_path=a,b keep
        // their meaning (SET x TO 'a,b' would make it one quoted name).
        let mut sets = Vec::new();
        for (name, want) in self.tracked.iter() {
            if let Some(have) = server.params.get(name) {
                if have != want {
                    sets.push(set_config(name, want));
                }
            }
        }
        for (name, want) in &self.extra {
            if server.applied.get(name) != Some(want) {
                sets.push(set_config(name, want));
                server.applied.insert(name.clone(), want.clone());
            }
        }
        let mut sql = String::new();
        if !sets.is_empty() {
            sql = format!("SELECT {};", sets.join(", "));
        }
        let stale: Vec<String> = server
            .applied
            .keys()
            .filter(|k| !self.extra.contains_key(*k))
            .cloned()
            .collect();
        for name in stale {
            sql.push_str(&format!("RESET {};", quote_ident(&name)));
            server.applied.remove(&name);
        }
        (!sql.is_empty()).then_some(sql)
    }

    /// After a sync, adopt the server's spelling of what we asked for
    /// (e.g. DateStyle "iso" comes back as "ISO, MDY"), so the next
    /// comparison matches.
    pub fn adopt_server_values(&mut self, server: &ServerConn) {
        for (name, v) in self.tracked.iter_mut() {
            if let Some(have) = server.params.get(name) {
                if have != v {
                    self.fingerprint = 0;
                    *v = have.clone();
                }
            }
        }
    }
}

fn set_config(name: &str, value: &str) -> String {
    format!(
        "pg_catalog.set_config({}, {}, false)",
        quote_literal(name),
        quote_literal(value)
    )
}

/// Splits libpq's `options` ("-c a=b --c=d -c e=f\ g") into settings.
fn parse_options(s: &str) -> Result<Vec<(String, String)>, ClientError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let bad =
        || ClientError::protocol_violation(format!("unsupported options startup parameter: {s}"));
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let kv = if w == "-c" {
            it.next().ok_or_else(bad)?
        } else if let Some(r) = w.strip_prefix("-c") {
            r.to_string()
        } else if let Some(r) = w.strip_prefix("--") {
            r.to_string()
        } else {
            return Err(bad());
        };
        let (k, v) = kv.split_once('=').ok_or_else(bad)?;
        out.push((k.replace('-', "_"), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parameter_is_split_into_settings() {
        let o = parse_options("-c search_path=a,b --statement-timeout=5s -csome.x=1\\ 2").unwrap();
        assert_eq!(
            o,
            vec![
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("some.x".into(), "1 2".into()),
            ]
        );
        assert!(parse_options("-d 5").is_err());
    }

    #[test]
    fn startup_settings_are_sorted_into_tracked_and_extra() {
        let sp = StartupParams {
            minor_version: 0,
            params: vec![
                ("user".into(), "u".into()),
                ("datestyle".into(), "ISO".into()),
                ("extra_float_digits".into(), "3".into()),
                ("geqo".into(), "off".into()),
            ],
        };
        let p = ClientParams::from_startup(&sp, &["geqo".to_string()]).unwrap();
        assert_eq!(p.tracked.get("DateStyle").map(String::as_str), Some("ISO"));
        assert_eq!(
            p.extra.get("extra_float_digits").map(String::as_str),
            Some("3")
        );
        assert!(!p.extra.contains_key("geqo"));
    }
}
