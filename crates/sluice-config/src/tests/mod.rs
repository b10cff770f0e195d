//! Unit tests for the pgbouncer.ini reader, one file per part, plus small
//! helpers: parsing text under a made-up path, and throwaway directories for
//! `%include` tests.

mod connstr;
mod databases;
mod general;
mod includes;
mod ini;
mod users;
mod values;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{parse_str, Config, ConfigError, Warning};

/// Parses `text` as `/etc/sluice/test.ini`, expecting success.
pub(crate) fn parse_ok(text: &str) -> (Config, Vec<Warning>) {
    match parse_str(text, Path::new("/etc/sluice/test.ini")) {
        Ok(parsed) => parsed,
        Err(e) => panic!("expected the config to parse, got: {e}"),
    }
}

/// Parses `text` as `/etc/sluice/test.ini`, expecting an error.
pub(crate) fn parse_err(text: &str) -> ConfigError {
    match parse_str(text, Path::new("/etc/sluice/test.ini")) {
        Ok((config, _)) => panic!("expected an error, got: {config:?}"),
        Err(e) => e,
    }
}

/// The warnings' messages, for `contains` checks.
pub(crate) fn messages(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(|w| w.message.clone()).collect()
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sluice-config-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to `name` (which may contain subdirectories).
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let file = self.path.join(name);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).expect("create dir");
        }
        std::fs::write(&file, text).expect("write file");
        file
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
