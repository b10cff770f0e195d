//! The testkit's PostgreSQL clusters: they start, answer psql, enforce the
//! auth they were asked for, survive restarts, and clean up after themselves
//! even when the test process dies.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_testkit::{
    connect, pg_bin_dir, pgbench, psql_cmd, try_connect, ClusterOptions, HbaAuth, PgCluster,
};

fn sqlstate(err: &tokio_postgres::Error) -> Option<String> {
    err.as_db_error().map(|db| db.code().code().to_owned())
}

#[test]
fn pg_bin_dir_holds_the_server_binaries() {
    let dir = pg_bin_dir();
    for tool in ["initdb", "pg_ctl", "postgres"] {
        assert!(
            dir.join(tool).is_file(),
            "{tool} missing in {}",
            dir.display()
        );
    }
    let out = Command::new(psql_cmd()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let out = pgbench(&["--version"], &[]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn shared_cluster_answers_psql_as_superuser() {
    let pg = PgCluster::shared();
    assert_eq!(pg.host, "127.0.0.1");
    assert_eq!(pg.psql("postgres", "SELECT current_user"), "postgres");
    assert_eq!(
        pg.psql("sluice_db", "SELECT current_database()"),
        "sluice_db"
    );
    let owner = pg.psql(
        "postgres",
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'sluice_db'",
    );
    assert_eq!(owner, "sluice_user");
    assert_eq!(pg.psql("postgres", "SELECT 1; SELECT 2"), "1\n2");
}

#[test]
fn try_psql_reports_sql_errors() {
    let pg = PgCluster::shared();
    let err = pg
        .try_psql("postgres", "SELECT * FROM no_such_table")
        .unwrap_err();
    assert!(err.contains("no_such_table"), "{err}");
}

#[test]
fn shared_cluster_stores_each_users_secret_kind() {
    let pg = PgCluster::shared();
    let kinds = pg.psql(
        "postgres",
        "SELECT rolname || '=' || split_part(rolpassword, '$', 1) FROM pg_authid \
         WHERE rolname IN ('md5_user', 'scram_user', 'sluice_user') ORDER BY rolname",
    );
    let kinds: Vec<&str> = kinds.lines().collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(kinds[0].starts_with("md5_user=md5"), "{kinds:?}");
    assert_eq!(kinds[1], "scram_user=SCRAM-SHA-256");
    assert_eq!(kinds[2], "sluice_user=SCRAM-SHA-256");
}

#[tokio::test]
async fn md5_user_logs_in_over_tcp_with_its_password_only() {
    let pg = PgCluster::shared();
    let client = connect(&pg.url("md5_user", "md5_pw", "postgres")).await;
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "md5_user");

    let Err(err) = try_connect(&pg.url("md5_user", "wrong", "postgres")).await else {
        panic!("wrong password must be refused");
    };
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
}

#[tokio::test]
async fn scram_user_logs_in_over_tcp_with_its_password_only() {
    let pg = PgCluster::shared();
    let client = connect(&pg.url("scram_user", "scram_pw", "postgres")).await;
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "scram_user");

    let Err(err) = try_connect(&pg.url("scram_user", "md5_pw", "postgres")).await else {
        panic!("wrong password must be refused");
    };
    assert_eq!(sqlstate(&err).as_deref(), Some("28P01"), "{err}");
}

#[tokio::test]
async fn sluice_user_owns_and_reaches_sluice_db() {
    let pg = PgCluster::shared();
    let client = connect(&pg.url("sluice_user", "sluice_pw", "sluice_db")).await;
    client
        .batch_execute("CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let row = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn superuser_needs_no_password_on_tcp() {
    let pg = PgCluster::shared();
    let client = connect(&pg.superuser_url("postgres")).await;
    let row = client
        .query_one("SELECT current_setting('is_superuser')", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "on");
}

#[tokio::test]
async fn own_md5_cluster_survives_restart_stop_and_start() {
    let pg = PgCluster::start(ClusterOptions {
        auth: HbaAuth::Md5,
        users: vec![("alice".into(), "alice pw!".into())],
        databases: vec![("alice_db".into(), "alice".into())],
        max_connections: 30,
        extra_conf: vec!["application_name = 'from_extra_conf'".into()],
        ..Default::default()
    });
    assert_eq!(pg.psql("postgres", "SHOW max_connections"), "30");
    assert_eq!(pg.psql("postgres", "SHOW application_name"), "psql");
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT setting FROM pg_settings WHERE name = 'fsync'"
        ),
        "off"
    );
    let stored = pg.psql(
        "postgres",
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'",
    );
    assert!(stored.starts_with("md5"), "{stored}");

    let url = pg.url("alice", "alice pw!", "alice_db");
    let client = connect(&url).await;
    client.simple_query("SELECT 1").await.unwrap();
    assert!(try_connect(&pg.url("alice", "nope", "alice_db"))
        .await
        .is_err());

    let port = pg.port;
    pg.restart();
    assert_eq!(pg.port, port);
    assert!(
        client.simple_query("SELECT 1").await.is_err(),
        "old session survived restart"
    );
    let client = connect(&url).await;
    client.simple_query("SELECT 1").await.unwrap();

    pg.stop();
    assert!(
        try_connect(&url).await.is_err(),
        "stopped cluster accepted a connection"
    );
    pg.start_again();
    connect(&url).await.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn trust_cluster_accepts_any_password() {
    let pg = PgCluster::start(ClusterOptions {
        users: vec![("bob".into(), "bob_pw".into())],
        ..Default::default()
    });
    let client = connect(&pg.url("bob", "whatever", "postgres")).await;
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "bob");
}

#[tokio::test]
async fn write_hba_takes_effect_for_new_connections() {
    let pg = PgCluster::start(ClusterOptions {
        users: vec![("carol".into(), "carol_pw".into())],
        ..Default::default()
    });
    connect(&pg.url("carol", "wrong", "postgres")).await;
    pg.write_hba(
        "local all postgres trust\n\
         host all postgres 127.0.0.1/32 trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n",
    );
    assert!(try_connect(&pg.url("carol", "wrong", "postgres"))
        .await
        .is_err());
    connect(&pg.url("carol", "carol_pw", "postgres")).await;
}

#[test]
fn dropping_a_cluster_stops_it_and_removes_its_directory() {
    let pg = PgCluster::start(ClusterOptions::default());
    let dir = pg.base_dir.clone();
    let pid = pg.postmaster_pid().expect("running");
    assert!(dir.join("data").is_dir());
    drop(pg);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!process_alive(pid), "postmaster {pid} still running");
}

fn process_alive(pid: i32) -> bool {
    // A zombie counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

const HELPER_ENV: &str = "SLUICE_TESTKIT_HELPER";

/// Runs one of the helper "tests" below in a child process and returns the
/// cluster directory and postmaster pid it printed, once the child is gone.
fn run_helper(name: &str) -> (PathBuf, i32) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut dir = None;
    let mut pid = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest may print "test <name> ... " on the same line first.
        if let Some((_, v)) = line.split_once("HELPER_DIR=") {
            dir = Some(PathBuf::from(v));
        }
        if let Some((_, v)) = line.split_once("HELPER_PID=") {
            pid = Some(v.parse().unwrap());
        }
    }
    child.wait().unwrap();
    (
        dir.expect("helper printed its dir"),
        pid.expect("helper printed the pid"),
    )
}

fn wait_gone(dir: &Path, pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !dir.exists() && !process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
#[ignore = "helper: run by watchdog_cleans_up_after_an_aborted_test_process"]
fn helper_start_cluster_and_abort() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let pg = PgCluster::start(ClusterOptions::default());
    println!("HELPER_DIR={}", pg.base_dir.display());
    println!("HELPER_PID={}", pg.postmaster_pid().unwrap());
    std::process::abort();
}

#[test]
#[ignore = "helper: run by shared_cluster_is_stopped_when_the_process_exits"]
fn helper_start_shared_cluster_and_exit() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let pg = PgCluster::shared();
    println!("HELPER_DIR={}", pg.base_dir.display());
    println!("HELPER_PID={}", pg.postmaster_pid().unwrap());
}

#[test]
fn watchdog_cleans_up_after_an_aborted_test_process() {
    let (dir, pid) = run_helper("helper_start_cluster_and_abort");
    assert!(
        wait_gone(&dir, pid, Duration::from_secs(20)),
        "cluster of aborted process left behind: {} / pid {pid}",
        dir.display()
    );
}

#[test]
fn shared_cluster_is_stopped_when_the_process_exits() {
    let (dir, pid) = run_helper("helper_start_shared_cluster_and_exit");
    assert!(
        wait_gone(&dir, pid, Duration::from_secs(20)),
        "shared cluster left behind: {} / pid {pid}",
        dir.display()
    );
}
