//! Throwaway PostgreSQL clusters: initdb into a temp dir, start on a free
//! port on 127.0.0.1 with a private unix socket directory, create the roles
//! and databases a test needs, then switch pg_hba.conf to the requested auth.
//!
//! The superuser `postgres` keeps `trust` on the unix socket (and on
//! 127.0.0.1), so the harness can always get in.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::bins::{pg_bin_dir, psql_cmd};
use crate::ports::free_port;
use crate::util::{
    chown_to, new_temp_dir, run, run_as, server_user, sh_quote, spawn_watchdog, sql_ident,
    sql_literal, stop_watchdog, tail, url_encode, RunAs,
};

/// How clients other than the superuser authenticate over TCP and the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HbaAuth {
    /// No password asked.
    #[default]
    Trust,
    /// `md5` in pg_hba.conf; users' passwords are stored as md5 hashes.
    Md5,
    /// `scram-sha-256` in pg_hba.conf; passwords stored as SCRAM secrets.
    Scram,
}

impl HbaAuth {
    /// The pg_hba.conf method name.
    pub fn method(self) -> &'static str {
        match self {
            HbaAuth::Trust => "trust",
            HbaAuth::Md5 => "md5",
            HbaAuth::Scram => "scram-sha-256",
        }
    }

    /// The `password_encryption` the users' passwords are stored with.
    fn password_encryption(self) -> &'static str {
        match self {
            HbaAuth::Md5 => "md5",
            HbaAuth::Trust | HbaAuth::Scram => "scram-sha-256",
        }
    }
}

/// Server-side TLS for a cluster: `ssl = on` with these files. Paths must be
/// absolute and readable by the server's OS user; the key must be owned by it
/// (or root) and not readable by others — [`TestPki::server_cert`] with
/// `for_postgres` (or [`TestPki::cluster_ssl`]) makes such files.
///
/// [`TestPki::server_cert`]: crate::TestPki::server_cert
/// [`TestPki::cluster_ssl`]: crate::TestPki::cluster_ssl
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSsl {
    /// `ssl_cert_file`.
    pub cert_file: PathBuf,
    /// `ssl_key_file`.
    pub key_file: PathBuf,
    /// `ssl_ca_file`: the CA that client certificates are checked against
    /// (needed for `cert` auth or `clientcert=` in pg_hba.conf).
    pub ca_file: Option<PathBuf>,
}

/// What [`PgCluster::start`] sets up.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Auth method for everyone but the superuser `postgres`, and the
    /// `password_encryption` users' passwords are stored with. With
    /// [`ClusterOptions::hba`] set, only the latter.
    pub auth: HbaAuth,
    /// (name, password): LOGIN roles, password stored per `auth`.
    pub users: Vec<(String, String)>,
    /// (name, owner): databases to create (`postgres` always exists).
    pub databases: Vec<(String, String)>,
    /// `max_connections` of the server.
    pub max_connections: u32,
    /// Extra postgresql.conf lines, appended last (so they win).
    pub extra_conf: Vec<String>,
    /// `ssl = on` with these certificate files; None: TLS off.
    pub ssl: Option<ClusterSsl>,
    /// The pg_hba.conf rules for everyone but the superuser, replacing the
    /// ones `auth` would give (`local`/`host 127.0.0.1/32` with its method).
    /// Written after users and databases are created, below the superuser
    /// `postgres` trust lines (socket and 127.0.0.1), which always come
    /// first. E.g. `"hostssl all tls_user 127.0.0.1/32 scram-sha-256\n\
    /// hostnossl all tls_user 127.0.0.1/32 reject\n"`.
    pub hba: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            auth: HbaAuth::Trust,
            users: Vec::new(),
            databases: Vec::new(),
            max_connections: 200,
            extra_conf: Vec::new(),
            ssl: None,
            hba: None,
        }
    }
}

/// A role to create, with the secret kind its password is stored as.
struct RoleSpec {
    name: String,
    password: String,
    encryption: &'static str,
}

/// Everything [`PgCluster::launch`] needs, whether from [`ClusterOptions`]
/// or the fixed layout of [`PgCluster::shared`].
struct Setup {
    roles: Vec<RoleSpec>,
    databases: Vec<(String, String)>,
    max_connections: u32,
    password_encryption: &'static str,
    extra_conf: Vec<String>,
    ssl: Option<ClusterSsl>,
    hba: String,
}

impl Setup {
    fn from_options(opts: ClusterOptions) -> Setup {
        let encryption = opts.auth.password_encryption();
        let method = opts.auth.method();
        Setup {
            roles: opts
                .users
                .into_iter()
                .map(|(name, password)| RoleSpec {
                    name,
                    password,
                    encryption,
                })
                .collect(),
            databases: opts.databases,
            max_connections: opts.max_connections,
            password_encryption: encryption,
            extra_conf: opts.extra_conf,
            ssl: opts.ssl,
            hba: match opts.hba {
                Some(rules) => hba_text(&rules.lines().map(str::to_owned).collect::<Vec<_>>()),
                None => hba_text(&[
                    format!("local all all {method}"),
                    format!("host all all 127.0.0.1/32 {method}"),
                ]),
            },
        }
    }

    fn shared() -> Setup {
        let role = |name: &str, password: &str, encryption| RoleSpec {
            name: name.to_owned(),
            password: password.to_owned(),
            encryption,
        };
        Setup {
            roles: vec![
                role("sluice_user", "sluice_pw", "scram-sha-256"),
                role("md5_user", "md5_pw", "md5"),
                role("scram_user", "scram_pw", "scram-sha-256"),
            ],
            databases: vec![("sluice_db".to_owned(), "sluice_user".to_owned())],
            max_connections: 200,
            password_encryption: "scram-sha-256",
            extra_conf: Vec::new(),
            ssl: None,
            hba: hba_text(&[
                "local all md5_user md5".to_owned(),
                "local all all scram-sha-256".to_owned(),
                "host all md5_user 127.0.0.1/32 md5".to_owned(),
                "host all all 127.0.0.1/32 scram-sha-256".to_owned(),
            ]),
        }
    }
}

/// pg_hba.conf: superuser trust first (local and 127.0.0.1), then `rules`.
fn hba_text(rules: &[String]) -> String {
    let mut text = String::from(
        "# written by sluice-testkit\n\
         local all postgres trust\n\
         local replication all trust\n\
         host all postgres 127.0.0.1/32 trust\n\
         host replication postgres 127.0.0.1/32 trust\n",
    );
    for rule in rules {
        text.push_str(rule);
        text.push('\n');
    }
    text
}

/// postgresql.conf lines turning TLS on with `ssl`'s files.
fn ssl_conf(ssl: &ClusterSsl) -> String {
    // postgresql.conf strings: quotes doubled, backslashes escaped.
    let file = |p: &Path| {
        let text = p.to_string_lossy().replace('\\', "\\\\");
        sql_literal(&text)
    };
    let mut conf = format!(
        "ssl = on\nssl_cert_file = {}\nssl_key_file = {}\n",
        file(&ssl.cert_file),
        file(&ssl.key_file)
    );
    if let Some(ca) = &ssl.ca_file {
        conf.push_str(&format!("ssl_ca_file = {}\n", file(ca)));
    }
    conf
}

/// A running throwaway PostgreSQL server. Dropping it stops the server
/// (immediate shutdown) and removes its directory.
#[derive(Debug)]
pub struct PgCluster {
    /// TCP port on `host`.
    pub port: u16,
    /// Always "127.0.0.1".
    pub host: String,
    /// Directory of the unix socket `.s.PGSQL.<port>`.
    pub socket_dir: PathBuf,
    /// PGDATA.
    pub data_dir: PathBuf,
    /// The server log (written by `pg_ctl -l`).
    pub log_path: PathBuf,
    /// The temp directory holding all of the above.
    pub base_dir: PathBuf,
    bin_dir: PathBuf,
    user: Option<RunAs>,
    watchdog: Mutex<Option<Child>>,
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();

extern "C" fn stop_shared_cluster_at_exit() {
    if let Some(cluster) = SHARED.get() {
        if let Ok(mut guard) = cluster.watchdog.try_lock() {
            stop_watchdog(guard.take());
        }
        cluster.shutdown_immediate();
        let _ = std::fs::remove_dir_all(&cluster.base_dir);
    }
}

const START_ATTEMPTS: usize = 3;

impl PgCluster {
    /// initdb, configure, start, create users and databases, then apply the
    /// requested pg_hba.conf and reload. Panics (with the server log tail)
    /// if any step fails.
    pub fn start(opts: ClusterOptions) -> PgCluster {
        PgCluster::launch(Setup::from_options(opts))
    }

    /// The cluster shared by all tests of this process: SCRAM auth; roles
    /// `sluice_user`/`sluice_pw` and `scram_user`/`scram_pw` (SCRAM secrets)
    /// and `md5_user`/`md5_pw` (md5 hash, `md5` in pg_hba.conf); database
    /// `sluice_db` owned by `sluice_user`, plus `postgres`. The superuser
    /// `postgres` needs no password. Stopped when the process exits.
    ///
    /// Tests that stop or restart a server should start their own cluster.
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| {
            let cluster = PgCluster::launch(Setup::shared());
            // SAFETY: registering a plain extern "C" fn with no captured state.
            unsafe {
                libc::atexit(stop_shared_cluster_at_exit);
            }
            cluster
        })
    }

    fn launch(setup: Setup) -> PgCluster {
        let bin_dir = pg_bin_dir();
        let user = server_user();
        let base_dir = new_temp_dir();
        chown_to(&base_dir, user.as_ref());
        let data_dir = base_dir.join("data");
        let mut cluster = PgCluster {
            port: free_port(),
            host: "127.0.0.1".to_owned(),
            socket_dir: base_dir.clone(),
            log_path: base_dir.join("postgres.log"),
            data_dir,
            base_dir,
            bin_dir,
            user,
            watchdog: Mutex::new(None),
        };
        // From here on, a panic drops `cluster`, which cleans up.
        *cluster.lock_watchdog() = spawn_watchdog(&cluster.watchdog_script());
        cluster.initdb();
        cluster.write_conf(&setup);
        cluster.first_start();
        cluster.create_roles_and_databases(&setup);
        cluster.write_hba(&setup.hba);
        cluster
    }

    fn lock_watchdog(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        self.watchdog.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shell cleanup run by the watchdog if this process dies without
    /// dropping the cluster: immediate shutdown, then remove the directory.
    fn watchdog_script(&self) -> String {
        let pidfile = sh_quote(&self.data_dir.join("postmaster.pid").to_string_lossy());
        let dir = sh_quote(&self.base_dir.to_string_lossy());
        format!(
            "if [ -f {pidfile} ]; then pid=$(head -n 1 {pidfile}); kill -QUIT \"$pid\" 2>/dev/null; \
             i=0; while [ -f {pidfile} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
             [ -f {pidfile} ] && kill -KILL \"$pid\" 2>/dev/null; fi; rm -rf {dir}"
        )
    }

    /// A command for a server binary, run as the server's OS user, in the
    /// cluster directory, with no stray libpq/PGDATA environment.
    fn server_cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        run_as(&mut cmd, self.user.as_ref());
        cmd.current_dir(&self.base_dir).env("LC_ALL", "C");
        for var in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn fail(&self, what: &str, detail: &str) -> ! {
        panic!(
            "sluice-testkit: {what} (cluster in {}):\n{detail}\n--- server log tail ({}) ---\n{}",
            self.base_dir.display(),
            self.log_path.display(),
            tail(&self.log_path, 40)
        )
    }

    fn initdb(&self) {
        let mut cmd = self.server_cmd("initdb");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync"]);
        if let Err(e) = run(&mut cmd) {
            self.fail("initdb failed", &e);
        }
    }

    fn write_conf(&self, setup: &Setup) {
        let mut conf = format!(
            "\n# sluice-testkit\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             max_connections = {max}\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             shared_buffers = 32MB\n\
             password_encryption = '{enc}'\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n",
            port = self.port,
            socket = self.socket_dir.display(),
            max = setup.max_connections,
            enc = setup.password_encryption,
        );
        if let Some(ssl) = &setup.ssl {
            conf.push_str(&ssl_conf(ssl));
        }
        for line in &setup.extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        self.append_conf(&conf);
    }

    fn append_conf(&self, text: &str) {
        let path = self.data_dir.join("postgresql.conf");
        let result = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()));
        if let Err(e) = result {
            self.fail(&format!("cannot write {}", path.display()), &e.to_string());
        }
    }

    fn pg_ctl_start(&self) -> Result<String, String> {
        let mut cmd = self.server_cmd("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_path)
            .args(["-w", "-t", "60", "-s"]);
        run(&mut cmd)
    }

    /// Starts the server; if the port was taken meanwhile, moves to another.
    fn first_start(&mut self) {
        for attempt in 1..=START_ATTEMPTS {
            match self.pg_ctl_start() {
                Ok(_) => return,
                Err(e) => {
                    let log = tail(&self.log_path, 20);
                    let port_taken = log.contains("could not bind")
                        || log.contains("Address already in use")
                        || log.contains("could not create any TCP/IP sockets");
                    if !port_taken || attempt == START_ATTEMPTS {
                        self.fail("pg_ctl start failed", &e);
                    }
                    self.port = free_port();
                    self.append_conf(&format!("port = {}\n", self.port));
                }
            }
        }
    }

    fn create_roles_and_databases(&self, setup: &Setup) {
        let mut sql = String::new();
        for role in &setup.roles {
            sql.push_str(&format!(
                "SET password_encryption = {};\nCREATE ROLE {} LOGIN PASSWORD {};\n",
                sql_literal(role.encryption),
                sql_ident(&role.name),
                sql_literal(&role.password)
            ));
        }
        for (name, owner) in &setup.databases {
            sql.push_str(&format!(
                "CREATE DATABASE {} OWNER {};\n",
                sql_ident(name),
                sql_ident(owner)
            ));
        }
        if !sql.is_empty() {
            if let Err(e) = self.try_psql("postgres", &sql) {
                self.fail("creating roles/databases failed", &e);
            }
        }
    }

    /// Replaces pg_hba.conf with `text` and reloads, returning once new
    /// connections see it. Keep `local all postgres trust` in it, or the
    /// harness's psql cannot get in any more.
    pub fn write_hba(&self, text: &str) {
        let path = self.data_dir.join("pg_hba.conf");
        if let Err(e) = std::fs::write(&path, text) {
            self.fail(&format!("cannot write {}", path.display()), &e.to_string());
        }
        self.reload();
    }

    /// `pg_reload_conf()`, then waits until a new backend reports the new
    /// configuration load time (so pg_hba.conf changes are in force).
    pub fn reload(&self) {
        let before = self.psql("postgres", "SELECT pg_conf_load_time()");
        self.psql("postgres", "SELECT pg_reload_conf()");
        let check = format!(
            "SELECT pg_conf_load_time() > {}::timestamptz",
            sql_literal(&before)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.psql("postgres", &check) != "t" {
            if Instant::now() > deadline {
                self.fail("configuration reload not seen after 20 s", "");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `sql` with psql as superuser `postgres` over the unix socket
    /// (`-X -A -t -q`, `ON_ERROR_STOP`); returns trimmed stdout. Panics with
    /// stderr on failure. Statements run one by one (autocommit), so
    /// `CREATE DATABASE` may be among them.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("sluice-testkit: psql on db {db:?} failed: {e}"))
    }

    /// Like [`PgCluster::psql`], but returns Err(stderr and status) on failure.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut child = Command::new(psql_cmd())
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.socket_dir)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-f", "-"])
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGOPTIONS")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", psql_cmd().display()))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let sql = sql.to_owned();
        let writer = std::thread::spawn(move || {
            // A psql that exits early closes the pipe; its exit status tells why.
            let _ = stdin.write_all(sql.as_bytes());
        });
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for psql: {e}"))?;
        let _ = writer.join();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "psql exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn pg_ctl(&self, action: &str, extra: &[&str]) {
        let mut cmd = self.server_cmd("pg_ctl");
        cmd.arg(action).arg("-D").arg(&self.data_dir).args(extra);
        if let Err(e) = run(&mut cmd) {
            self.fail(&format!("pg_ctl {action} failed"), &e);
        }
    }

    /// `pg_ctl restart -m fast -w` on the same port; existing connections die.
    pub fn restart(&self) {
        let log = self.log_path.to_string_lossy().into_owned();
        self.pg_ctl(
            "restart",
            &["-m", "fast", "-w", "-t", "60", "-s", "-l", &log],
        );
    }

    /// `pg_ctl stop -m fast -w`.
    pub fn stop(&self) {
        self.stop_with_mode("fast");
    }

    /// `pg_ctl stop -m <mode> -w`, returning once the server is down:
    /// `smart` waits for every client to disconnect, `fast` rolls back open
    /// transactions and disconnects the clients, `immediate` kills every
    /// server process at once (crash recovery on the next start). Panics on
    /// any other mode.
    pub fn stop_with_mode(&self, mode: &str) {
        assert!(
            matches!(mode, "smart" | "fast" | "immediate"),
            "sluice-testkit: pg_ctl stop mode must be smart, fast or immediate, not {mode:?}"
        );
        self.pg_ctl("stop", &["-m", mode, "-w", "-t", "60", "-s"]);
    }

    /// Starts a server that [`PgCluster::stop`] or
    /// [`PgCluster::stop_with_mode`] stopped (same port and data).
    pub fn start_again(&self) {
        if let Err(e) = self.pg_ctl_start() {
            self.fail("pg_ctl start failed", &e);
        }
    }

    /// `postgresql://user:password@127.0.0.1:port/db?sslmode=disable`
    /// (no `:password` when it is empty).
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        let auth = if password.is_empty() {
            url_encode(user)
        } else {
            format!("{}:{}", url_encode(user), url_encode(password))
        };
        format!(
            "postgresql://{auth}@{}:{}/{}?sslmode=disable",
            self.host,
            self.port,
            url_encode(db)
        )
    }

    /// URL for the superuser `postgres` (trusted on 127.0.0.1).
    pub fn superuser_url(&self, db: &str) -> String {
        self.url("postgres", "", db)
    }

    /// The whole server log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The postmaster's pid, if it is running.
    pub fn postmaster_pid(&self) -> Option<i32> {
        read_postmaster_pid(&self.data_dir)
    }

    /// Immediate shutdown by signal (what `pg_ctl stop -m immediate` does),
    /// waiting up to 10 s for postmaster.pid to go, then SIGKILL. Spawns no
    /// processes, so it is fit for an atexit handler.
    fn shutdown_immediate(&self) {
        let Some(pid) = self.postmaster_pid() else {
            return;
        };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
        }
        let pidfile = self.data_dir.join("postmaster.pid");
        let deadline = Instant::now() + Duration::from_secs(10);
        while pidfile.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if pidfile.exists() {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn read_postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        stop_watchdog(self.lock_watchdog().take());
        self.shutdown_immediate();
        if std::thread::panicking() {
            eprintln!(
                "sluice-testkit: PostgreSQL log tail ({}):\n{}",
                self.log_path.display(),
                tail(&self.log_path, 30)
            );
        }
        let _ = std::fs::remove_dir_all(&self.base_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_keeps_superuser_trust_before_the_requested_rules() {
        let setup = Setup::from_options(ClusterOptions {
            auth: HbaAuth::Md5,
            ..Default::default()
        });
        let trust = setup.hba.find("local all postgres trust").unwrap();
        let md5 = setup.hba.find("host all all 127.0.0.1/32 md5").unwrap();
        assert!(trust < md5);
        assert_eq!(setup.password_encryption, "md5");
    }

    #[test]
    fn custom_hba_replaces_the_auth_rules_below_superuser_trust() {
        let setup = Setup::from_options(ClusterOptions {
            auth: HbaAuth::Scram,
            hba: Some(
                "hostssl all tls_user 127.0.0.1/32 scram-sha-256\n\
                 hostnossl all tls_user 127.0.0.1/32 reject\n"
                    .to_owned(),
            ),
            ..Default::default()
        });
        let local_trust = setup.hba.find("local all postgres trust").unwrap();
        let host_trust = setup
            .hba
            .find("host all postgres 127.0.0.1/32 trust")
            .unwrap();
        let ssl = setup
            .hba
            .find("hostssl all tls_user 127.0.0.1/32 scram-sha-256\n")
            .unwrap();
        let nossl = setup
            .hba
            .find("hostnossl all tls_user 127.0.0.1/32 reject\n")
            .unwrap();
        assert!(local_trust < ssl && host_trust < ssl && ssl < nossl);
        assert!(!setup.hba.contains("host all all"), "{}", setup.hba);
        assert_eq!(setup.password_encryption, "scram-sha-256");
    }

    #[test]
    fn ssl_options_become_conf_lines() {
        let ssl = ClusterSsl {
            cert_file: "/x/server.crt".into(),
            key_file: "/x/it's.key".into(),
            ca_file: None,
        };
        let conf = ssl_conf(&ssl);
        assert_eq!(
            conf,
            "ssl = on\nssl_cert_file = '/x/server.crt'\nssl_key_file = '/x/it''s.key'\n"
        );
        let conf = ssl_conf(&ClusterSsl {
            ca_file: Some("/x/ca.crt".into()),
            ..ssl
        });
        assert!(conf.ends_with("ssl_ca_file = '/x/ca.crt'\n"), "{conf}");
        let defaults = ClusterOptions::default();
        assert!(defaults.ssl.is_none() && defaults.hba.is_none());
    }

    #[test]
    fn shared_layout_uses_md5_only_for_md5_user() {
        let setup = Setup::shared();
        let md5_line = setup
            .hba
            .find("host all md5_user 127.0.0.1/32 md5")
            .unwrap();
        let scram_line = setup
            .hba
            .find("host all all 127.0.0.1/32 scram-sha-256")
            .unwrap();
        assert!(md5_line < scram_line);
        let md5_user = setup.roles.iter().find(|r| r.name == "md5_user").unwrap();
        assert_eq!(md5_user.encryption, "md5");
    }
}
