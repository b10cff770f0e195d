//! The soak's rig: a throwaway PostgreSQL, Sluice in front of it, and the
//! client plumbing (logins over sockets that can be reset, RSS, limits).

use std::net::SocketAddr;
use std::time::Duration;

use sluice_testkit::{sluice_bin, ClusterOptions, HbaAuth, PgCluster, SluiceProcess};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

pub const POOL_SIZE: u32 = 20;
pub const USER: &str = "soak";
pub const PASSWORD: &str = "soak_pw";
pub const DB: &str = "soak";
pub const ADMIN: &str = "soak_admin";
const ADMIN_PASSWORD: &str = "admin_pw";
/// Seconds; the churn's idle-in-transaction clients sleep past it.
pub const IDLE_TRANSACTION_TIMEOUT: u64 = 1;

pub struct Rig {
    pub cluster: PgCluster,
    pub sluice: SluiceProcess,
    pub max_client_conn: u32,
}

impl Rig {
    /// `clients`: how many client connections Sluice must take at once.
    pub fn start(flood: u32, workers: u32) -> Rig {
        eprintln!("==> starting PostgreSQL and Sluice");
        let cluster = PgCluster::start(ClusterOptions {
            auth: HbaAuth::Scram,
            users: vec![(USER.to_owned(), PASSWORD.to_owned())],
            databases: vec![(DB.to_owned(), USER.to_owned())],
            max_connections: 100,
            ..Default::default()
        });
        cluster.psql(
            DB,
            &format!(
                "CREATE TABLE soak_counter (w int PRIMARY KEY, n bigint NOT NULL DEFAULT 0);\n\
                 INSERT INTO soak_counter (w) SELECT generate_series(0, {});\n\
                 ALTER TABLE soak_counter OWNER TO {USER};",
                workers.max(1) - 1
            ),
        );
        // Exactly `flood` clients fit (the admin connection is one more);
        // a burst beyond that is refused.
        let max_client_conn = flood.max(workers + 10);
        let sluice = SluiceProcess::start(
            &sluice_bin(),
            &ini(&cluster, "md5", max_client_conn),
            &userlist(),
        );
        Rig {
            cluster,
            sluice,
            max_client_conn,
        }
    }

    pub async fn pg_version(&self) -> String {
        let c = superuser(&self.cluster).await;
        let row = c.query_one("SHOW server_version", &[]).await;
        row.map(|r| r.get::<_, String>(0))
            .unwrap_or_else(|e| format!("? ({e})"))
    }

    /// Sluice's resident set size in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.sluice.pid())
    }

    /// A client login to the soak database through Sluice.
    pub async fn login(&self) -> Result<Conn, String> {
        Conn::open(self.sluice.port, USER, PASSWORD, DB).await
    }
}

/// The ini for a Sluice in front of `cluster` with this client auth_type.
pub fn ini(cluster: &PgCluster, auth_type: &str, max_client_conn: u32) -> String {
    format!(
        "[databases]\n\
         {DB} = host=127.0.0.1 port={pg} dbname={DB}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {{port}}\n\
         unix_socket_dir =\n\
         auth_type = {auth_type}\n\
         auth_file = {{dir}}/userlist.txt\n\
         admin_users = {ADMIN}\n\
         pool_mode = transaction\n\
         default_pool_size = {POOL_SIZE}\n\
         max_client_conn = {max_client_conn}\n\
         query_wait_timeout = 120\n\
         idle_transaction_timeout = {IDLE_TRANSACTION_TIMEOUT}\n\
         server_login_retry = 1\n",
        pg = cluster.port
    )
}

/// Plaintext passwords: md5 or SCRAM towards clients per auth_type, SCRAM
/// towards PostgreSQL.
pub fn userlist() -> String {
    format!("\"{USER}\" \"{PASSWORD}\"\n\"{ADMIN}\" \"{ADMIN_PASSWORD}\"\n")
}

/// A client connection whose socket is closed with a TCP reset (SO_LINGER
/// 0) when [`Conn::reset`] drops it without a Terminate message.
pub struct Conn {
    pub client: Client,
    task: JoinHandle<()>,
}

impl Conn {
    pub async fn open(port: u16, user: &str, password: &str, db: &str) -> Result<Conn, String> {
        let mut cfg = Config::new();
        cfg.user(user).password(password).dbname(db);
        let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        // Deprecated because a positive linger blocks the dropping thread;
        // zero does not block, it makes the close a reset.
        #[allow(deprecated)]
        sock.set_linger(Some(Duration::ZERO))
            .map_err(|e| format!("SO_LINGER: {e}"))?;
        let stream = sock
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (client, connection) = cfg
            .connect_raw(stream, NoTls)
            .await
            .map_err(|e| error_text(&e))?;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { client, task })
    }

    /// Drops the socket at once with a TCP reset, whatever is in flight.
    pub fn reset(self) {
        self.task.abort();
    }

    /// Says goodbye (Terminate) and waits for the socket to close.
    pub async fn close(self) {
        drop(self.client);
        let _ = self.task.await;
    }
}

/// `SQLSTATE: message` for server errors, the error's text otherwise.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// The superuser straight to PostgreSQL (for checks behind Sluice's back).
pub async fn superuser(cluster: &PgCluster) -> Client {
    sluice_testkit::connect(&cluster.superuser_url(DB)).await
}

/// Sluice's admin console.
pub async fn admin(sluice: &SluiceProcess) -> Result<Conn, String> {
    Conn::open(sluice.port, ADMIN, ADMIN_PASSWORD, "pgbouncer").await
}

pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
