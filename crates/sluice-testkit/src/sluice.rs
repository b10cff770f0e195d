//! A running Sluice binary with a generated pgbouncer.ini and userlist.txt in
//! its own temp directory, its output captured to a log file.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::util::{new_temp_dir, sh_quote, spawn_watchdog, stop_watchdog, tail, url_encode};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables that Sluice may read as config overlays (as the
/// common PgBouncer container images do); removed from the child's
/// environment by [`SluiceProcess::start`] so a developer's shell cannot leak
/// into a test.
/// The container images' variables (Sluice reads them with --env or
/// without a config file): never inherited from the test's environment.
const OVERLAY_PREFIXES: &[&str] = &["PGBOUNCER_", "DATABASES_", "DB_", "POSTGRESQL_"];
const OVERLAY_VARS: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_URLS",
    "DATABASES",
    "AUTH_TYPE",
    "AUTH_FILE",
    "LISTEN_PORT",
    "LISTEN_ADDR",
    "POOL_MODE",
    "MAX_CLIENT_CONN",
    "DEFAULT_POOL_SIZE",
];

/// The Sluice binary of this build: `$SLUICE_BIN` if set, else `sluice` in the
/// target directory of the running test (`target/<profile>/sluice`). Tests of
/// the root package can also use `env!("CARGO_BIN_EXE_sluice")`.
pub fn sluice_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("sluice"))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "sluice-testkit: sluice binary not found (looked at {candidates:?}); \
                 run `cargo build` or set SLUICE_BIN"
            )
        })
}

/// A Sluice (or any PgBouncer-compatible) process under test. Dropping it
/// kills the process; its directory is kept (and its path printed) if the
/// test is panicking, removed otherwise.
#[derive(Debug)]
pub struct SluiceProcess {
    /// The port it listens on (the `listen_port` of the ini).
    pub port: u16,
    /// Temp directory with the ini, userlist.txt and log.
    pub dir: PathBuf,
    /// `{dir}/pgbouncer.ini`.
    pub ini_path: PathBuf,
    /// `{dir}/sluice.log`: stdout and stderr of the process.
    pub log_path: PathBuf,
    child: Child,
    watchdog: Option<Child>,
}

impl SluiceProcess {
    /// Writes `ini` to `{dir}/pgbouncer.ini` after replacing `{port}` with a
    /// free port and `{dir}` with the temp dir, writes `userlist` to
    /// `{dir}/userlist.txt`, starts `binary {dir}/pgbouncer.ini` with output
    /// to the log, and waits up to 20 s until 127.0.0.1:port accepts TCP.
    /// Panics with the log tail if the process exits first or time runs out.
    pub fn start(binary: &Path, ini: &str, userlist: &str) -> SluiceProcess {
        SluiceProcess::start_with_env(binary, ini, userlist, &[])
    }

    /// Like [`SluiceProcess::start`], with extra environment variables (the
    /// container-image overlays such as `DATABASE_URL` are otherwise removed).
    pub fn start_with_env(
        binary: &Path,
        ini: &str,
        userlist: &str,
        env: &[(&str, &str)],
    ) -> SluiceProcess {
        let dir = new_temp_dir();
        let port = free_port();
        let ini_path = dir.join("pgbouncer.ini");
        let ini_text = substitute(ini, port, &dir);
        let port = listen_port(&ini_text).unwrap_or(port);
        write(&ini_path, &ini_text);
        write(&dir.join("userlist.txt"), userlist);
        SluiceProcess::spawn(binary, Some(ini_path), dir, port, env)
    }

    /// Starts `binary` with no config file, configured by `env` alone (the
    /// container images' variables), expecting it to listen on `port`. Any
    /// `{dir}` in a value is replaced with the process's temp dir.
    pub fn start_env_only(binary: &Path, env: &[(&str, &str)], port: u16) -> SluiceProcess {
        let dir = new_temp_dir();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.replace("{dir}", &dir.to_string_lossy())))
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        SluiceProcess::spawn(binary, None, dir, port, &env)
    }

    fn spawn(
        binary: &Path,
        ini_path: Option<PathBuf>,
        dir: PathBuf,
        port: u16,
        env: &[(&str, &str)],
    ) -> SluiceProcess {
        let log_path = dir.join("sluice.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone log handle: {e}"));
        let mut cmd = Command::new(binary);
        if let Some(ini) = &ini_path {
            cmd.arg(ini);
        }
        cmd.current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if OVERLAY_VARS.contains(&key.as_ref())
                || OVERLAY_PREFIXES.iter().any(|p| key.starts_with(p))
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("sluice-testkit: cannot start {}: {e}", binary.display()));
        let watchdog = spawn_watchdog(&format!(
            "kill -KILL {} 2>/dev/null; rm -rf {}",
            child.id(),
            sh_quote(&dir.to_string_lossy())
        ));
        let mut process = SluiceProcess {
            port,
            ini_path: ini_path.unwrap_or_else(|| dir.join("pgbouncer.ini")),
            dir,
            log_path,
            child,
            watchdog,
        };
        process.wait_until_listening(binary);
        process
    }

    fn wait_until_listening(&mut self, binary: &Path) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "sluice-testkit: {} exited with {status} before listening on {addr}\n\
                     --- log tail ({}) ---\n{}",
                    binary.display(),
                    self.log_path.display(),
                    tail(&self.log_path, 40)
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "sluice-testkit: {} not listening on {addr} after {:?}\n\
                     --- log tail ({}) ---\n{}",
                    binary.display(),
                    STARTUP_TIMEOUT,
                    self.log_path.display(),
                    tail(&self.log_path, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Rewrites the ini (same substitutions, same port); follow with
    /// `signal(libc::SIGHUP)` or an admin `RELOAD` to apply it.
    pub fn rewrite_ini(&self, ini: &str) {
        write(&self.ini_path, &substitute(ini, self.port, &self.dir));
    }

    /// Everything the process wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` (e.g. `libc::SIGHUP`, `libc::SIGINT`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// `postgresql://user:password@127.0.0.1:port/db?sslmode=disable`.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        let auth = if password.is_empty() {
            url_encode(user)
        } else {
            format!("{}:{}", url_encode(user), url_encode(password))
        };
        format!(
            "postgresql://{auth}@127.0.0.1:{}/{}?sslmode=disable",
            self.port,
            url_encode(db)
        )
    }

    /// Waits up to `timeout` for the process to exit; None if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => return None,
            }
        }
    }
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        stop_watchdog(self.watchdog.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "sluice-testkit: kept Sluice dir {} (log: {})",
                self.dir.display(),
                self.log_path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn substitute(ini: &str, port: u16, dir: &Path) -> String {
    ini.replace("{port}", &port.to_string())
        .replace("{dir}", &dir.to_string_lossy())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|e| panic!("sluice-testkit: cannot write {}: {e}", path.display()));
}

/// The `listen_port` value of the ini, if it sets one.
fn listen_port(ini: &str) -> Option<u16> {
    ini.lines().rev().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("listen_port") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_fills_port_and_dir() {
        let text = substitute(
            "listen_port = {port}\nauth_file = {dir}/userlist.txt\n",
            7000,
            Path::new("/tmp/x"),
        );
        assert_eq!(
            text,
            "listen_port = 7000\nauth_file = /tmp/x/userlist.txt\n"
        );
        assert_eq!(listen_port(&text), Some(7000));
    }

    #[test]
    fn listen_port_is_none_when_absent() {
        assert_eq!(listen_port("[pgbouncer]\nlisten_addr = 127.0.0.1\n"), None);
    }
}
