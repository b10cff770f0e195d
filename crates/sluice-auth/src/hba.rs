//! `auth_type = hba`: the pg_hba.conf subset that PgBouncer reads from
//! `auth_hba_file`, and the rule that applies to a connection.
//!
//! Read as PgBouncer reads it (src/hba.c, PgBouncer 1.23+):
//! - records `local`, `host`, `hostssl`, `hostnossl`; the first rule that
//!   matches the connection type, client address, database and user wins;
//!   no match means the login is refused (PgBouncer: "no authentication
//!   method is found");
//! - database field: `all`, `sameuser`, `replication` (matches only
//!   replication connections, which Sluice refuses, so never), names, quoted
//!   names (`"all"` is the database called all), comma lists, `@file`
//!   (relative to the referencing file's directory, nested up to
//!   [`MAX_INCLUDE_DEPTH`]); `samerole`/`samegroup` are not supported;
//! - user field: `all`, names, quoted names, comma lists, `@file`; `+group`
//!   is not supported (PgBouncer knows no role membership);
//! - address: `all`, `a.b.c.d/len`, `x:y::/len`, or an address and a netmask
//!   field; `samehost`, `samenet` and host names are not supported;
//! - methods: `trust`, `reject`, `md5`, `password`, `scram-sha-256`, `cert`,
//!   `peer`; the only option is `map=NAME` (a map of the ident map file,
//!   [`IdentMaps`], for `cert` and `peer`).
//!
//! Beyond PgBouncer, as PostgreSQL does: a line ending in a backslash
//! continues on the next line. Names, keywords and map names are
//! case-sensitive, as in both.
//!
//! PgBouncer skips a line it cannot parse and logs a warning. [`Hba::parse`]
//! and [`Hba::load`] refuse the whole file instead, naming the line, as
//! PostgreSQL does; [`HbaOptions::lenient`] gives PgBouncer's behaviour with
//! the skipped lines returned as warnings.

mod ident;
mod lexer;
mod parse;
#[cfg(test)]
mod tests;

pub use ident::{IdentMapping, IdentMaps, IdentUser};

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use lexer::{records, tokenize, Token, Tokens};
use parse::*;

/// How deep `@file` includes may nest (PostgreSQL's limit).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// How a client reached Sluice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaConnType {
    /// A unix-domain socket: only `local` rules apply.
    Local,
    /// TCP, with or without TLS: `host` rules apply, and `hostssl` or
    /// `hostnossl` as `ssl` says.
    Host { ssl: bool },
}

/// The first field of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaRecordType {
    Local,
    Host,
    HostSsl,
    HostNoSsl,
}

impl HbaRecordType {
    fn admits(self, conn: HbaConnType) -> bool {
        match (self, conn) {
            (HbaRecordType::Local, HbaConnType::Local) => true,
            (HbaRecordType::Host, HbaConnType::Host { .. }) => true,
            (HbaRecordType::HostSsl, HbaConnType::Host { ssl }) => ssl,
            (HbaRecordType::HostNoSsl, HbaConnType::Host { ssl }) => !ssl,
            _ => false,
        }
    }
}

/// The authentication method of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaMethod {
    /// Log in without a password.
    Trust,
    /// Refuse the login (PgBouncer: "login rejected").
    Reject,
    /// MD5 password exchange. PgBouncer switches to SCRAM-SHA-256 when the
    /// user's stored secret is a SCRAM verifier.
    Md5,
    /// Cleartext password (`password` in the file; PgBouncer's `plain`).
    Password,
    ScramSha256,
    /// TLS client certificate: its name must be the user's, or map to it
    /// through `map=`. Succeeds only over TLS.
    Cert,
    /// The unix socket peer's OS user must be the user, or map to it through
    /// `map=`. Succeeds only on a unix socket.
    Peer,
}

impl HbaMethod {
    fn from_keyword(word: &str) -> Option<HbaMethod> {
        Some(match word {
            "trust" => HbaMethod::Trust,
            "reject" => HbaMethod::Reject,
            "md5" => HbaMethod::Md5,
            "password" => HbaMethod::Password,
            "scram-sha-256" => HbaMethod::ScramSha256,
            "cert" => HbaMethod::Cert,
            "peer" => HbaMethod::Peer,
            _ => return None,
        })
    }

    /// The keyword as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            HbaMethod::Trust => "trust",
            HbaMethod::Reject => "reject",
            HbaMethod::Md5 => "md5",
            HbaMethod::Password => "password",
            HbaMethod::ScramSha256 => "scram-sha-256",
            HbaMethod::Cert => "cert",
            HbaMethod::Peer => "peer",
        }
    }

    /// `cert` and `peer`, the methods that read `map=`.
    pub fn uses_ident_map(self) -> bool {
        matches!(self, HbaMethod::Cert | HbaMethod::Peer)
    }
}

impl fmt::Display for HbaMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address field of a `host*` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HbaAddress {
    /// `all`: any client address.
    All,
    /// A network: the client matches when `client & mask == addr`. As in
    /// PgBouncer, `addr` is kept as written, so an address with bits outside
    /// its mask matches nothing (strict parsing refuses it). An IPv4 rule
    /// also matches an IPv4-mapped IPv6 client (`::ffff:a.b.c.d`), as a
    /// dual-stack listener reports IPv4 clients.
    Net { addr: IpAddr, mask: IpAddr },
}

impl HbaAddress {
    /// Whether `client` is in this range.
    pub fn matches(&self, client: IpAddr) -> bool {
        let (addr, mask) = match self {
            HbaAddress::All => return true,
            HbaAddress::Net { addr, mask } => (*addr, *mask),
        };
        let client = match (addr, client) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => client,
        };
        addr.is_ipv4() == client.is_ipv4() && bits(client) & bits(mask) == bits(addr)
    }
}

/// The address as an integer, to mask and compare.
fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The netmask of a CIDR prefix length (already checked against the family).
fn prefix_mask(family: IpAddr, prefix: u32) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(
            u32::MAX.checked_shl(32 - prefix).unwrap_or(0),
        )),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(
            u128::MAX.checked_shl(128 - prefix).unwrap_or(0),
        )),
    }
}

/// The database or user field of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HbaNames {
    all: bool,
    sameuser: bool,
    replication: bool,
    names: BTreeSet<String>,
}

impl HbaNames {
    /// `all` was given.
    pub fn is_all(&self) -> bool {
        self.all
    }

    /// The plain names (quoted or not, and those read from `@file`s).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// `name` matches; `sameuser` matches when `name == other` (for the
    /// database field, `other` is the user). `replication` matches only
    /// replication connections, which are never looked up here.
    fn matches(&self, name: &str, other: &str) -> bool {
        self.all || (self.sameuser && name == other) || self.names.contains(name)
    }
}

/// One rule of the HBA file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HbaRule {
    /// 1-based line in the HBA file (the first line of a continued record).
    pub line: usize,
    pub record_type: HbaRecordType,
    pub databases: HbaNames,
    pub users: HbaNames,
    /// `None` for `local` rules.
    pub address: Option<HbaAddress>,
    pub method: HbaMethod,
    /// `map=NAME`: a map of the ident map file, checked to exist.
    pub ident_map: Option<String>,
}

impl HbaRule {
    /// Whether this rule applies to the connection. A TCP connection whose
    /// address is unknown (`None`) matches only `all` addresses.
    pub fn matches(
        &self,
        conn: HbaConnType,
        addr: Option<IpAddr>,
        database: &str,
        user: &str,
    ) -> bool {
        if !self.record_type.admits(conn) {
            return false;
        }
        if conn != HbaConnType::Local {
            let address_ok = match (&self.address, addr) {
                (Some(HbaAddress::All), _) => true,
                (Some(range), Some(client)) => range.matches(client),
                _ => false,
            };
            if !address_ok {
                return false;
            }
        }
        self.databases.matches(database, user) && self.users.matches(user, database)
    }
}

/// The rules of an HBA file, in file order, and the ident maps they use.
/// An empty `Hba` refuses every login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hba {
    rules: Vec<HbaRule>,
    ident: IdentMaps,
}

/// How [`Hba::parse_with`] and [`Hba::load_with`] read a file.
#[derive(Debug, Clone, Copy, Default)]
pub struct HbaOptions<'a> {
    /// The maps of `auth_ident_file`, which `map=` options must name. Without
    /// them every `map=` is an error (PgBouncer skips such lines).
    pub ident: Option<&'a IdentMaps>,
    /// Skip lines that do not parse, as PgBouncer does, and return them as
    /// warnings, instead of failing on the first. Also keeps, with a warning,
    /// rules that PgBouncer keeps but reads differently from PostgreSQL
    /// (an address with bits outside its mask, which never matches; `map=` on
    /// a method other than cert and peer, which is ignored; a `/regex` name,
    /// which is compared as a plain name).
    pub lenient: bool,
}

impl Hba {
    /// Parses HBA text. The first line that Sluice cannot read as PgBouncer
    /// would, or that PgBouncer would skip, is an error that names it.
    /// `map=` options are refused (no ident maps); relative `@file` paths
    /// resolve against the working directory.
    pub fn parse(text: &str) -> Result<Hba, HbaError> {
        Self::parse_with(text, None, HbaOptions::default()).map(|(hba, _)| hba)
    }

    /// Reads and parses an HBA file (`auth_hba_file`); see [`Hba::parse`].
    /// Relative `@file` paths resolve against the file's directory.
    pub fn load(path: &Path) -> Result<Hba, HbaError> {
        Self::load_with(path, HbaOptions::default()).map(|(hba, _)| hba)
    }

    /// Reads and parses an HBA file with ident maps and/or leniency. The
    /// warnings are empty unless `options.lenient`.
    pub fn load_with(
        path: &Path,
        options: HbaOptions<'_>,
    ) -> Result<(Hba, Vec<HbaError>), HbaError> {
        let text = read_file(path)?;
        let file = path.display().to_string();
        Self::parse_from(&text, &file, path.parent(), options)
    }

    /// Parses HBA text with ident maps and/or leniency; relative `@file`
    /// paths resolve against `base_dir` (the working directory if `None`).
    pub fn parse_with(
        text: &str,
        base_dir: Option<&Path>,
        options: HbaOptions<'_>,
    ) -> Result<(Hba, Vec<HbaError>), HbaError> {
        Self::parse_from(text, "hba file", base_dir, options)
    }

    fn parse_from(
        text: &str,
        file: &str,
        base_dir: Option<&Path>,
        options: HbaOptions<'_>,
    ) -> Result<(Hba, Vec<HbaError>), HbaError> {
        let context = Context {
            base_dir,
            ident: options.ident,
        };
        let mut rules = Vec::new();
        let mut warnings = Vec::new();
        for (line, record) in records(text) {
            let parsed = tokenize(&record)
                .and_then(|tokens| parse_record(&context, line, Tokens::new(tokens)));
            match parsed {
                Ok(None) => {}
                Ok(Some((rule, notes))) => {
                    if !options.lenient {
                        if let Some(note) = notes.into_iter().next() {
                            return Err(HbaError::at(file, line, note));
                        }
                    } else {
                        warnings.extend(notes.into_iter().map(|n| HbaError::at(file, line, n)));
                    }
                    rules.push(rule);
                }
                Err(message) if options.lenient => {
                    warnings.push(HbaError::at(file, line, message));
                }
                Err(message) => return Err(HbaError::at(file, line, message)),
            }
        }
        let ident = options.ident.cloned().unwrap_or_default();
        Ok((Hba { rules, ident }, warnings))
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[HbaRule] {
        &self.rules
    }

    /// The ident maps that `map=` options refer to (empty if none were given).
    pub fn ident_maps(&self) -> &IdentMaps {
        &self.ident
    }

    /// The first rule that matches the connection, as PostgreSQL and
    /// PgBouncer pick it; `None` when no rule matches, which PgBouncer
    /// answers with "no authentication method is found". A `Reject` rule is
    /// answered "login rejected". `database` is the name the client asked
    /// for (the `[databases]` entry), as in PgBouncer; `addr` is the client's
    /// address for TCP connections.
    pub fn lookup(
        &self,
        conn: HbaConnType,
        addr: Option<IpAddr>,
        database: &str,
        user: &str,
    ) -> Option<&HbaRule> {
        self.rules
            .iter()
            .find(|rule| rule.matches(conn, addr, database, user))
    }

    /// For a `cert` or `peer` rule: may the client log in as
    /// `database_user`? `has_system_name` says whether the client has a name
    /// (the certificate's name, or the peer's OS user name). Without `map=`
    /// the client must have the name `database_user` itself; with it, some
    /// line of the map must pair one of its names with `database_user` or
    /// `all`.
    pub fn system_user_allowed(
        &self,
        rule: &HbaRule,
        database_user: &str,
        has_system_name: impl Fn(&str) -> bool,
    ) -> bool {
        match &rule.ident_map {
            Some(map) => self.ident.allows(map, database_user, has_system_name),
            None => has_system_name(database_user),
        }
    }
}

/// Why an HBA or ident map file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HbaError {
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `file` is the path, or "hba file" / "ident map file" for parsed text.
    #[error("{file} line {line}: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
}

impl HbaError {
    fn at(file: &str, line: usize, message: impl Into<String>) -> HbaError {
        HbaError::Line {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }

    /// The line the error is about, if it is about one.
    pub fn line(&self) -> Option<usize> {
        match self {
            HbaError::Line { line, .. } => Some(*line),
            HbaError::Read { .. } => None,
        }
    }
}
