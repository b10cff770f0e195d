//! The three targets: a throwaway PostgreSQL (also the "direct" target),
//! PgBouncer and Sluice in front of it with equivalent configurations, all on
//! 127.0.0.1. Everything started here stops when its value is dropped
//! (sluice-testkit's guards, plus watchdogs should this process die hard).

use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sluice_testkit::{ClusterOptions, HbaAuth, PgCluster, SluiceProcess};

use crate::workload::{DATABASE, MD5_USER, SCRAM_USER};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Direct,
    PgBouncer,
    Sluice,
}

pub const KINDS: [Kind; 3] = [Kind::Direct, Kind::PgBouncer, Kind::Sluice];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Direct => "direct",
            Kind::PgBouncer => "pgbouncer",
            Kind::Sluice => "sluice",
        }
    }

    pub fn is_pooler(self) -> bool {
        self != Kind::Direct
    }

    /// The role this target's server connections log in to PostgreSQL as:
    /// each pooler has its own (forced with `user=` in `[databases]`), so
    /// its backends can be counted; direct clients are the workload's user.
    pub fn server_role(self, client_user: &'static str) -> &'static str {
        match self {
            Kind::Direct => client_user,
            Kind::PgBouncer => "via_pgbouncer",
            Kind::Sluice => "via_sluice",
        }
    }
}

/// Password of the poolers' server roles (SCRAM in PostgreSQL).
const SERVER_ROLE_PASSWORD: &str = "via_pw";

/// The client auth rules, for PostgreSQL's pg_hba.conf and both poolers'
/// `auth_hba_file` alike: md5 for `bench_md5`, SCRAM for everyone else.
pub fn hba_rules() -> String {
    format!(
        "host all {} 127.0.0.1/32 md5\nhost all all 127.0.0.1/32 scram-sha-256\n",
        MD5_USER.name
    )
}

/// `auth_file` for both poolers: plaintext passwords, so each pooler does
/// the md5 or SCRAM exchange itself for every client login.
fn userlist() -> String {
    format!(
        "\"{}\" \"{}\"\n\"{}\" \"{}\"\n",
        MD5_USER.name, MD5_USER.password, SCRAM_USER.name, SCRAM_USER.password
    )
}

/// Starts PostgreSQL with the two bench roles and `pgbench -i -s scale`.
pub fn start_postgres(scale: u32, max_connections: u32) -> Result<PgCluster, String> {
    let cluster = catch_unwind(|| {
        PgCluster::start(ClusterOptions {
            auth: HbaAuth::Scram,
            users: vec![(SCRAM_USER.name.into(), SCRAM_USER.password.into())],
            databases: vec![(DATABASE.into(), SCRAM_USER.name.into())],
            max_connections,
            extra_conf: vec!["shared_buffers = 256MB".into(), "max_wal_size = 4GB".into()],
            ssl: None,
            hba: Some(hba_rules()),
        })
    })
    .map_err(|e| format!("starting PostgreSQL failed: {}", panic_text(&e)))?;
    cluster.try_psql(
        "postgres",
        &format!(
            "CREATE ROLE via_pgbouncer LOGIN PASSWORD '{pw}';\n\
             CREATE ROLE via_sluice LOGIN PASSWORD '{pw}';\n\
             SET password_encryption = 'md5';\n\
             CREATE ROLE {} LOGIN PASSWORD '{}';\n",
            MD5_USER.name,
            MD5_USER.password,
            pw = SERVER_ROLE_PASSWORD,
        ),
    )?;
    let out = sluice_testkit::pgbench(
        &[
            "-i",
            "-q",
            "-s",
            &scale.to_string(),
            "-h",
            &cluster.socket_dir.to_string_lossy(),
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            DATABASE,
        ],
        &[],
    );
    if !out.status.success() {
        return Err(format!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    cluster.try_psql(
        DATABASE,
        &format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {}, {}, via_pgbouncer, via_sluice;",
            MD5_USER.name, SCRAM_USER.name
        ),
    )?;
    Ok(cluster)
}

/// `PostgreSQL 15.18 (Debian 15.18-0+deb12u1)` from `SELECT version()`.
pub fn postgres_version(cluster: &PgCluster) -> String {
    let full = cluster
        .try_psql("postgres", "SELECT version()")
        .unwrap_or_default();
    full.split(" on ").next().unwrap_or_default().to_owned()
}

/// A pooler's settings: the same for PgBouncer and Sluice.
#[derive(Clone, Copy)]
pub struct PoolerConfig<'a> {
    pub pg_port: u16,
    pub pool_size: u32,
    pub max_client_conn: u32,
    /// Where the hba file is (readable by the pooler's OS user).
    pub work_dir: &'a Path,
}

fn pooler_ini(kind: Kind, cfg: &PoolerConfig) -> String {
    format!(
        "[databases]\n\
         {db} = host=127.0.0.1 port={pg} dbname={db} user={role} password={pw}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {{port}}\n\
         unix_socket_dir =\n\
         auth_type = hba\n\
         auth_hba_file = {hba}\n\
         auth_file = {{dir}}/userlist.txt\n\
         pool_mode = transaction\n\
         default_pool_size = {pool}\n\
         max_client_conn = {max}\n\
         ignore_startup_parameters = extra_float_digits\n\
         log_connections = 0\n\
         log_disconnections = 0\n",
        db = DATABASE,
        pg = cfg.pg_port,
        role = kind.server_role(""),
        pw = SERVER_ROLE_PASSWORD,
        hba = cfg.work_dir.join("pooler_hba.conf").display(),
        pool = cfg.pool_size,
        max = cfg.max_client_conn,
    )
}

/// Writes the hba file both poolers read into `work_dir`.
pub fn write_pooler_hba(work_dir: &Path) -> std::io::Result<()> {
    let path = work_dir.join("pooler_hba.conf");
    std::fs::write(&path, hba_rules())?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
}

/// A running target: its port and, for the poolers, the process and what
/// it takes to start it again.
pub struct Target {
    pub kind: Kind,
    pub port: u16,
    process: Option<SluiceProcess>,
    /// (program, ini) the pooler was started with.
    launch: Option<(PathBuf, String)>,
}

impl Target {
    pub fn direct(cluster: &PgCluster) -> Target {
        Target {
            kind: Kind::Direct,
            port: cluster.port,
            process: None,
            launch: None,
        }
    }

    /// Stops the pooler and starts a fresh one with the same settings (on
    /// a new port), so no run inherits another's servers, prepared
    /// statements or memory. Direct targets are left alone.
    pub fn restart(&mut self) -> Result<(), String> {
        let Some((program, ini)) = &self.launch else {
            return Ok(());
        };
        drop(self.process.take());
        let process = launch(self.kind, program, ini)?;
        self.port = process.port;
        self.process = Some(process);
        Ok(())
    }

    /// The pooler's pid (the one whose CPU and RSS are measured).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid())
    }

    /// The tail of the pooler's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = self.process.as_ref().map(|p| p.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

/// Starts Sluice (`binary`) or PgBouncer (`binary`, run as the `postgres`
/// OS user when we are root: PgBouncer refuses to run as root) and waits
/// until it listens.
pub fn start_pooler(kind: Kind, binary: &Path, cfg: &PoolerConfig) -> Result<Target, String> {
    let program = if kind == Kind::PgBouncer && is_root() {
        pgbouncer_as_postgres(binary, cfg.work_dir)
            .map_err(|e| format!("cannot write the PgBouncer wrapper: {e}"))?
    } else {
        binary.to_owned()
    };
    let ini = pooler_ini(kind, cfg);
    let process = launch(kind, &program, &ini)?;
    Ok(Target {
        kind,
        port: process.port,
        process: Some(process),
        launch: Some((program, ini)),
    })
}

/// CPUs the poolers run on (`--pin`); unset = wherever the OS likes.
pub static POOLER_CPUS: OnceLock<Vec<usize>> = OnceLock::new();

fn launch(kind: Kind, program: &Path, ini: &str) -> Result<SluiceProcess, String> {
    let process = catch_unwind(AssertUnwindSafe(|| {
        SluiceProcess::start(program, ini, &userlist())
    }))
    .map_err(|e| format!("{} did not start: {}", kind.name(), panic_text(&e)))?;
    if let Some(cpus) = POOLER_CPUS.get() {
        crate::procstat::pin_process(process.pid(), cpus)
            .map_err(|e| format!("cannot pin {} to CPUs {cpus:?}: {e}", kind.name()))?;
    }
    Ok(process)
}

/// A one-line script that execs PgBouncer with `-u postgres`, so the
/// process we start (and measure) is PgBouncer itself.
fn pgbouncer_as_postgres(binary: &Path, work_dir: &Path) -> std::io::Result<PathBuf> {
    let path = work_dir.join("pgbouncer-as-postgres");
    let script = format!(
        "#!/bin/sh\nexec '{}' -u postgres \"$@\"\n",
        binary.display().to_string().replace('\'', r"'\''")
    );
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The PgBouncer binary: `explicit`, else $SLUICE_PGBOUNCER_BIN, else
/// `pgbouncer` on PATH, else /usr/sbin/pgbouncer; None if none exists.
pub fn find_pgbouncer(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_owned());
    }
    if let Some(path) = std::env::var_os("SLUICE_PGBOUNCER_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("pgbouncer"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/pgbouncer")])
        .find(|p| p.is_file())
}

/// First line of `binary --version` (PgBouncer prints "PgBouncer 1.18.0").
pub fn binary_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines().next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_default()
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_is_transaction_mode_with_hba_auth() {
        let cfg = PoolerConfig {
            pg_port: 5999,
            pool_size: 20,
            max_client_conn: 10_100,
            work_dir: Path::new("/tmp/w"),
        };
        let ini = pooler_ini(Kind::Sluice, &cfg);
        assert!(ini.contains(
            "bench = host=127.0.0.1 port=5999 dbname=bench user=via_sluice password=via_pw\n"
        ));
        assert!(pooler_ini(Kind::PgBouncer, &cfg).contains("user=via_pgbouncer "));
        assert!(ini.contains("pool_mode = transaction\n"));
        assert!(ini.contains("auth_type = hba\nauth_hba_file = /tmp/w/pooler_hba.conf\n"));
        assert!(ini.contains("default_pool_size = 20\nmax_client_conn = 10100\n"));
        assert!(ini.contains("listen_port = {port}\n"));
    }

    #[test]
    fn hba_gives_md5_user_md5_and_the_rest_scram() {
        let rules = hba_rules();
        let md5 = rules.find("bench_md5 127.0.0.1/32 md5").unwrap();
        let scram = rules.find("all 127.0.0.1/32 scram-sha-256").unwrap();
        assert!(md5 < scram);
        assert!(userlist().contains("\"bench_scram\" \"bench_scram_pw\""));
    }
}
