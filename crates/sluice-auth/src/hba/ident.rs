//! The ident map file (`auth_ident_file`): user name maps that `cert` and
//! `peer` rules name with `map=`. PgBouncer reads a subset of PostgreSQL's
//! pg_ident.conf: lines `map-name system-user database-user`, where the
//! database user may be `all`; no regular expressions, no `+group`, no
//! include directives.

use std::collections::BTreeMap;
use std::path::Path;

use super::lexer::{records, tokenize, Token};
use super::{read_file, HbaError};

/// The database user side of a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentUser {
    /// `all`: the system user may log in as any database user.
    All,
    /// Exactly this database user.
    Name(String),
}

/// One line of the ident map file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentMapping {
    /// 1-based line number in the ident map file.
    pub line: usize,
    /// The client's name as the system knows it: the certificate's name for
    /// `cert`, the operating-system user for `peer`. Compared exactly.
    pub system_user: String,
    pub database_user: IdentUser,
}

impl IdentMapping {
    fn allows(&self, database_user: &str) -> bool {
        match &self.database_user {
            IdentUser::All => true,
            IdentUser::Name(name) => name == database_user,
        }
    }
}

/// The maps of an ident map file, by map name. A map name on several lines
/// collects all their mappings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentMaps {
    maps: BTreeMap<String, Vec<IdentMapping>>,
}

impl IdentMaps {
    /// Parses ident map text; the first malformed line is an error that
    /// names it.
    pub fn parse(text: &str) -> Result<IdentMaps, HbaError> {
        Self::parse_with(text, false, "ident map file").map(|(maps, _)| maps)
    }

    /// Reads and parses an ident map file; see [`IdentMaps::parse`].
    pub fn load(path: &Path) -> Result<IdentMaps, HbaError> {
        Self::load_with(path, false).map(|(maps, _)| maps)
    }

    /// Reads and parses an ident map file. With `lenient`, a malformed line is
    /// skipped and returned as a warning, as PgBouncer does; otherwise it is
    /// the error. `Err` also when the file cannot be read.
    pub fn load_with(path: &Path, lenient: bool) -> Result<(IdentMaps, Vec<HbaError>), HbaError> {
        let text = read_file(path)?;
        Self::parse_with(&text, lenient, &path.display().to_string())
    }

    fn parse_with(
        text: &str,
        lenient: bool,
        file: &str,
    ) -> Result<(IdentMaps, Vec<HbaError>), HbaError> {
        let mut maps = IdentMaps::default();
        let mut warnings = Vec::new();
        for (line, record) in records(text) {
            let parsed = tokenize(&record).and_then(|tokens| parse_line(line, tokens));
            let (name, mapping, notes) = match parsed {
                Ok(Some(parsed)) => parsed,
                Ok(None) => continue,
                Err(message) => {
                    let error = HbaError::at(file, line, message);
                    if lenient {
                        warnings.push(error);
                        continue;
                    }
                    return Err(error);
                }
            };
            if let Some(note) = notes.into_iter().next() {
                let error = HbaError::at(file, line, note);
                if !lenient {
                    return Err(error);
                }
                warnings.push(error);
            }
            maps.maps.entry(name).or_default().push(mapping);
        }
        Ok((maps, warnings))
    }

    /// Whether a map of this name is defined.
    pub fn contains(&self, map: &str) -> bool {
        self.maps.contains_key(map)
    }

    /// The mappings of `map`, in file order; empty when it is not defined.
    pub fn mappings(&self, map: &str) -> &[IdentMapping] {
        self.maps.get(map).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether `map` lets a client log in as `database_user`: some line of the
    /// map pairs a system name the client has (`has_system_name`, e.g. "the
    /// certificate contains this name" or "the peer's OS user is this") with
    /// `database_user` or `all`. An undefined map allows nobody.
    pub fn allows(
        &self,
        map: &str,
        database_user: &str,
        has_system_name: impl Fn(&str) -> bool,
    ) -> bool {
        self.mappings(map)
            .iter()
            .any(|m| m.allows(database_user) && has_system_name(&m.system_user))
    }
}

type ParsedLine = (String, IdentMapping, Vec<String>);

/// One record: `Ok(None)` for a blank or comment line; the third element
/// holds notes on what PgBouncer reads differently from PostgreSQL (fatal
/// unless lenient).
fn parse_line(line: usize, tokens: Vec<Token>) -> Result<Option<ParsedLine>, String> {
    if tokens.is_empty() {
        return Ok(None);
    }
    if tokens.contains(&Token::Comma) {
        return Err("ident map lines take no comma-separated lists".to_string());
    }
    let words: Vec<(String, bool)> = tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Word { text, quoted } => Some((text, quoted)),
            Token::Comma => None,
        })
        .collect();
    let first_bare = (!words[0].1).then_some(words[0].0.as_str());
    if matches!(
        first_bare,
        Some("include" | "include_if_exists" | "include_dir")
    ) && words.len() == 2
    {
        return Err(format!(
            "{} directives are not supported in the ident map file",
            words[0].0
        ));
    }
    if words.len() != 3 {
        return Err(format!(
            "expected three fields (map name, system user name, database user name), found {}",
            words.len()
        ));
    }
    let mut notes = Vec::new();
    let (map, _) = &words[0];
    let (system_user, system_quoted) = &words[1];
    if !system_quoted && system_user.starts_with('/') {
        notes.push(format!(
            "system user \"{system_user}\": regular expressions are not supported; PgBouncer compares it as a plain name"
        ));
    }
    let (db_user, db_quoted) = &words[2];
    let database_user = if !db_quoted && db_user == "all" {
        IdentUser::All
    } else {
        if !db_quoted && db_user.starts_with('+') {
            notes.push(format!(
                "database user \"{db_user}\": role membership (+group) is not supported; PgBouncer compares it as a plain name"
            ));
        }
        IdentUser::Name(db_user.clone())
    };
    if map.is_empty() || system_user.is_empty() || db_user.is_empty() {
        return Err("empty name".to_string());
    }
    let mapping = IdentMapping {
        line,
        system_user: system_user.clone(),
        database_user,
    };
    Ok(Some((map.clone(), mapping, notes)))
}
