//! Running pgbench and reading what it reports: the summary on stdout, the
//! aborted clients on stderr, and per-transaction latencies from its
//! transaction log (`-l --log-prefix`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::workload::{User, DATABASE};

/// One pgbench invocation.
pub struct Spec<'a> {
    pub port: u16,
    pub user: User,
    pub clients: u32,
    pub threads: u32,
    pub duration_s: u32,
    /// Workload flags (`-S -M prepared`, `-f …`).
    pub workload_args: &'a [String],
    /// Empty directory for the transaction logs and captured output.
    pub dir: &'a Path,
}

/// A running pgbench; killed (and reaped) when dropped unfinished.
pub struct Running {
    child: Child,
    dir: PathBuf,
}

impl Running {
    /// Exited yet?
    pub fn finished(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for exit and reads stdout and stderr; a pgbench that died
    /// from a signal gets a line saying so at the end of stderr.
    pub fn output(mut self) -> (String, String) {
        let status = self.child.wait();
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let mut stderr = read("stderr.txt");
        if let Ok(status) = status {
            if status.code().is_none() {
                stderr.push_str(&format!("\npgbench ended by {status}\n"));
            }
        }
        (read("stdout.txt"), stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// The pgbench next to the PostgreSQL server binaries, else on PATH.
fn pgbench_path() -> PathBuf {
    let beside = sluice_testkit::pg_bin_dir().join("pgbench");
    if beside.is_file() {
        beside
    } else {
        PathBuf::from("pgbench")
    }
}

/// `pgbench --version`, e.g. "pgbench (PostgreSQL) 15.18 (Debian …)".
pub fn version() -> String {
    Command::new(pgbench_path())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Starts pgbench against 127.0.0.1:`port`, stdout/stderr into files and
/// the per-transaction log under `spec.dir`.
pub fn spawn(spec: &Spec) -> std::io::Result<Running> {
    let stdout = File::create(spec.dir.join("stdout.txt"))?;
    let stderr = File::create(spec.dir.join("stderr.txt"))?;
    let threads = spec.threads.clamp(1, spec.clients.max(1));
    let mut cmd = Command::new(pgbench_path());
    cmd.args(["-h", "127.0.0.1", "-p", &spec.port.to_string()])
        .args(["-U", spec.user.name, "-n"])
        .args(["-c", &spec.clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &spec.duration_s.to_string()])
        .arg("-l")
        .arg(format!("--log-prefix={}", spec.dir.join("txlog").display()))
        .args(spec.workload_args)
        .arg(DATABASE)
        .current_dir(spec.dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("PGPASSWORD", spec.user.password)
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "30");
    let child = cmd.spawn()?;
    Ok(Running {
        child,
        dir: spec.dir.to_owned(),
    })
}

/// What pgbench printed at the end of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// `tps = …` (without initial connection time; with -C, including
    /// reconnection times). None when pgbench printed no summary.
    pub tps: Option<f64>,
    /// `number of transactions actually processed`.
    pub transactions: u64,
    /// `number of failed transactions` (pgbench ≥ 15).
    pub failed: u64,
    /// Clients that pgbench reported as aborted on stderr.
    pub aborted: u64,
    /// The last error line on stderr, when pgbench gave no tps.
    pub error: Option<String>,
}

/// Reads pgbench's stdout summary and stderr messages.
pub fn parse_summary(stdout: &str, stderr: &str) -> Summary {
    let mut summary = Summary::default();
    for line in stdout.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("tps = ") {
            summary.tps = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed:") {
            // "12345" or, with -t, "12345/20000".
            summary.transactions = first_number(rest).map_or(0, |n| n as u64);
        } else if let Some(rest) = line.strip_prefix("number of failed transactions:") {
            summary.failed = first_number(rest).map_or(0, |n| n as u64);
        }
    }
    summary.aborted = stderr.lines().filter(|l| is_client_abort(l)).count() as u64;
    if summary.tps.is_none() {
        summary.error = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
            .or_else(|| Some("pgbench printed no tps".to_owned()));
    }
    summary
}

/// "client 3 script 0 aborted in command 1 query 0: …", "client 7 aborted
/// in command 4 …", "client 0 aborted while establishing connection".
fn is_client_abort(line: &str) -> bool {
    let Some(at) = line.find("client ") else {
        return false;
    };
    let rest = &line[at + "client ".len()..];
    rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains(" aborted")
}

/// The leading decimal number of `text` (after spaces).
fn first_number(text: &str) -> Option<f64> {
    let text = text.trim_start();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// Latencies (µs) of every transaction in the log files under `dir`
/// (`txlog.<pid>` and `txlog.<pid>.<thread>`): the third column, skipping
/// lines whose time is `failed`/`skipped`/… rather than a number.
pub fn read_latencies(dir: &Path) -> Vec<u64> {
    let mut all = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return all;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("txlog.") {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(entry.path()) {
            all.extend(parse_log_latencies(&text));
        }
    }
    all
}

/// The latency column of a pgbench transaction log:
/// `client_id transaction_no time script_no time_epoch time_us [...]`.
pub fn parse_log_latencies(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(2)?.parse::<u64>().ok())
}

/// Nearest-rank percentile (`p` in 0..=100) of sorted values, in the
/// values' unit; None for no values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDOUT: &str = "pgbench (15.18 (Debian 15.18-0+deb12u1))\n\
transaction type: <builtin: select only>\n\
scaling factor: 1\n\
query mode: simple\n\
number of clients: 10\n\
number of threads: 2\n\
maximum number of tries: 1\n\
duration: 3 s\n\
number of transactions actually processed: 57012\n\
number of failed transactions: 3 (0.005%)\n\
latency average = 0.526 ms\n\
initial connection time = 14.220 ms\n\
tps = 19004.123456 (without initial connection time)\n";

    #[test]
    fn summary_numbers_are_read() {
        let s = parse_summary(STDOUT, "");
        assert_eq!(s.tps, Some(19004.123456));
        assert_eq!(s.transactions, 57012);
        assert_eq!(s.failed, 3);
        assert_eq!(s.aborted, 0);
        assert_eq!(s.error, None);
    }

    #[test]
    fn churn_tps_and_t_counts_are_read() {
        let out = "number of transactions actually processed: 900/1000\n\
                   average connection time = 1.2 ms\n\
                   tps = 812.5 (including reconnection times)\n";
        let s = parse_summary(out, "");
        assert_eq!(s.tps, Some(812.5));
        assert_eq!(s.transactions, 900);
    }

    #[test]
    fn aborted_clients_are_counted_from_stderr() {
        let err = "pgbench: error: client 3 script 0 aborted in command 1 query 0: \
                   ERROR:  prepared statement \"P_0\" does not exist\n\
                   pgbench: error: client 12 aborted in command 4 (SQL) of script 0; ERROR: x\n\
                   pgbench: error: client 0 aborted while establishing connection\n\
                   pgbench: error: Run was aborted; the above results are incomplete.\n";
        let s = parse_summary(STDOUT, err);
        assert_eq!(s.aborted, 3);
    }

    #[test]
    fn no_summary_gives_the_last_error_line() {
        let err = "pgbench: error: connection to server at \"127.0.0.1\", port 1 failed\n\
                   pgbench: fatal: could not create connection for client 0\n\n";
        let s = parse_summary("", err);
        assert_eq!(s.tps, None);
        assert_eq!(
            s.error.as_deref(),
            Some("pgbench: fatal: could not create connection for client 0")
        );
        assert_eq!(
            parse_summary("", "").error.as_deref(),
            Some("pgbench printed no tps")
        );
    }

    #[test]
    fn log_latency_is_the_third_column() {
        let log = "0 0 812 0 1700000000 123456\n\
                   1 0 1500 0 1700000000 123999\n\
                   2 0 failed 0 1700000000 124000\n\
                   3 5 77 1 1700000001 5 0\n\n";
        let v: Vec<u64> = parse_log_latencies(log).collect();
        assert_eq!(v, vec![812, 1500, 77]);
    }

    #[test]
    fn log_files_of_all_threads_are_read() {
        let dir = std::env::temp_dir().join(format!("sluice-bench-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("txlog.99"), "0 0 10 0 1 1\n").unwrap();
        std::fs::write(dir.join("txlog.99.1"), "1 0 20 0 1 1\n").unwrap();
        std::fs::write(dir.join("stdout.txt"), "0 0 30 0 1 1\n").unwrap();
        let mut v = read_latencies(&dir);
        v.sort_unstable();
        assert_eq!(v, vec![10, 20]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        let v = [1, 2, 3, 1000];
        assert_eq!(percentile(&v, 99.0), Some(1000));
        assert_eq!(percentile(&v, 50.0), Some(2));
    }
}
