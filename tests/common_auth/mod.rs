//! Helpers shared by the authentication (`tests/auth.rs`) and command-line /
//! signal (`tests/cli.rs`) end-to-end tests: building a pgbouncer.ini and a
//! userlist for the shared cluster, logging in with tokio-postgres and
//! reading the error a login ends with, looking at the raw authentication
//! request Sluice sends, and running the binary with flags of our choosing.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sluice_testkit::{PgCluster, SluiceProcess};
use tokio_postgres::{Client, NoTls};

/// The `sluice` binary built for these tests.
pub fn sluice_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

/// The cluster shared by every test of this process.
pub fn cluster() -> &'static PgCluster {
    PgCluster::shared()
}

/// `name = host=127.0.0.1 port=<cluster port> <rest>`, a [databases] line.
pub fn db_line(name: &str, rest: &str) -> String {
    format!("{name} = host=127.0.0.1 port={} {rest}", cluster().port)
}

/// A whole pgbouncer.ini for [`SluiceProcess::start`]: the given [databases]
/// lines, then [pgbouncer] with `auth_type`, listening on `{port}` of
/// 127.0.0.1 only, `auth_file = {dir}/userlist.txt`, transaction pooling,
/// and `extra` lines appended to [pgbouncer] (later keys win).
pub fn ini(auth_type: &str, databases: &[String], extra: &[&str]) -> String {
    let mut text = String::from("[databases]\n");
    for line in databases {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {{port}}\n\
         unix_socket_dir =\n\
         auth_type = {auth_type}\n\
         auth_file = {{dir}}/userlist.txt\n\
         pool_mode = transaction\n\
         default_pool_size = 5\n\
         max_client_conn = 100\n"
    ));
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// The usual databases: `sluice_db` (logs in as the client's user) and
/// `forced` (always logs in as sluice_user/sluice_pw, whoever the client is).
pub fn standard_databases() -> Vec<String> {
    vec![
        db_line("sluice_db", "dbname=sluice_db"),
        db_line(
            "forced",
            "dbname=sluice_db user=sluice_user password=sluice_pw",
        ),
    ]
}

/// Quotes one userlist.txt field: `"` around it, `""` for a quote inside.
pub fn userlist_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// userlist.txt text with one `"user" "secret"` line per entry.
pub fn userlist(entries: &[(&str, &str)]) -> String {
    let mut text = String::new();
    for (user, secret) in entries {
        text.push_str(&userlist_field(user));
        text.push(' ');
        text.push_str(&userlist_field(secret));
        text.push('\n');
    }
    text
}

/// The stored password of `role` in the shared cluster (a SCRAM verifier
/// or an md5 hash, as PostgreSQL keeps it).
pub fn stored_secret(role: &str) -> String {
    let secret = cluster().psql(
        "postgres",
        &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
    );
    assert!(!secret.is_empty(), "role {role} has no stored password");
    secret
}

/// `md5` + md5(password || user), the md5 userlist secret.
pub fn md5_secret(user: &str, password: &str) -> String {
    cluster().psql(
        "postgres",
        &format!(
            "SELECT 'md5' || md5('{}' || '{}')",
            password.replace('\'', "''"),
            user.replace('\'', "''")
        ),
    )
}

/// Starts Sluice with `ini` and `userlist` (panics with its log on failure).
pub fn start_sluice(ini: &str, userlist: &str) -> SluiceProcess {
    SluiceProcess::start(&sluice_binary(), ini, userlist)
}

/// Logs in to Sluice at `port` as `user` (password `password`, none if
/// empty) to `db`, without TLS; gives up after 10 s.
pub async fn login(
    port: u16,
    user: &str,
    password: &str,
    db: &str,
) -> Result<Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname(db)
        .connect_timeout(Duration::from_secs(10));
    if !password.is_empty() {
        config.password(password);
    }
    let (client, connection) =
        match tokio::time::timeout(Duration::from_secs(15), config.connect(NoTls)).await {
            Ok(result) => result?,
            Err(_) => panic!("login as {user} to {db} on port {port} hung for 15 s"),
        };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Like [`login`], but panics (with the error) unless it succeeds.
pub async fn login_ok(port: u16, user: &str, password: &str, db: &str) -> Client {
    match login(port, user, password, db).await {
        Ok(client) => client,
        Err(e) => panic!(
            "login as {user} to {db} on port {port} failed: {}",
            describe(&e)
        ),
    }
}

/// A login that must fail: returns (SQLSTATE, message) of the server error.
pub async fn login_error(port: u16, user: &str, password: &str, db: &str) -> (String, String) {
    match login(port, user, password, db).await {
        Ok(_) => panic!("login as {user} to {db} on port {port} succeeded, but it must fail"),
        Err(e) => db_error(&e).unwrap_or_else(|| {
            panic!(
                "login as {user} to {db} failed without an ErrorResponse: {}",
                describe(&e)
            )
        }),
    }
}

/// (SQLSTATE, message) of an error that came as an ErrorResponse.
pub fn db_error(e: &tokio_postgres::Error) -> Option<(String, String)> {
    e.as_db_error()
        .map(|db| (db.code().code().to_owned(), db.message().to_owned()))
}

/// An error with its SQLSTATE and severity when there is one.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} {} {} (detail: {:?})",
            db.severity(),
            db.code().code(),
            db.message(),
            db.detail()
        ),
        None => format!("{e} ({e:?})"),
    }
}

/// The first column of the first row of `sql`, run with the simple query
/// protocol (no named statements, which transaction pooling does not carry).
pub async fn scalar(client: &Client, sql: &str) -> String {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql:?} failed: {}", describe(&e)));
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            return row.get(0).unwrap_or("").to_owned();
        }
    }
    panic!("{sql:?} returned no rows")
}

/// What Sluice answers a StartupMessage with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    /// AuthenticationOk straight away (no password asked).
    Ok,
    /// AuthenticationCleartextPassword.
    Cleartext,
    /// AuthenticationMD5Password.
    Md5,
    /// AuthenticationSASL with these mechanisms.
    Sasl(Vec<String>),
    /// Another authentication request code.
    Other(i32),
    /// An ErrorResponse: (SQLSTATE, message).
    Error(String, String),
}

/// Sends a StartupMessage for `user`/`db` over a raw socket and reports the
/// first answer, without answering any challenge.
pub fn auth_request(port: u16, user: &str, db: &str) -> AuthRequest {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set_read_timeout");
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [("user", user), ("database", db)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    stream.write_all(&packet).expect("send StartupMessage");

    let mut header = [0u8; 5];
    stream
        .read_exact(&mut header)
        .unwrap_or_else(|e| panic!("no answer to the StartupMessage: {e}"));
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    assert!(
        (4..=1 << 20).contains(&len),
        "implausible message length {len}"
    );
    let mut payload = vec![0u8; len - 4];
    stream.read_exact(&mut payload).expect("message body");
    match header[0] {
        b'R' => {
            let code = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            match code {
                0 => AuthRequest::Ok,
                3 => AuthRequest::Cleartext,
                5 => AuthRequest::Md5,
                10 => AuthRequest::Sasl(
                    payload[4..]
                        .split(|b| *b == 0)
                        .filter(|s| !s.is_empty())
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                ),
                other => AuthRequest::Other(other),
            }
        }
        b'E' => {
            let mut code = String::new();
            let mut message = String::new();
            for field in payload.split(|b| *b == 0).filter(|f| !f.is_empty()) {
                let value = String::from_utf8_lossy(&field[1..]).into_owned();
                match field[0] {
                    b'C' => code = value,
                    b'M' => message = value,
                    _ => {}
                }
            }
            AuthRequest::Error(code, message)
        }
        other => panic!("unexpected first message type {:?}", other as char),
    }
}

/// Polls (without blocking the runtime) until `process` exits or `timeout`
/// passes.
pub async fn wait_exit(process: &mut SluiceProcess, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = process.wait_exit(Duration::ZERO) {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the text of `read()` contains `needle`; false on timeout.
pub async fn wait_for_text(read: impl Fn() -> String, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if read().contains(needle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until Sluice's log contains `needle`; false on timeout.
pub async fn wait_for_log(process: &SluiceProcess, needle: &str, timeout: Duration) -> bool {
    wait_for_text(|| process.log(), needle, timeout).await
}

/// A private, empty directory, removed on drop (kept when the test fails).
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sluice-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `text` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A Sluice command with `args`, without the config-overlay and log-filter
/// variables of the caller's environment.
pub fn sluice_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(sluice_binary());
    cmd.args(args).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("PGBOUNCER_")
            || key.starts_with("DATABASES_")
            || key == "DATABASE_URL"
            || key == "DATABASES"
            || key == "SLUICE_LOG"
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs `sluice args…` to completion (killing it after `timeout`, which
/// fails the test) and returns its output.
pub fn run_to_exit(args: &[&str], timeout: Duration) -> Output {
    let mut child = sluice_command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sluice: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait for sluice");
                panic!(
                    "sluice {args:?} still running after {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    child.wait_with_output().expect("wait for sluice")
}

/// A Sluice started in the foreground with chosen flags, its stdout and
/// stderr going to separate files. Killed on drop.
pub struct Foreground {
    pub child: Child,
    pub port: u16,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl Foreground {
    /// Starts `sluice flags… ini_path` and waits until `port` accepts TCP.
    pub fn start(dir: &TempDir, flags: &[&str], ini_path: &Path, port: u16) -> Foreground {
        let stdout_path = dir.join("stdout.txt");
        let stderr_path = dir.join("stderr.txt");
        let stdout = std::fs::File::create(&stdout_path).expect("stdout file");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut args: Vec<&str> = flags.to_vec();
        let ini = ini_path.to_string_lossy().into_owned();
        args.push(&ini);
        let child = sluice_command(&args)
            .current_dir(&dir.path)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sluice: {e}"));
        let mut fg = Foreground {
            child,
            port,
            stdout_path,
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = fg.child.try_wait() {
                panic!(
                    "sluice {flags:?} exited with {status} before listening\n--- stderr ---\n{}",
                    fg.stderr()
                );
            }
            if TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return fg;
            }
            if Instant::now() > deadline {
                panic!(
                    "sluice {flags:?} not listening on {port} after 20 s\n--- stderr ---\n{}",
                    fg.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    pub fn signal(&self, sig: i32) {
        send_signal(self.child.id() as i32, sig);
    }

    /// Polls until the process exits or `timeout` passes.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of a file, or "" when it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

pub fn send_signal(pid: i32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether `pid` names a live process (a zombie counts as gone).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X') | None)
        }
        Err(_) => false,
    }
}

/// A free port for a Sluice started by hand.
pub fn free_port() -> u16 {
    sluice_testkit::free_port()
}
