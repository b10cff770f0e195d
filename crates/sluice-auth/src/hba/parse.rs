//! Reading hba records: databases and users (with @file includes),
//! addresses, the method and its options.

use super::*;

pub(super) fn read_file(path: &Path) -> Result<String, HbaError> {
    std::fs::read_to_string(path).map_err(|source| HbaError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// What parsing a record needs besides its tokens.
pub(super) struct Context<'a> {
    pub(super) base_dir: Option<&'a Path>,
    pub(super) ident: Option<&'a IdentMaps>,
}

/// A rule and notes on what PgBouncer reads differently from PostgreSQL
/// (errors unless lenient).
type Parsed = (HbaRule, Vec<String>);

/// One record; `Ok(None)` for a blank or comment-only line.
pub(super) fn parse_record(
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
pub(super) enum Field {
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
pub(super) fn parse_names(
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
pub(super) fn add_name(
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
pub(super) fn include_names(
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

pub(super) fn parse_address(
    tokens: &mut Tokens,
    notes: &mut Vec<String>,
) -> Result<HbaAddress, String> {
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

pub(super) fn parse_ip(text: &str, whole: &str) -> Result<IpAddr, String> {
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

pub(super) fn parse_method(tokens: &mut Tokens) -> Result<HbaMethod, String> {
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
pub(super) fn parse_options(
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
