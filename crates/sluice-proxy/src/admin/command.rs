//! Parsing console commands: `SHOW POOLS`, `PAUSE app`, `SET key = value`,
//! `KILL_CLIENT 12` … Words are case-insensitive; a database name may be
//! double-quoted.

/// One parsed console command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(String),
    Pause(Option<String>),
    Resume(Option<String>),
    Reconnect(Option<String>),
    Kill(Option<String>),
    KillClient(String),
    Suspend,
    Reload,
    Shutdown(Option<String>),
    WaitClose(Option<String>),
    Enable(String),
    Disable(String),
    Set {
        key: String,
        value: String,
    },
    /// Nothing but whitespace.
    Empty,
}

/// Why a command could not be parsed; the text is what the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCommand(pub String);

/// Splits into words: runs of non-space characters, or double-quoted
/// names (with `""` for a quote).
fn words(s: &str) -> Result<Vec<String>, BadCommand> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut w = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        w.push('"');
                    }
                    Some('"') => break,
                    Some(c) => w.push(c),
                    None => return Err(BadCommand("unterminated quoted name".into())),
                }
            }
            out.push(w);
            continue;
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' {
                break;
            }
            w.push(c);
            chars.next();
        }
        if w.is_empty() {
            // A lone '='.
            chars.next();
            out.push("=".to_string());
        } else {
            out.push(w);
        }
    }
    Ok(out)
}

pub fn parse(sql: &str) -> Result<Command, BadCommand> {
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.is_empty() {
        return Ok(Command::Empty);
    }
    let w = words(sql)?;
    let verb = w[0].to_ascii_uppercase();
    let args = &w[1..];
    let unknown = || BadCommand(format!("unknown cmd: {sql}"));
    let no_args = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(unknown())
        }
    };
    let opt_db = |f: fn(Option<String>) -> Command| match args {
        [] => Ok(f(None)),
        [db] => Ok(f(Some(db.clone()))),
        _ => Err(unknown()),
    };
    let one_db = |f: fn(String) -> Command| match args {
        [db] => Ok(f(db.clone())),
        _ => Err(unknown()),
    };
    match verb.as_str() {
        "SHOW" => match args {
            [what] => Ok(Command::Show(what.to_ascii_uppercase())),
            _ => Err(unknown()),
        },
        "PAUSE" => opt_db(Command::Pause),
        "RESUME" => opt_db(Command::Resume),
        "RECONNECT" => opt_db(Command::Reconnect),
        "WAIT_CLOSE" => opt_db(Command::WaitClose),
        "KILL" => opt_db(Command::Kill),
        "KILL_CLIENT" => one_db(Command::KillClient),
        "ENABLE" => one_db(Command::Enable),
        "DISABLE" => one_db(Command::Disable),
        "SUSPEND" => no_args(Command::Suspend),
        "RELOAD" => no_args(Command::Reload),
        "SHUTDOWN" => match args {
            [] => Ok(Command::Shutdown(None)),
            [mode] => Ok(Command::Shutdown(Some(mode.to_ascii_uppercase()))),
            _ => Err(unknown()),
        },
        "SET" => match args {
            [key, eq, value] if eq == "=" => Ok(Command::Set {
                key: key.to_ascii_lowercase(),
                value: unquote(value),
            }),
            [key, eq] if eq == "=" => Ok(Command::Set {
                key: key.to_ascii_lowercase(),
                value: String::new(),
            }),
            _ => Err(unknown()),
        },
        _ => Err(unknown()),
    }
}

/// SET values may be 'quoted' ('' for a quote).
fn unquote(v: &str) -> String {
    match v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_case_insensitively_with_optional_database() {
        assert_eq!(parse("show pools;"), Ok(Command::Show("POOLS".into())));
        assert_eq!(parse("PAUSE"), Ok(Command::Pause(None)));
        assert_eq!(parse("pause app"), Ok(Command::Pause(Some("app".into()))));
        assert_eq!(
            parse(r#"RESUME "My ""db""""#),
            Ok(Command::Resume(Some("My \"db\"".into())))
        );
        assert_eq!(
            parse("kill_client 12"),
            Ok(Command::KillClient("12".into()))
        );
        assert_eq!(
            parse("SHUTDOWN wait_for_clients"),
            Ok(Command::Shutdown(Some("WAIT_FOR_CLIENTS".into())))
        );
        assert_eq!(parse("  ;"), Ok(Command::Empty));
    }

    #[test]
    fn set_takes_key_equals_value_with_or_without_spaces_and_quotes() {
        let want = Command::Set {
            key: "default_pool_size".into(),
            value: "7".into(),
        };
        assert_eq!(parse("SET default_pool_size = 7"), Ok(want.clone()));
        assert_eq!(parse("set default_pool_size=7"), Ok(want.clone()));
        assert_eq!(parse("SET default_pool_size = '7'"), Ok(want));
    }

    #[test]
    fn unknown_or_malformed_commands_are_refused() {
        assert!(parse("SELECT 1").is_err());
        assert!(parse("KILL a b").is_err());
        assert!(parse("ENABLE").is_err());
        assert!(parse("SHOW POOLS EXTRA").is_err());
        assert!(parse("SET x 1").is_err());
        assert!(parse("PAUSE \"open").is_err());
    }
}
