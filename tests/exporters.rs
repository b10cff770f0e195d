//! Prometheus exporters written for PgBouncer, pointed at Sluice's admin
//! console: spreaker's prometheus-pgbouncer-exporter (PyPI, 2.1.2, psycopg2)
//! runs SHOW STATS, POOLS, DATABASES and CONFIG and turns the columns it
//! knows into metrics. scripts/test installs it into .local/exporter and says
//! where (SLUICE_PGBOUNCER_EXPORTER); without it the test is skipped locally
//! and fails in CI.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sluice_testkit::{free_port, PgCluster, SluiceProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn exporter() -> Option<PathBuf> {
    match std::env::var_os("SLUICE_PGBOUNCER_EXPORTER") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "SLUICE_PGBOUNCER_EXPORTER is not set: run the suite with scripts/test"
            );
            eprintln!(
                "SLUICE_PGBOUNCER_EXPORTER not set (run scripts/test): pgbouncer-exporter test skipped"
            );
            None
        }
    }
}

/// Sluice for `tenant` with the tenant as admin and `watcher` (password
/// `wpw`) as a stats-only user, as an exporter would log in.
fn start_with_console(cluster: &PgCluster, tenant: &Tenant) -> SluiceProcess {
    let ini = ini(
        cluster,
        "transaction",
        2,
        &format!(
            "admin_users = {}\nstats_users = watcher\nstats_period = 1\n",
            tenant.user
        ),
    );
    let users = format!("{}\"watcher\" \"wpw\"\n", tenant.userlist());
    SluiceProcess::start(sluice_bin(), &ini, &users)
}

/// The exporter process, killed (and reaped) when dropped; its stdout and
/// stderr go to `log`.
struct Exporter {
    child: Child,
    log: PathBuf,
}

impl Exporter {
    fn start(script: &Path, config: &Path, log: PathBuf) -> Exporter {
        let out = File::create(&log).expect("create exporter log");
        let err = out.try_clone().expect("clone exporter log");
        let child = Command::new(script)
            .arg("--config")
            .arg(config)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", script.display()));
        Exporter { child, log }
    }

    fn output(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:port (HTTP/1.0, so the server closes): the status
/// code and the body.
async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// The value of the sample whose name and labels are exactly `key` (e.g.
/// `pgbouncer_up` or `m{database="x"}`), from the text exposition format.
fn sample(body: &str, key: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// What must be in the exporter's answer; the first thing missing, if any.
fn missing(body: &str, tenant: &Tenant) -> Option<String> {
    let pools = format!(
        "pgbouncer_pools_client_active_connections{{database=\"{}\",user=\"{}\"}}",
        tenant.db, tenant.user
    );
    let queries = format!(
        "pgbouncer_stats_queries_total{{database=\"{}\"}}",
        tenant.db
    );
    if !body.lines().any(|l| l == "pgbouncer_up 1.0") {
        return Some(format!(
            "`pgbouncer_up 1.0` (got {:?})",
            sample(body, "pgbouncer_up")
        ));
    }
    if sample(body, &pools).is_none() {
        return Some(pools);
    }
    match sample(body, &queries) {
        Some(n) if n > 0.0 => {}
        other => return Some(format!("{queries} > 0 (got {other:?})")),
    }
    // The ini's default_pool_size and max_client_conn.
    let pool_size = format!(
        "pgbouncer_databases_database_pool_size{{backend_database=\"{0}\",database=\"{0}\"}}",
        tenant.db
    );
    for (key, want) in [
        (pool_size.as_str(), 2.0),
        ("pgbouncer_config_max_client_conn", 500.0),
    ] {
        match sample(body, key) {
            Some(v) if v == want => {}
            other => return Some(format!("{key} {want} (got {other:?})")),
        }
    }
    None
}

/// The lines where the exporter reports a failure: "Unable run query …",
/// "Unable fetch metrics …" (level ERROR), or a Python traceback.
fn error_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| l.contains("Unable") || l.contains("Traceback") || l.contains("\"ERROR\""))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreaker_pgbouncer_exporter_reads_the_console_without_errors() {
    let Some(script) = exporter() else { return };
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "exporter");
    let sluice = start_with_console(cluster, &tenant);

    // Traffic, so the tenant's pool and its counters exist; the client stays
    // connected while the exporter scrapes.
    let client = connect(&tenant.url(&sluice)).await;
    for i in 0..3 {
        let v = first_value(&client, &format!("SELECT {i} + 1")).await;
        assert_eq!(v, (i + 1).to_string());
    }

    let http_port = free_port();
    let config = sluice.dir.join("exporter.yml");
    std::fs::write(
        &config,
        format!(
            "exporter_host: 127.0.0.1\n\
             exporter_port: {http_port}\n\
             pgbouncers:\n  \
               - dsn: postgresql://watcher:wpw@127.0.0.1:{}/pgbouncer\n    \
                 connect_timeout: 5\n",
            sluice.port
        ),
    )
    .expect("write exporter config");
    let mut exporter = Exporter::start(&script, &config, sluice.dir.join("exporter.log"));

    let report = |exporter: &Exporter, what: &str| {
        format!(
            "{what}\n--- exporter output ---\n{}\n--- sluice log tail ---\n{}",
            exporter.output(),
            log_tail(&sluice, 30)
        )
    };

    // Each GET makes the exporter query the console afresh; poll until the
    // answer has everything (the stats may trail the queries a little).
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let mut last: String;
    let mut body = String::new();
    loop {
        let errors = error_lines(&exporter.output()).join("\n");
        if !errors.is_empty() {
            panic!(
                "{}",
                report(&exporter, &format!("exporter logged errors:\n{errors}"))
            );
        }
        if let Some(status) = exporter.exited() {
            panic!(
                "{}",
                report(&exporter, &format!("exporter exited: {status}"))
            );
        }
        match http_get(http_port, "/metrics").await {
            Ok((200, b)) => {
                body = b;
                match missing(&body, &tenant) {
                    None => break,
                    Some(m) => last = format!("missing {m}"),
                }
            }
            Ok((status, b)) => last = format!("HTTP {status}: {b}"),
            Err(e) => last = format!("GET /metrics: {e}"),
        }
        if Instant::now() >= deadline {
            panic!(
                "{}",
                report(
                    &exporter,
                    &format!(
                        "exporter metrics incomplete after 20 s: {last}\n--- metrics ---\n{body}"
                    )
                )
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "pgbouncer-exporter answered completely after {:?}:",
        started.elapsed()
    );
    for line in body.lines().filter(|l| l.contains(&tenant.db)) {
        eprintln!("  {line}");
    }

    let output = exporter.output();
    let errors = error_lines(&output);
    assert!(
        errors.is_empty(),
        "{}",
        report(&exporter, &format!("exporter logged errors: {errors:#?}"))
    );
    drop(client);
}
