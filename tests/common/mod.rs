//! Helpers shared by the end-to-end tests in pooling.rs, protocol.rs and
//! resilience.rs: a role and a database of its own per test (so server
//! counts in pg_stat_activity never mix between parallel tests), a Sluice
//! config around them, server counting, and clients whose socket a test can
//! drop without a goodbye.

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::poll_fn;
use sluice_testkit::{psql_cmd, ClusterOptions, HbaAuth, PgCluster, SluiceProcess};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls, SimpleQueryMessage};

/// The Sluice binary built for these tests.
pub fn sluice_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_sluice"))
}

/// A LOGIN role (password `pw`) owning a database of the same name, made by
/// the superuser for one test.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub user: String,
    pub password: String,
    pub db: String,
}

impl Tenant {
    /// Creates `t_<tag>_<n>` (role and database) on `cluster`.
    pub fn create(cluster: &PgCluster, tag: &str) -> Tenant {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("t_{tag}_{}", N.fetch_add(1, Ordering::Relaxed));
        let tenant = Tenant {
            user: name.clone(),
            password: "pw".to_owned(),
            db: name.clone(),
        };
        cluster.psql(
            "postgres",
            &format!(
                "CREATE ROLE {name} LOGIN PASSWORD 'pw';\nCREATE DATABASE {name} OWNER {name};"
            ),
        );
        tenant
    }

    /// Another LOGIN role (password `pw`) that may use this tenant's
    /// database and its tables.
    pub fn add_role(&self, cluster: &PgCluster, suffix: &str) -> String {
        let role = format!("{}_{suffix}", self.user);
        cluster.psql(
            "postgres",
            &format!(
                "CREATE ROLE {role} LOGIN PASSWORD 'pw' IN ROLE {};",
                self.user
            ),
        );
        role
    }

    /// The `userlist.txt` line of this tenant (plaintext password).
    pub fn userlist(&self) -> String {
        format!("\"{}\" \"{}\"\n", self.user, self.password)
    }

    /// Runs `sql` as the superuser in this tenant's database.
    pub fn psql(&self, cluster: &PgCluster, sql: &str) -> String {
        cluster.psql(&self.db, sql)
    }

    /// URL to this tenant's database through `sluice`.
    pub fn url(&self, sluice: &SluiceProcess) -> String {
        sluice.url(&self.user, &self.password, &self.db)
    }

    /// Like [`Tenant::url`], plus `&key=value` query parameters.
    pub fn url_with(&self, sluice: &SluiceProcess, extra: &str) -> String {
        format!("{}&{extra}", self.url(sluice))
    }

    /// URL straight to the cluster, bypassing Sluice.
    pub fn direct_url(&self, cluster: &PgCluster) -> String {
        cluster.url(&self.user, &self.password, &self.db)
    }
}

/// A pgbouncer.ini sending every database (`*`) to `cluster`, listening on
/// 127.0.0.1 only, md5 auth from `{dir}/userlist.txt`, with `pool_mode`,
/// `default_pool_size` and then the `extra` lines in [pgbouncer] (later keys
/// win). `sections` is appended verbatim (e.g. a `[users]` section).
pub fn ini(cluster: &PgCluster, pool_mode: &str, pool_size: usize, extra: &str) -> String {
    ini_with_sections(cluster, pool_mode, pool_size, extra, "")
}

pub fn ini_with_sections(
    cluster: &PgCluster,
    pool_mode: &str,
    pool_size: usize,
    extra: &str,
    sections: &str,
) -> String {
    format!(
        "[databases]\n\
         * = host=127.0.0.1 port={port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {{port}}\n\
         unix_socket_dir =\n\
         auth_type = md5\n\
         auth_file = {{dir}}/userlist.txt\n\
         pool_mode = {pool_mode}\n\
         default_pool_size = {pool_size}\n\
         max_client_conn = 500\n\
         query_wait_timeout = 20\n\
         server_login_retry = 1\n\
         {extra}\n\
         \n\
         {sections}\n",
        port = cluster.port,
    )
}

/// Starts Sluice for `tenant` with [`ini`].
pub fn start_sluice(
    cluster: &PgCluster,
    tenant: &Tenant,
    pool_mode: &str,
    pool_size: usize,
    extra: &str,
) -> SluiceProcess {
    SluiceProcess::start(
        sluice_bin(),
        &ini(cluster, pool_mode, pool_size, extra),
        &tenant.userlist(),
    )
}

/// A superuser connection straight to the cluster (for counting servers,
/// terminating backends, checking data behind Sluice's back).
pub async fn superuser(cluster: &PgCluster) -> Client {
    sluice_testkit::connect(&cluster.superuser_url("postgres")).await
}

/// Server connections of `user` to `db` (pg_stat_activity).
pub async fn server_count(admin: &Client, user: &str, db: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}' AND datname = '{db}'"
    );
    first_value(admin, &sql)
        .await
        .parse()
        .expect("count is a number")
}

/// Server connections of `user` to any database.
pub async fn server_count_of_user(admin: &Client, user: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'");
    first_value(admin, &sql)
        .await
        .parse()
        .expect("count is a number")
}

/// Server connections to `db`, whoever the user.
pub async fn server_count_of_db(admin: &Client, db: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND backend_type = 'client backend'"
    );
    first_value(admin, &sql)
        .await
        .parse()
        .expect("count is a number")
}

/// Backend pids serving `user` in `db`.
pub async fn server_pids(admin: &Client, user: &str, db: &str) -> Vec<i32> {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE usename = '{user}' AND datname = '{db}' ORDER BY pid"
    );
    rows(&admin.simple_query(&sql).await.expect("pg_stat_activity"))
        .into_iter()
        .map(|r| r[0].as_deref().unwrap_or("0").parse().unwrap_or(0))
        .collect()
}

/// Samples `count` every 20 ms until `stop` resolves; returns the maximum.
pub struct Sampler {
    stop: tokio::sync::watch::Sender<bool>,
    handle: JoinHandle<i64>,
}

impl Sampler {
    /// Starts sampling the servers of `user` in `db` (None: any database;
    /// `user` empty: any user of `db`).
    pub fn start(admin: Client, user: &str, db: Option<&str>) -> Sampler {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let user = user.to_owned();
        let db = db.map(str::to_owned);
        let handle = tokio::spawn(async move {
            let mut max = 0;
            loop {
                let n = match (&db, user.is_empty()) {
                    (Some(db), false) => server_count(&admin, &user, db).await,
                    (Some(db), true) => server_count_of_db(&admin, db).await,
                    (None, _) => server_count_of_user(&admin, &user).await,
                };
                max = max.max(n);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stopped.changed() => return max,
                }
            }
        });
        Sampler { stop, handle }
    }

    /// Stops sampling and returns the largest count seen.
    pub async fn finish(self) -> i64 {
        let _ = self.stop.send(true);
        self.handle.await.expect("sampler task")
    }
}

/// The rows of a simple-query answer, as optional strings.
pub fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The first column of the first row of `sql` (panics on error or no row).
pub async fn first_value(client: &Client, sql: &str) -> String {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
    try_first_value(&messages)
        .unwrap_or_else(|| panic!("{sql}: no row"))
        .unwrap_or_else(|| "NULL".to_owned())
}

fn try_first_value(messages: &[SimpleQueryMessage]) -> Option<Option<String>> {
    rows(messages).into_iter().next().map(|r| r[0].clone())
}

/// Like [`first_value`], but hands back the error.
pub async fn try_value(client: &Client, sql: &str) -> Result<String, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(try_first_value(&messages)
        .flatten()
        .unwrap_or_else(|| "NULL".to_owned()))
}

/// "SQLSTATE: message" of a server error, or the error's Display.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => format!("{e} ({e:?})"),
    }
}

/// Connects through tokio-postgres (the connection driven on a spawned
/// task); panics with the server's error text on failure.
pub async fn connect(url: &str) -> Client {
    sluice_testkit::try_connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {}", describe(&e)))
}

/// A client whose connection task the test owns: aborting it drops the
/// socket without a Terminate message, as a killed process would.
pub struct AbortableClient {
    pub client: Client,
    pub connection: JoinHandle<()>,
}

impl AbortableClient {
    pub async fn connect(url: &str) -> AbortableClient {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {}", describe(&e)));
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        AbortableClient { client, connection }
    }

    /// Drops the socket abruptly (no Terminate) and waits until it is gone.
    pub async fn kill(self) {
        self.connection.abort();
        let _ = self.connection.await;
        drop(self.client);
    }
}

/// A client whose notices and notifications arrive on a channel.
pub async fn connect_with_messages(url: &str) -> (Client, mpsc::UnboundedReceiver<AsyncMessage>) {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {}", describe(&e)));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
            let _ = tx.send(message);
        }
    });
    (client, rx)
}

/// Retries `f` every 100 ms until it returns Ok or `timeout` passes; returns
/// the last result.
pub async fn retry<T, E, F, Fut>(timeout: Duration, mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let r = f().await;
        if r.is_ok() || Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `f` every 50 ms until it is true or `timeout` passes; returns
/// whether it became true.
pub async fn wait_for<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `psql` command through Sluice for `tenant`: no psqlrc, unaligned tuples
/// only, stop on error, password from the environment.
pub fn psql_through(sluice: &SluiceProcess, tenant: &Tenant) -> Command {
    let mut cmd = Command::new(psql_cmd());
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", "127.0.0.1", "-p", &sluice.port.to_string()])
        .args(["-U", &tenant.user, "-d", &tenant.db])
        .env("PGPASSWORD", &tenant.password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .env_remove("PGOPTIONS")
        .env_remove("PGSERVICE")
        .env_remove("PGTZ")
        .env_remove("PGAPPNAME")
        .env_remove("PGDATESTYLE");
    cmd
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last `n` lines of Sluice's log, for assertion messages.
pub fn log_tail(sluice: &SluiceProcess, n: usize) -> String {
    let log = sluice.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A bare-wire PostgreSQL client for what the drivers cannot be made to
/// send: Flush without Sync, several Syncs in one packet, arbitrary startup
/// parameters. Speaks only cleartext password auth (Sluice `auth_type = plain`).
pub struct RawClient {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    /// ParameterStatus messages received at login, in order.
    pub params: Vec<(String, String)>,
}

/// A backend message: tag and body.
pub type RawMessage = (u8, Vec<u8>);

impl RawClient {
    /// Logs in as `user`/`password` to `db` on 127.0.0.1:`port` with extra
    /// startup `params`; panics on any error.
    pub async fn connect(
        port: u16,
        user: &str,
        password: &str,
        db: &str,
        params: &[(&str, &str)],
    ) -> RawClient {
        use tokio::io::AsyncWriteExt;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to Sluice");
        let mut c = RawClient {
            stream,
            buf: Vec::new(),
            params: Vec::new(),
        };
        let mut body = 196608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", db)]
            .iter()
            .chain(params.iter())
        {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        c.stream.write_all(&packet).await.unwrap();
        loop {
            let (tag, body) = c.recv().await;
            match tag {
                b'R' => match u32::from_be_bytes(body[..4].try_into().unwrap()) {
                    0 => {}
                    3 => {
                        let mut pw = password.as_bytes().to_vec();
                        pw.push(0);
                        c.send(b'p', &pw).await;
                    }
                    other => panic!("RawClient: unsupported auth request {other}"),
                },
                b'S' => {
                    let mut parts = body.split(|b| *b == 0);
                    let k = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    let v = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
                    c.params.push((k, v));
                }
                b'K' => {}
                b'Z' => return c,
                b'E' => panic!("RawClient: login failed: {}", error_text(&body)),
                other => panic!("RawClient: unexpected {:?} during login", other as char),
            }
        }
    }

    /// The value of a ParameterStatus seen at login.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Writes one message.
    pub async fn send(&mut self, tag: u8, body: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let bytes = raw_message(tag, body);
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// Writes pre-built messages in one write.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one message (panics on EOF).
    pub async fn recv(&mut self) -> RawMessage {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let tag = self.buf[0];
                    let body = self.buf[5..1 + len].to_vec();
                    self.buf.drain(..1 + len);
                    return (tag, body);
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "RawClient: connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads messages up to and including one with tag `until`.
    pub async fn recv_until(&mut self, until: u8) -> Vec<RawMessage> {
        let mut out = Vec::new();
        loop {
            let m = self.recv().await;
            let done = m.0 == until;
            out.push(m);
            if done {
                return out;
            }
        }
    }

    /// A simple query; the messages up to ReadyForQuery.
    pub async fn simple(&mut self, sql: &str) -> Vec<RawMessage> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(b'Q', &body).await;
        self.recv_until(b'Z').await
    }
}

/// One frontend message.
pub fn raw_message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Parse (unnamed, no parameter types) + Bind (unnamed portal, no
/// parameters, text results) + Execute (all rows) for `sql`.
pub fn raw_parse_bind_execute(sql: &str) -> Vec<u8> {
    let mut parse = vec![0u8]; // unnamed statement
    parse.extend_from_slice(sql.as_bytes());
    parse.push(0);
    parse.extend_from_slice(&0u16.to_be_bytes());
    let mut bind = vec![0u8, 0u8]; // unnamed portal, unnamed statement
    bind.extend_from_slice(&0u16.to_be_bytes()); // parameter formats
    bind.extend_from_slice(&0u16.to_be_bytes()); // parameters
    bind.extend_from_slice(&0u16.to_be_bytes()); // result formats
    let mut execute = vec![0u8];
    execute.extend_from_slice(&0u32.to_be_bytes());
    let mut out = raw_message(b'P', &parse);
    out.extend(raw_message(b'B', &bind));
    out.extend(raw_message(b'E', &execute));
    out
}

/// The first column of each DataRow among `messages`, as text.
pub fn raw_values(messages: &[RawMessage]) -> Vec<String> {
    messages
        .iter()
        .filter(|(tag, _)| *tag == b'D')
        .map(|(_, body)| {
            let len = i32::from_be_bytes(body[2..6].try_into().unwrap());
            if len < 0 {
                "NULL".to_owned()
            } else {
                String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned()
            }
        })
        .collect()
}

/// The message field of an ErrorResponse body (with its SQLSTATE).
pub fn error_text(body: &[u8]) -> String {
    let mut code = String::new();
    let mut message = String::new();
    for field in body.split(|b| *b == 0) {
        match field.first() {
            Some(b'C') => code = String::from_utf8_lossy(&field[1..]).into_owned(),
            Some(b'M') => message = String::from_utf8_lossy(&field[1..]).into_owned(),
            _ => {}
        }
    }
    format!("{code}: {message}")
}

/// The tags of `messages`, as a string (e.g. "12DCZ").
pub fn raw_tags(messages: &[RawMessage]) -> String {
    messages.iter().map(|(t, _)| *t as char).collect()
}

/// A private cluster (for stopping, restarting, SIGSTOP) with one tenant
/// whose role and database are both `name` (password `pw`, SCRAM).
pub fn private_cluster(name: &str) -> (PgCluster, Tenant) {
    let cluster = PgCluster::start(ClusterOptions {
        auth: HbaAuth::Scram,
        users: vec![(name.to_owned(), "pw".to_owned())],
        databases: vec![(name.to_owned(), name.to_owned())],
        ..Default::default()
    });
    let tenant = Tenant {
        user: name.to_owned(),
        password: "pw".to_owned(),
        db: name.to_owned(),
    };
    (cluster, tenant)
}

/// SIGCONT for a SIGSTOPped process when dropped, so that a failing test
/// never leaves a stopped postmaster behind.
pub struct Resume(pub i32);

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid; no memory involved.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// Reads one whole message (tag, body) from a raw socket within 10 s.
pub async fn read_raw_message(s: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut head))
        .await
        .expect("no reply within 10 s")
        .expect("connection closed");
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    s.read_exact(&mut body)
        .await
        .expect("connection closed mid-message");
    (head[0], body)
}
