//! Locating the PostgreSQL binaries (initdb, pg_ctl, psql, pgbench) and
//! running the client tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// Looked up once per process: `$SLUICE_PG_BIN` if set, then
/// `pg_config --bindir` (if it holds `initdb`), then the newest
/// `/usr/lib/postgresql/<version>/bin`, then `/usr/local/pgsql/bin` and the
/// `PATH`. Panics with a hint when none is found.
pub fn pg_bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        find_pg_bin_dir().unwrap_or_else(|| {
            panic!(
                "sluice-testkit: PostgreSQL server binaries (initdb) not found. \
                 Install the `postgresql` package (scripts/test does this), or \
                 point SLUICE_PG_BIN at the directory holding initdb."
            )
        })
    })
    .clone()
}

fn has_initdb(dir: &Path) -> bool {
    dir.join("initdb").is_file()
}

fn find_pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_initdb(&dir) {
            return Some(dir);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        if out.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_initdb(&dir) {
                return Some(dir);
            }
        }
    }
    if let Some(dir) = newest_debian_bin_dir() {
        return Some(dir);
    }
    let mut candidates = vec![PathBuf::from("/usr/local/pgsql/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|dir| has_initdb(dir))
}

/// The newest `/usr/lib/postgresql/<major>/bin` that holds `initdb`.
fn newest_debian_bin_dir() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version = version_key(&name)?;
            let bin = entry.path().join("bin");
            has_initdb(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// "15" → [15], "9.6" → [9, 6]; names that are not versions are skipped.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

/// A client tool from [`pg_bin_dir`], or the bare name (looked up on `PATH`)
/// when the server directory lacks it.
fn client_tool(name: &str) -> PathBuf {
    let from_server_dir = find_pg_bin_dir().map(|dir| dir.join(name));
    match from_server_dir {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from(name),
    }
}

/// The `psql` to run: the one next to the server binaries, else `psql` on `PATH`.
pub fn psql_cmd() -> PathBuf {
    static PSQL: OnceLock<PathBuf> = OnceLock::new();
    PSQL.get_or_init(|| client_tool("psql")).clone()
}

/// Runs `psql "<conninfo>" -X -At -v ON_ERROR_STOP=1 -c <sql>` with extra
/// environment `env` (e.g. `[("PGPASSWORD", "pw")]`), waits, and returns its
/// output whatever the exit status: check `status`, `stdout` (rows, `|`
/// between columns) and `stderr` (libpq's and the server's messages).
///
/// `conninfo` is a libpq connection string or URL, e.g.
/// `"host=localhost hostaddr=127.0.0.1 port=6432 user=u dbname=d
/// sslmode=verify-full sslrootcert=/path/ca.crt"`. The caller's PG* and
/// libpq TLS variables (PGPASSWORD, PGSSLMODE, PGSERVICE, PGOPTIONS, …) are
/// not passed on, so only `conninfo` and `env` count; PGCONNECT_TIMEOUT is
/// 10 s unless `env` says otherwise. Panics only if psql cannot be started.
pub fn psql_with(conninfo: &str, sql: &str, env: &[(&str, &str)]) -> Output {
    let psql = psql_cmd();
    let mut cmd = Command::new(&psql);
    cmd.arg(conninfo)
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null());
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("PG") {
            cmd.env_remove(&var);
        }
    }
    cmd.env("PGCONNECT_TIMEOUT", "10")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("sluice-testkit: cannot run {}: {e}", psql.display()))
}

/// The `pgbench` to run: the one next to the server binaries, else on `PATH`.
fn pgbench_cmd() -> PathBuf {
    static PGBENCH: OnceLock<PathBuf> = OnceLock::new();
    PGBENCH.get_or_init(|| client_tool("pgbench")).clone()
}

/// Runs pgbench with `args` and extra environment `env`, waits, and returns
/// its output (whatever the exit status). Panics only if it cannot be started.
pub fn pgbench(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cmd = pgbench_cmd();
    Command::new(&cmd)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("PGOPTIONS")
        .output()
        .unwrap_or_else(|e| panic!("sluice-testkit: cannot run {}: {e}", cmd.display()))
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn version_key_orders_majors_numerically() {
        assert!(version_key("15") > version_key("9.6"));
        assert!(version_key("16") > version_key("15"));
        assert_eq!(version_key("common"), None);
    }
}
