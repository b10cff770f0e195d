//! Shared plumbing: temp directories, the OS user the server runs as,
//! running commands with readable failures, log tails, URL encoding and the
//! watchdog that cleans up after a test process that died without unwinding.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The OS user that runs initdb/pg_ctl/postgres: `postgres` when we are root,
/// `None` (the current user) otherwise.
#[derive(Clone, Debug)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

pub(crate) fn server_user() -> Option<RunAs> {
    static USER: OnceLock<Option<RunAs>> = OnceLock::new();
    USER.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        Some(lookup_user("postgres").unwrap_or_else(|| {
            panic!(
                "sluice-testkit: running as root, but there is no `postgres` OS user to run \
                 the PostgreSQL server as (installing the `postgresql` package creates it)"
            )
        }))
    })
    .clone()
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter for getpwnam_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(RunAs {
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// Makes `cmd` run as `user` (if any).
pub(crate) fn run_as(cmd: &mut Command, user: Option<&RunAs>) {
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
}

/// Hands `path` to `user` (if any).
pub(crate) fn chown_to(path: &Path, user: Option<&RunAs>) {
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("sluice-testkit: cannot chown {}: {e}", path.display()));
    }
}

/// A fresh, empty directory `<tmp>/sluice-testkit-<pid>-<n>`.
///
/// `<tmp>` is `std::env::temp_dir()`, or `/tmp` when the server must run as
/// another user who could not reach the former.
pub(crate) fn new_temp_dir() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut base = std::env::temp_dir();
    if server_user().is_some() && !reachable_by_others(&base) {
        base = PathBuf::from("/tmp");
    }
    let dir = base.join(format!("sluice-testkit-{}-{n}", std::process::id()));
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("sluice-testkit: cannot create {}: {e}", dir.display()));
    dir
}

/// Whether every ancestor of `dir` can be traversed by "others".
fn reachable_by_others(dir: &Path) -> bool {
    dir.ancestors().all(|p| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// Runs `cmd` to completion; Err carries the command line, exit status,
/// stdout and stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{shown} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The last `lines` lines of the file at `path` (or a note that it is unreadable).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the
/// user, password and database parts of a `postgresql://` URL.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `sh` process that waits for this test process to go away (its stdin, a
/// pipe whose only writer we hold, reaches EOF) and then runs `cleanup`.
///
/// It lives in its own process group so a Ctrl-C at the terminal does not take
/// it down together with the test. Kill it (and reap it) when cleaning up
/// normally.
pub(crate) fn spawn_watchdog(cleanup: &str) -> Option<Child> {
    let script = format!("read _ignored; {cleanup}");
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}

/// Kills and reaps a watchdog (so it does not run its cleanup).
pub(crate) fn stop_watchdog(watchdog: Option<Child>) {
    if let Some(mut child) = watchdog {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Single-quotes `s` for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Single-quotes `s` as an SQL string literal.
pub(crate) fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Double-quotes `s` as an SQL identifier.
pub(crate) fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(url_encode("sluice_user"), "sluice_user");
        assert_eq!(url_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(sql_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn temp_dirs_are_distinct_and_empty() {
        let a = new_temp_dir();
        let b = new_temp_dir();
        assert_ne!(a, b);
        assert_eq!(std::fs::read_dir(&a).unwrap().count(), 0);
        std::fs::remove_dir_all(a).unwrap();
        std::fs::remove_dir_all(b).unwrap();
    }
}
