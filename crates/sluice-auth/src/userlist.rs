//! Reads PgBouncer's auth_file (userlist.txt) and classifies stored secrets: plaintext, MD5, or SCRAM-SHA-256 verifier.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::md5::is_md5_secret;
use crate::scram::{self, Key};

/// A user's stored secret, classified the way PostgreSQL and PgBouncer do it.
///
/// `Debug` hides passwords and keys so a secret can't leak into a log.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A plaintext password.
    Plain(String),
    /// An MD5 secret, the full `"md5" + 32 lowercase hex digits`.
    Md5(String),
    /// A SCRAM-SHA-256 verifier.
    Scram(ScramSecret),
}

/// Error of [`Secret::parse`]: the text starts like a SCRAM verifier but isn't one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SCRAM-SHA-256 secret")]
pub struct InvalidScramSecret;

const SCRAM_PREFIX: &str = "SCRAM-SHA-256$";

impl Secret {
    /// Classifies a stored password string (from an auth_file, or `rolpassword`
    /// from auth_query): `md5` + 32 lowercase hex is MD5 (PostgreSQL's rule, so
    /// uppercase hex is a plaintext password), `SCRAM-SHA-256$...` is a SCRAM
    /// verifier, anything else is plaintext. A text that starts with
    /// `SCRAM-SHA-256$` but does not parse is an error rather than a plaintext
    /// password (PgBouncer would silently take it as plaintext).
    pub fn parse(stored: &str) -> Result<Secret, InvalidScramSecret> {
        if is_md5_secret(stored) {
            Ok(Secret::Md5(stored.to_owned()))
        } else if stored.starts_with(SCRAM_PREFIX) {
            ScramSecret::parse(stored)
                .map(Secret::Scram)
                .ok_or(InvalidScramSecret)
        } else {
            Ok(Secret::Plain(stored.to_owned()))
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(<redacted>)"),
            Secret::Md5(_) => f.write_str("Md5(<redacted>)"),
            Secret::Scram(s) => f.debug_tuple("Scram").field(s).finish(),
        }
    }
}

/// A parsed SCRAM-SHA-256 verifier, as stored in `pg_authid.rolpassword`.
///
/// `Display` writes it back in PostgreSQL's text form; `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramSecret {
    /// Parses `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`.
    /// Iterations must be a positive decimal; both keys must decode to 32 bytes.
    pub fn parse(s: &str) -> Option<ScramSecret> {
        let rest = s.strip_prefix(SCRAM_PREFIX)?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iter_salt.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let iterations: u32 = iterations.parse().ok().filter(|&i| i > 0)?;
        let salt = scram::b64_decode(salt.as_bytes())?;
        let stored_key = scram::decode_key(stored_key.as_bytes(), "").ok()?;
        let server_key = scram::decode_key(server_key.as_bytes(), "").ok()?;
        Some(ScramSecret {
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// Derives the verifier PostgreSQL would store for `password` with this salt
    /// and iteration count (the password is SASLprep'd first, falling back to
    /// the raw text if that fails, as PostgreSQL does). An iteration count of 0
    /// is taken as 1.
    pub fn from_password(password: &str, salt: &[u8], iterations: u32) -> ScramSecret {
        let iterations = iterations.max(1);
        let prepped = scram::saslprep_password(password);
        let salted = scram::salted_password(&prepped, salt, iterations);
        let client_key = scram::client_key(&salted);
        ScramSecret {
            iterations,
            salt: salt.to_vec(),
            stored_key: scram::sha256(&client_key),
            server_key: scram::server_key(&salted),
        }
    }

    /// Compares the StoredKey in constant time.
    pub(crate) fn stored_key_matches(&self, stored_key: &Key) -> bool {
        scram::ct_eq(&self.stored_key, stored_key)
    }
}

impl fmt::Display for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCRAM_PREFIX}{}:{}${}:{}",
            self.iterations,
            scram::b64_encode(&self.salt),
            scram::b64_encode(&self.stored_key),
            scram::b64_encode(&self.server_key)
        )
    }
}

impl fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSecret")
            .field("iterations", &self.iterations)
            .field("salt", &scram::b64_encode(&self.salt))
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

/// User name → secret, as read from an auth_file.
pub type Userlist = HashMap<String, Secret>;

/// Why an auth_file could not be read. Line numbers start at 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserlistError {
    #[error("cannot read auth file {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("auth file line {line}: not valid UTF-8")]
    NotUtf8 { line: usize },
    #[error("auth file line {line}: expected a double-quoted user name")]
    ExpectedUser { line: usize },
    #[error("auth file line {line}: unterminated quoted field")]
    Unterminated { line: usize },
    #[error("auth file line {line}: expected a double-quoted secret after the user name")]
    ExpectedSecret { line: usize },
    #[error("auth file line {line}: malformed SCRAM-SHA-256 secret")]
    BadScramSecret { line: usize },
}

/// Parses auth_file text.
///
/// Each line is `"user" "secret"`; `""` inside a quoted field stands for one
/// `"`. Empty lines and lines whose first non-blank character is `;` are
/// skipped. As in PgBouncer, anything between the two fields and after the
/// second one is ignored, and a later line for the same user wins. Unlike
/// PgBouncer, which stops loading at a broken line, the whole file is refused.
pub fn parse_userlist(text: &str) -> Result<Userlist, UserlistError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut users = Userlist::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let rest = raw.trim_start();
        if rest.is_empty() || rest.starts_with(';') {
            continue;
        }
        let Some(rest) = rest.strip_prefix('"') else {
            return Err(UserlistError::ExpectedUser { line });
        };
        let (user, rest) = quoted_field(rest).ok_or(UserlistError::Unterminated { line })?;
        let Some(start) = rest.find('"') else {
            return Err(UserlistError::ExpectedSecret { line });
        };
        let (secret, _ignored) =
            quoted_field(&rest[start + 1..]).ok_or(UserlistError::Unterminated { line })?;
        let secret = Secret::parse(&secret).map_err(|_| UserlistError::BadScramSecret { line })?;
        users.insert(user, secret);
    }
    Ok(users)
}

/// Reads and parses an auth_file.
pub fn load_userlist(path: &Path) -> Result<Userlist, UserlistError> {
    let bytes = std::fs::read(path).map_err(|source| UserlistError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| UserlistError::NotUtf8 {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    })?;
    parse_userlist(text)
}

/// Reads a quoted field whose opening quote is already consumed. Returns the
/// unescaped content and the text after the closing quote, or `None` if the
/// line ends first.
fn quoted_field(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            if matches!(chars.peek(), Some((_, '"'))) {
                chars.next();
                out.push('"');
            } else {
                return Some((out, &s[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_vectors::PG_X_PW;

    #[test]
    fn parses_all_kinds_comments_and_escapes() {
        let text = format!(
            "; a comment\n\
             \n\
             \x20  ; indented comment\n\
             \"alice\" \"plain pw\"\n\
             \"bob\"\t\"md5b52328d7451bfeace80c4b8c338106f9\" trailing junk\n\
             \"x\" \"{PG_X_PW}\"\r\n\
             \"quo\"\"te\" \"pa\"\"ss\"\"\"\n\
             \"empty\" \"\"\n\
             \"upper\" \"md5B52328D7451BFEACE80C4B8C338106F9\"\n\
             \"alice\" \"second wins\"\n"
        );
        let users = parse_userlist(&text).expect("valid userlist");
        assert_eq!(users.len(), 6);
        assert_eq!(users["alice"], Secret::Plain("second wins".into()));
        assert_eq!(
            users["bob"],
            Secret::Md5("md5b52328d7451bfeace80c4b8c338106f9".into())
        );
        let Secret::Scram(s) = &users["x"] else {
            panic!("expected SCRAM secret, got {:?}", users["x"]);
        };
        assert_eq!(s.iterations, 4096);
        assert_eq!(s.to_string(), PG_X_PW);
        assert_eq!(users["quo\"te"], Secret::Plain("pa\"ss\"".into()));
        assert_eq!(users["empty"], Secret::Plain(String::new()));
        // Uppercase hex is not an MD5 secret for PostgreSQL.
        assert!(matches!(users["upper"], Secret::Plain(_)));
    }

    #[test]
    fn pgbouncer_leniency_between_fields_and_bom() {
        let users = parse_userlist("\u{feff}\"u\"=\"p\"").expect("valid");
        assert_eq!(users["u"], Secret::Plain("p".into()));
    }

    #[test]
    fn bad_lines_name_their_number() {
        type Check = fn(&UserlistError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("\"a\" \"b\"\nuser pass\n", |e| {
                matches!(e, UserlistError::ExpectedUser { line: 2 })
            }),
            ("\n\n\"a\" \"b\n", |e| {
                matches!(e, UserlistError::Unterminated { line: 3 })
            }),
            ("\"a\n\"b\"\n", |e| {
                matches!(e, UserlistError::Unterminated { line: 1 })
            }),
            ("\"a\" \"b\"\n\"c\"\n", |e| {
                matches!(e, UserlistError::ExpectedSecret { line: 2 })
            }),
            ("# hash is no comment\n", |e| {
                matches!(e, UserlistError::ExpectedUser { line: 1 })
            }),
            ("\"a\" \"SCRAM-SHA-256$4096:abc$def:ghi\"\n", |e| {
                matches!(e, UserlistError::BadScramSecret { line: 1 })
            }),
        ];
        for (text, check) in cases {
            let err = parse_userlist(text).expect_err(text);
            assert!(check(&err), "{text:?} gave {err:?}");
            assert!(err.to_string().contains("line"), "{err}");
        }
    }

    #[test]
    fn scram_secret_parse_rejects_malformed() {
        assert!(ScramSecret::parse(PG_X_PW).is_some());
        let bad = [
            "SCRAM-SHA-256$0:Ch5sDBO7QQJzDQKbU9wQlw==$gtdlXa7XFcpa3EP7QDSuxHixwFC6AVMANY9dTIJhEvY=:i/wEnwpuBj8+OdxQ5DQi9paFaScAUUu9md0C/aGFxs4=",
            "SCRAM-SHA-256$+4096:Ch5sDBO7QQJzDQKbU9wQlw==$gtdlXa7XFcpa3EP7QDSuxHixwFC6AVMANY9dTIJhEvY=:i/wEnwpuBj8+OdxQ5DQi9paFaScAUUu9md0C/aGFxs4=",
            "SCRAM-SHA-256$4096:Ch5sDBO7QQJzDQKbU9wQlw==$gtdlXa7XFcpa3EP7QDSuxHixwFC6AVMANY9dTIJhEvY=",
            "SCRAM-SHA-256$4096:Ch5sDBO7QQJzDQKbU9wQlw==$gtdlXa7XFcpa3EP7QDSuxHixwFC6AVMANY9dTIJhEvY=:AAAA",
            "SCRAM-SHA-256$4096:!!!$gtdlXa7XFcpa3EP7QDSuxHixwFC6AVMANY9dTIJhEvY=:i/wEnwpuBj8+OdxQ5DQi9paFaScAUUu9md0C/aGFxs4=",
            "SCRAM-SHA-1$4096:Ch5sDBO7QQJzDQKbU9wQlw==$gtdlXa7XFcpa3EP7QDSuxHixwFC6AVMANY9dTIJhEvY=:i/wEnwpuBj8+OdxQ5DQi9paFaScAUUu9md0C/aGFxs4=",
            "",
        ];
        for b in bad {
            assert!(ScramSecret::parse(b).is_none(), "{b}");
        }
    }

    #[test]
    fn from_password_reproduces_postgres_verifier() {
        let pg = ScramSecret::parse(PG_X_PW).expect("PostgreSQL verifier parses");
        let ours = ScramSecret::from_password("pw", &pg.salt, pg.iterations);
        assert_eq!(ours, pg);
    }

    #[test]
    fn debug_redacts() {
        let s = format!(
            "{:?} {:?} {:?}",
            Secret::Plain("hunter2".into()),
            Secret::Md5("md5b52328d7451bfeace80c4b8c338106f9".into()),
            Secret::parse(PG_X_PW)
        );
        assert!(!s.contains("hunter2"));
        assert!(!s.contains("b52328"));
        assert!(!s.contains("gtdlXa7"));
        assert!(s.contains("Ch5sDBO7QQJzDQKbU9wQlw=="));
    }

    #[test]
    fn load_reports_io_and_utf8_errors() {
        let dir = std::env::temp_dir().join(format!("sluice-auth-ul-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("missing.txt");
        assert!(matches!(
            load_userlist(&missing),
            Err(UserlistError::Io { .. })
        ));
        let bad = dir.join("latin1.txt");
        std::fs::write(&bad, b"\"a\" \"b\"\n\"caf\xe9\" \"x\"\n").expect("write");
        assert!(matches!(
            load_userlist(&bad),
            Err(UserlistError::NotUtf8 { line: 2 })
        ));
        let good = dir.join("good.txt");
        std::fs::write(&good, "\"a\" \"b\"\n").expect("write");
        let users = load_userlist(&good).expect("loads");
        assert_eq!(users["a"], Secret::Plain("b".into()));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
