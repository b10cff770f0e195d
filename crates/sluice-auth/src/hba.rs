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
#[cfg(test)]
mod tests;

pub use ident::{IdentMapping, IdentMaps, IdentUser};

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use lexer::{records, tokenize, Token, Tokens};

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

fn read_file(path: &Path) -> Result<String, HbaError> {
    std::fs::read_to_string(path).map_err(|source| HbaError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// What parsing a record needs besides its tokens.
struct Context<'a> {
    base_dir: Option<&'a Path>,
    ident: Option<&'a IdentMaps>,
}

/// A rule and notes on what PgBouncer reads differently from PostgreSQL
/// (errors unless lenient).
type Parsed = (HbaRule, Vec<String>);

/// One record; `Ok(None)` for a blank or comment-only line.
fn parse_record(
    context: &Context<'_>,
    line: usize,
    mut tokens: Tokens,
) -> Result<Option<Parsed>, String> {
    let Some(first) = tokens.next() else {
        return Ok(None);
    };
    let record_type = match first.bare() {
        Some("local") => HbaRecordType::Local,
        Some("host") => HbaRecordType::Host,
        Some("hostssl") => HbaRecordType::HostSsl,
        Some("hostnossl") => HbaRecordType::HostNoSsl,
        Some(t @ ("hostgssenc" | "hostnogssenc")) => {
            return Err(format!("{t} records are not supported"))
        }
        Some(t @ ("include" | "include_if_exists" | "include_dir")) => {
            return Err(format!("{t} directives are not supported"))
        }
        _ => {
            return Err(format!(
                "unknown record type {}; expected local, host, hostssl or hostnossl",
                first.shown()
            ))
        }
    };
    let mut notes = Vec::new();
    let databases = parse_names(&mut tokens, Field::Database, context, &mut notes)?;
    let users = parse_names(&mut tokens, Field::User, context, &mut notes)?;
    let address = match record_type {
        HbaRecordType::Local => None,
        _ => Some(parse_address(&mut tokens, &mut notes)?),
    };
    let method = parse_method(&mut tokens)?;
    let ident_map = parse_options(&mut tokens, method, context, &mut notes)?;
    let rule = HbaRule {
        line,
        record_type,
        databases,
        users,
        address,
        method,
        ident_map,
    };
    Ok(Some((rule, notes)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Database,
    User,
}

impl Field {
    fn label(self) -> &'static str {
        match self {
            Field::Database => "database",
            Field::User => "user",
        }
    }
}

/// A comma-separated list of names (the database or user field).
fn parse_names(
    tokens: &mut Tokens,
    field: Field,
    context: &Context<'_>,
    notes: &mut Vec<String>,
) -> Result<HbaNames, String> {
    let mut names = HbaNames::default();
    loop {
        match tokens.next() {
            None => return Err(format!("missing {} field", field.label())),
            Some(Token::Comma) => return Err(format!("empty item in the {} list", field.label())),
            Some(Token::Word { text, quoted }) => {
                add_name(&mut names, &text, quoted, field, context.base_dir, 0, notes)?
            }
        }
        if !tokens.eat_comma() {
            return Ok(names);
        }
    }
}

/// Adds one item of a name list: a keyword, an `@file`, or a name.
fn add_name(
    names: &mut HbaNames,
    text: &str,
    quoted: bool,
    field: Field,
    base_dir: Option<&Path>,
    depth: usize,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("empty name in the {} field", field.label()));
    }
    if quoted {
        names.names.insert(text.to_string());
        return Ok(());
    }
    match (field, text) {
        (_, "all") => names.all = true,
        (Field::Database, "sameuser") => names.sameuser = true,
        (Field::Database, "replication") => names.replication = true,
        (Field::Database, "samerole" | "samegroup") => {
            return Err(format!(
                "{text} is not supported: PgBouncer knows no role membership"
            ))
        }
        _ if text.starts_with('+') => {
            return Err(format!(
                "\"{text}\": role membership (+group) is not supported"
            ))
        }
        _ => {
            if let Some(file) = text.strip_prefix('@') {
                return include_names(names, file, field, base_dir, depth, notes);
            }
            if text.starts_with('/') {
                notes.push(format!(
                    "\"{text}\": regular expressions are not supported; PgBouncer compares it as a plain name"
                ));
            }
            names.names.insert(text.to_string());
        }
    }
    Ok(())
}

/// `@file`: the names in `file`, separated by white space or commas.
fn include_names(
    names: &mut HbaNames,
    file: &str,
    field: Field,
    base_dir: Option<&Path>,
    depth: usize,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    if file.is_empty() {
        return Err("@ without a file name".to_string());
    }
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(format!(
            "@{file}: @file includes nest more than {MAX_INCLUDE_DEPTH} deep"
        ));
    }
    let path = match base_dir {
        Some(dir) if Path::new(file).is_relative() => dir.join(file),
        _ => PathBuf::from(file),
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("could not read @{file} ({}): {e}", path.display()))?;
    let inner_dir = path.parent();
    for (line, record) in records(&text) {
        let at = |message: String| format!("{} line {line}: {message}", path.display());
        for token in tokenize(&record).map_err(at)? {
            if let Token::Word { text, quoted } = token {
                add_name(names, &text, quoted, field, inner_dir, depth + 1, notes).map_err(at)?;
            }
        }
    }
    Ok(())
}

fn parse_address(tokens: &mut Tokens, notes: &mut Vec<String>) -> Result<HbaAddress, String> {
    let text = match tokens.next() {
        None => return Err("missing address field".to_string()),
        Some(Token::Word {
            text,
            quoted: false,
        }) => text,
        Some(other) => {
            return Err(format!(
                "expected a client address, found {}",
                other.shown()
            ))
        }
    };
    match text.as_str() {
        "all" => return Ok(HbaAddress::All),
        "samehost" | "samenet" => {
            return Err(format!(
                "{text} is not supported; write the addresses as CIDR ranges"
            ))
        }
        _ => {}
    }
    let (addr, mask) = match text.split_once('/') {
        Some((addr, prefix)) => {
            let addr = parse_ip(addr, &text)?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = Some(prefix)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|&p| p <= max)
                .ok_or_else(|| {
                    format!("invalid prefix length in \"{text}\"; expected 0 to {max}")
                })?;
            (addr, prefix_mask(addr, prefix))
        }
        None => {
            let addr = parse_ip(&text, &text)?;
            let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
            let mask = match tokens.next() {
                Some(Token::Word {
                    text: mask,
                    quoted: false,
                }) => mask
                    .parse::<IpAddr>()
                    .ok()
                    .filter(|m| m.is_ipv4() == addr.is_ipv4())
                    .ok_or_else(|| {
                        format!(
                            "\"{mask}\" is not an {family} netmask for {text}; write {text}/{} or add a netmask field",
                            if addr.is_ipv4() { 32 } else { 128 }
                        )
                    })?,
                _ => {
                    return Err(format!(
                        "{text} needs a prefix length or a netmask field"
                    ))
                }
            };
            (addr, mask)
        }
    };
    if bits(addr) & !bits(mask) != 0 {
        notes.push(format!(
            "address {addr} has bits outside its mask {mask}; PgBouncer never matches such a rule"
        ));
    }
    Ok(HbaAddress::Net { addr, mask })
}

fn parse_ip(text: &str, whole: &str) -> Result<IpAddr, String> {
    text.parse::<IpAddr>().map_err(|_| {
        let host_like = text.starts_with('.')
            || (!text.contains(':') && text.bytes().any(|b| b.is_ascii_alphabetic()));
        if host_like {
            format!("host names and domains are not supported (\"{whole}\"); write an IP address or a CIDR range")
        } else {
            format!("invalid IP address \"{whole}\"")
        }
    })
}

fn parse_method(tokens: &mut Tokens) -> Result<HbaMethod, String> {
    match tokens.next() {
        None => Err("missing authentication method".to_string()),
        Some(Token::Word {
            text,
            quoted: false,
        }) => HbaMethod::from_keyword(&text).ok_or_else(|| {
            format!(
                "authentication method \"{text}\" is not supported; use trust, reject, md5, password, scram-sha-256, cert or peer"
            )
        }),
        Some(other) => Err(format!(
            "expected an authentication method, found {}",
            other.shown()
        )),
    }
}

/// The options after the method: at most one, `map=NAME`.
fn parse_options(
    tokens: &mut Tokens,
    method: HbaMethod,
    context: &Context<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let mut map = None;
    while let Some(token) = tokens.next() {
        let Some(text) = token.bare() else {
            return Err(format!(
                "unexpected {} after the authentication method",
                token.shown()
            ));
        };
        let Some(("map", name)) = text.split_once('=') else {
            let what = if text.contains('=') {
                "option"
            } else {
                "field"
            };
            return Err(format!(
                "unsupported {what} \"{text}\" after the authentication method; the only option is map=NAME"
            ));
        };
        if map.is_some() {
            return Err("map= given twice".to_string());
        }
        if name.is_empty() {
            return Err("map= needs a map name".to_string());
        }
        match context.ident {
            None => {
                return Err(format!(
                    "map={name}: no ident map file is loaded (set auth_ident_file)"
                ))
            }
            Some(maps) if !maps.contains(name) => {
                return Err(format!(
                    "map={name}: the ident map file defines no map \"{name}\""
                ))
            }
            Some(_) => {}
        }
        if !method.uses_ident_map() {
            notes.push(format!(
                "map= applies to cert and peer only; PgBouncer ignores it with {method}"
            ));
        }
        map = Some(name.to_string());
    }
    Ok(map)
}
