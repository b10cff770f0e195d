//! The pgbouncer.ini line reader: comments, `[section]` headers,
//! `key = value` lines and `%include` directives, flattened into one stream of
//! events that remember the file and line each came from.
//!
//! Follows libusual's `cfparser.c` (what PgBouncer uses):
//! - leading whitespace is skipped; a line starting with `;` or `#` is a
//!   comment; `;`/`#` later in a line are ordinary characters;
//! - a value runs from after `=` to the end of the line, trimmed, and quotes
//!   in it are kept as written;
//! - a key may be quoted: `"Foo Bar"` (SQL identifier quoting, `""` is one
//!   quote) or `'Foo Bar'`;
//! - `%include file` reads another file in place; the current section carries
//!   into and out of it; at most 10 levels deep.
//!
//! Differences from PgBouncer, on purpose: a relative `%include` path is taken
//! relative to the directory of the file that contains the directive (PgBouncer
//! uses the process's working directory); an include loop is reported as such
//! instead of as "nesting too deep"; unquoted keys may contain any character
//! other than whitespace and `=`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// How many `%include`s deep a file may be read (as libusual's `MAX_INCLUDE`).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub file: PathBuf,
    pub line: usize,
}

/// One meaningful line of the flattened configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IniEvent {
    /// `[name]`, with the name trimmed but its case kept.
    Section { name: String, at: Location },
    /// `key = value`, with the key unquoted and the value trimmed.
    Entry {
        key: String,
        value: String,
        at: Location,
    },
}

/// Reads `text` (the contents of `origin`) and every file it includes.
pub(crate) fn read_events(text: &str, origin: &Path) -> Result<Vec<IniEvent>, ConfigError> {
    let mut reader = Reader {
        events: Vec::new(),
        open_files: vec![identity(origin)],
    };
    reader.read_text(text, origin, 0)?;
    Ok(reader.events)
}

struct Reader {
    events: Vec<IniEvent>,
    /// Canonical paths of the files being read, outermost first.
    open_files: Vec<PathBuf>,
}

impl Reader {
    fn read_text(&mut self, text: &str, file: &Path, depth: usize) -> Result<(), ConfigError> {
        // A byte-order mark (Windows editors write one) is not part of line 1.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() {
                continue;
            }
            let at = || Location {
                file: file.to_path_buf(),
                line,
            };
            let syntax = |message: String| ConfigError::Syntax {
                file: file.to_path_buf(),
                line,
                message,
            };

            if let Some(name) = include_argument(content) {
                if name.is_empty() {
                    return Err(syntax("%include needs a file name".to_string()));
                }
                self.include(name, file, line, depth)?;
                continue;
            }
            if content.starts_with(';') || content.starts_with('#') {
                continue;
            }
            if let Some(after_bracket) = content.strip_prefix('[') {
                let name = parse_section_header(after_bracket).map_err(syntax)?;
                self.events.push(IniEvent::Section { name, at: at() });
                continue;
            }
            let (key, value) = parse_key_value(content).map_err(syntax)?;
            self.events.push(IniEvent::Entry {
                key,
                value,
                at: at(),
            });
        }
        Ok(())
    }

    fn include(
        &mut self,
        name: &str,
        file: &Path,
        line: usize,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let include_error = |message: String| ConfigError::Include {
            file: file.to_path_buf(),
            line,
            message,
        };
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(include_error(format!(
                "%include {name}: include nesting too deep (at most {MAX_INCLUDE_DEPTH} levels)"
            )));
        }
        let target = resolve_include(file, name);
        let id = identity(&target);
        if self.open_files.contains(&id) {
            return Err(include_error(format!(
                "%include {name}: include loop, {} is already being read",
                target.display()
            )));
        }
        let text = fs::read_to_string(&target).map_err(|source| ConfigError::IncludeIo {
            file: file.to_path_buf(),
            line,
            path: target.clone(),
            source,
        })?;
        self.open_files.push(id);
        let result = self.read_text(&text, &target, depth + 1);
        self.open_files.pop();
        result
    }
}

/// `Some(file name)` when the line is a `%include` directive (the name may be
/// empty, which is an error for the caller to report).
fn include_argument(content: &str) -> Option<&str> {
    let rest = content.strip_prefix("%include")?;
    if rest.is_empty() {
        return Some("");
    }
    if rest.starts_with([' ', '\t']) {
        return Some(rest.trim());
    }
    None
}

/// A relative include is relative to the including file's directory.
fn resolve_include(including: &Path, name: &str) -> PathBuf {
    let path = Path::new(name);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match including.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// The name used to recognise a file already being read.
fn identity(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The part of a `[name]` line after the `[`.
fn parse_section_header(after_bracket: &str) -> Result<String, String> {
    let Some(close) = after_bracket.find(']') else {
        return Err("section header without closing ']'".to_string());
    };
    let name = after_bracket[..close].trim();
    let trailing = after_bracket[close + 1..].trim();
    if !trailing.is_empty() && !trailing.starts_with(';') && !trailing.starts_with('#') {
        return Err(format!("unexpected text after [{name}]: \"{trailing}\""));
    }
    Ok(name.to_string())
}

/// Splits a trimmed, non-comment line into its key and value.
pub(crate) fn parse_key_value(content: &str) -> Result<(String, String), String> {
    let (key, rest) = match content.chars().next() {
        Some(quote @ ('"' | '\'')) => read_quoted_key(&content[1..], quote)?,
        _ => {
            let end = content
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(content.len());
            (content[..end].to_string(), &content[end..])
        }
    };
    if key.is_empty() {
        return Err("missing key before '='".to_string());
    }
    let rest = rest.trim_start();
    let Some(value) = rest.strip_prefix('=') else {
        return Err(format!(
            "expected \"key = value\", found no '=' after \"{key}\""
        ));
    };
    Ok((key, value.trim().to_string()))
}

/// Reads a quoted key after its opening quote; returns the key and what
/// follows the closing quote. In `"…"`, `""` stands for one `"`.
fn read_quoted_key(s: &str, quote: char) -> Result<(String, &str), String> {
    let mut key = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != quote {
            key.push(c);
            continue;
        }
        if quote == '"' && matches!(chars.peek(), Some((_, '"'))) {
            chars.next();
            key.push('"');
            continue;
        }
        return Ok((key, &s[i + c.len_utf8()..]));
    }
    Err(format!("quoted name without closing {quote}"))
}
