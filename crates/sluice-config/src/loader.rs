//! Turns the flattened ini events into a `Config`: tracks the current
//! section, hands each line to its section's parser, and turns their
//! outcomes into `ConfigError`s (fatal) or `Warning`s.

use std::path::Path;

use crate::databases::parse_database;
use crate::error::{ConfigError, Warning};
use crate::general::{self, Applied};
use crate::ini::{IniEvent, Location};
use crate::model::Config;
use crate::users::parse_user;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    General,
    Databases,
    Users,
    Peers,
}

/// Builds the configuration from `events`; `origin` is the main file.
pub(crate) fn build(
    events: Vec<IniEvent>,
    origin: &Path,
) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut config = Config {
        source: origin.to_path_buf(),
        ..Config::default()
    };
    let mut warnings = Vec::new();
    let mut section = Section::None;
    let mut saw_main_section = false;

    for event in events {
        match event {
            IniEvent::Section { name, at } => {
                section = match name.to_ascii_lowercase().as_str() {
                    "pgbouncer" => {
                        saw_main_section = true;
                        Section::General
                    }
                    "databases" => Section::Databases,
                    "users" => Section::Users,
                    "peers" => {
                        warnings.push(warning(
                            &at,
                            "[peers] section is not supported yet; its entries are ignored",
                        ));
                        Section::Peers
                    }
                    _ => {
                        return Err(ConfigError::UnknownSection {
                            file: at.file,
                            line: at.line,
                            name,
                        })
                    }
                };
            }
            IniEvent::Entry { key, value, at } => match section {
                Section::None => {
                    return Err(ConfigError::Syntax {
                        file: at.file,
                        line: at.line,
                        message: format!(
                            "\"{key}\" comes before any section header; put it under [pgbouncer], [databases] or [users]"
                        ),
                    })
                }
                Section::General => {
                    general_entry(&mut config, &mut warnings, key, value, at)?;
                }
                Section::Databases => {
                    let parsed = parse_database(&key, &value).map_err(|message| {
                        ConfigError::Database {
                            file: at.file.clone(),
                            line: at.line,
                            name: key.clone(),
                            message,
                        }
                    })?;
                    for note in parsed.notes {
                        warnings.push(warning(&at, format!("database \"{key}\": {note}")));
                    }
                    config.databases.insert(key, parsed.def);
                }
                Section::Users => {
                    let parsed = parse_user(&key, &value).map_err(|message| ConfigError::User {
                        file: at.file.clone(),
                        line: at.line,
                        name: key.clone(),
                        message,
                    })?;
                    for note in parsed.notes {
                        warnings.push(warning(&at, format!("user \"{key}\": {note}")));
                    }
                    config.users.insert(key, parsed.def);
                }
                Section::Peers => {}
            },
        }
    }

    if !saw_main_section {
        warnings.push(Warning::new(
            origin,
            0,
            "no [pgbouncer] section; using default settings",
        ));
    }
    Ok((config, warnings))
}

fn general_entry(
    config: &mut Config,
    warnings: &mut Vec<Warning>,
    key: String,
    value: String,
    at: Location,
) -> Result<(), ConfigError> {
    match general::apply(&mut config.general, &key, &value) {
        Ok(Applied::Set) => {}
        Ok(Applied::NotYetImplemented) => warnings.push(warning(
            &at,
            format!("{key} is accepted but not implemented yet; its value is ignored"),
        )),
        Ok(Applied::Unknown) => {
            let hint = general::suggest_key(&key)
                .map(|known| format!(" (did you mean {known}?)"))
                .unwrap_or_default();
            warnings.push(warning(
                &at,
                format!("unknown setting \"{key}\" in [pgbouncer]{hint}; ignored"),
            ));
        }
        Err(reason) => {
            return Err(ConfigError::InvalidValue {
                file: at.file,
                line: at.line,
                key,
                value,
                reason,
            })
        }
    }
    Ok(())
}

fn warning(at: &Location, message: impl Into<String>) -> Warning {
    Warning::new(&at.file, at.line, message)
}
