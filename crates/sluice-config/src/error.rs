//! What can go wrong reading a pgbouncer.ini: fatal `ConfigError`s and
//! non-fatal `Warning`s, both naming the file and line they come from.

use std::fmt;
use std::path::{Path, PathBuf};

/// Something worth telling the operator that does not stop the load
/// (an unknown key, a key Sluice accepts but does not implement yet, …).
///
/// Displays as `file:line: message`; a warning about the file as a whole
/// (line 0) displays as `file: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl Warning {
    pub(crate) fn new(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Warning {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A configuration that cannot be used. Every variant names the file (and,
/// where there is one, the line) and the reason.
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// The main config file could not be read.
    #[error("{}: could not read config file: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A file named by `%include` could not be read.
    #[error("{}:{line}: could not read included file {}: {source}", .file.display(), .path.display())]
    IncludeIo {
        file: PathBuf,
        line: usize,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A line that is not a comment, section header, `%include` or `key = value`.
    #[error("{}:{line}: syntax error: {message}", .file.display())]
    Syntax {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// `%include` nested too deep or including itself.
    #[error("{}:{line}: {message}", .file.display())]
    Include {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// A `[section]` other than pgbouncer, databases, users or peers.
    #[error("{}:{line}: unknown section [{name}] (expected [pgbouncer], [databases], [users] or [peers])", .file.display())]
    UnknownSection {
        file: PathBuf,
        line: usize,
        name: String,
    },

    /// A known `[pgbouncer]` key with a value that does not parse.
    #[error("{}:{line}: invalid value for {key}: \"{value}\" ({reason})", .file.display())]
    InvalidValue {
        file: PathBuf,
        line: usize,
        key: String,
        value: String,
        reason: String,
    },

    /// A `[databases]` entry that cannot be used.
    #[error("{}:{line}: database \"{name}\": {message}", .file.display())]
    Database {
        file: PathBuf,
        line: usize,
        name: String,
        message: String,
    },

    /// A `[users]` entry that cannot be used.
    #[error("{}:{line}: user \"{name}\": {message}", .file.display())]
    User {
        file: PathBuf,
        line: usize,
        name: String,
        message: String,
    },

    /// Environment variables that cannot be used (the container images'
    /// dialects): the message names the variables.
    #[error("environment: {0}")]
    Env(String),
}

impl ConfigError {
    /// The file and line the error points at (`None` for the line when the
    /// main file itself could not be read).
    pub fn location(&self) -> (&Path, Option<usize>) {
        match self {
            ConfigError::Io { path, .. } => (path, None),
            ConfigError::Env(_) => (Path::new("<environment>"), None),
            ConfigError::IncludeIo { file, line, .. }
            | ConfigError::Syntax { file, line, .. }
            | ConfigError::Include { file, line, .. }
            | ConfigError::UnknownSection { file, line, .. }
            | ConfigError::InvalidValue { file, line, .. }
            | ConfigError::Database { file, line, .. }
            | ConfigError::User { file, line, .. } => (file, Some(*line)),
        }
    }
}
