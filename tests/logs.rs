//! Log lines operators grep for, in PgBouncer's shape; the logfile
//! reopened on SIGHUP (logrotate); JSON lines; syslog.

mod common;

use std::time::Duration;

use common::*;
use sluice_testkit::{PgCluster, SluiceProcess};

/// Waits until the log contains `needle` (log lines are written as events
/// happen, from other threads).
fn wait_log(sluice: &SluiceProcess, path: &std::path::Path, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || std::time::Instant::now() > deadline {
            assert!(
                text.contains(needle),
                "no {needle:?} in {}:\n{}\n--- process output ---\n{}",
                path.display(),
                text,
                log_tail(sluice, 20)
            );
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_and_server_events_are_logged_in_pgbouncers_shape() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "logshape");
    let sections = format!(
        "[databases]\nwrongpw = host=127.0.0.1 port={} dbname={} user={} password=nope\n",
        cluster.port, tenant.db, tenant.user
    );
    let ini = ini_with_sections(
        cluster,
        "transaction",
        1,
        &format!(
            "reserve_pool_size = 1\nreserve_pool_timeout = 0.2\nadmin_users = {}",
            tenant.user
        ),
        "",
    )
    .replacen("[databases]\n", &sections, 1);
    let sluice = SluiceProcess::start(sluice_bin(), &ini, &tenant.userlist());
    let log = sluice.log_path.clone();

    let app = connect(&tenant.url(&sluice)).await;
    first_value(&app, "SELECT 1").await;
    let text = wait_log(&sluice, &log, "login attempt");
    let db_user = format!("{}/{}@127.0.0.1:", tenant.db, tenant.user);
    let login = text
        .lines()
        .find(|l| l.contains("login attempt"))
        .unwrap()
        .to_string();
    assert!(login.contains(" C-0x"), "{login}");
    assert!(login.contains(&db_user), "{login}");
    assert!(
        login.contains(&format!(
            "login attempt: db={} user={} tls=no",
            tenant.db, tenant.user
        )),
        "{login}"
    );
    let text = wait_log(&sluice, &log, "new connection to server (from 127.0.0.1:");
    let server = text
        .lines()
        .find(|l| l.contains("new connection to server"))
        .unwrap();
    let server_at = format!("{}/{}@127.0.0.1:{}", tenant.db, tenant.user, cluster.port);
    assert!(
        server.contains(" S-0x") && server.contains(&server_at),
        "{server}"
    );

    // The reserve pool: one client holds the only server, another waits
    // past reserve_pool_timeout.
    app.batch_execute("BEGIN").await.unwrap();
    let other = connect(&tenant.url(&sluice)).await;
    first_value(&other, "SELECT 2").await;
    wait_log(&sluice, &log, "taking connection from reserve_pool");
    app.batch_execute("COMMIT").await.unwrap();

    // A pooler error, and a failed server login.
    let refused =
        sluice_testkit::try_connect(&sluice.url(&tenant.user, &tenant.password, "wrongpw")).await;
    assert!(
        refused.is_err(),
        "the server refuses the forced user's password"
    );
    let text = wait_log(&sluice, &log, "server login failed: ");
    assert!(
        text.lines().any(|l| l.contains("server login failed: ")
            && l.contains(&format!(
                "wrongpw/{}@127.0.0.1:{}",
                tenant.user, cluster.port
            ))),
        "{text}"
    );
    drop(app);
    let text = wait_log(&sluice, &log, "closing because: client close request (age=");
    assert!(text
        .lines()
        .any(|l| l.contains(&db_user) && l.contains("closing because: client close request")));

    // RECONNECT closes servers with the reason.
    let c = connect(&sluice.url(&tenant.user, &tenant.password, "pgbouncer")).await;
    c.simple_query("RECONNECT").await.unwrap();
    wait_log(&sluice, &log, "closing because: RECONNECT (age=");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logfile_is_reopened_on_sighup_after_logrotate_moved_it() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "logrotate");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        2,
        "logfile = {dir}/file.log",
    );
    let file = sluice.dir.join("file.log");
    let app = connect(&tenant.url(&sluice)).await;
    first_value(&app, "SELECT 1").await;
    wait_log(&sluice, &file, "login attempt");
    let rotated = sluice.dir.join("file.log.1");
    std::fs::rename(&file, &rotated).unwrap();
    sluice.signal(libc::SIGHUP);
    // The reload is logged after the reopen: from then on lines go to the
    // new file.
    wait_log(&sluice, &file, "configuration reloaded");
    let again = connect(&tenant.url(&sluice)).await;
    first_value(&again, "SELECT 2").await;
    wait_log(&sluice, &file, "login attempt");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(
        old.matches("login attempt").count(),
        1,
        "the rotated file got new lines:\n{old}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_json_object_per_line() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "logjson");
    let sluice = start_sluice(cluster, &tenant, "transaction", 2, "log_format = json");
    let app = connect(&tenant.url(&sluice)).await;
    first_value(&app, "SELECT 1").await;
    let text = wait_log(&sluice, &sluice.log_path, "login attempt");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            l.starts_with('{') && l.ends_with('}') && l.contains("\"level\":"),
            "not a JSON line: {l}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l.contains("\"level\":\"INFO\"") && l.contains("login attempt")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_receives_the_lines_when_enabled() {
    // glibc's syslog() writes to /dev/log. Where nothing listens there
    // (containers, CI) the test listens itself; a host syslog daemon
    // would take the lines instead, so the test is skipped there.
    let path = std::path::Path::new("/dev/log");
    if path.exists() {
        eprintln!("/dev/log belongs to the system's syslog daemon: syslog test skipped");
        return;
    }
    let sock = match std::os::unix::net::UnixDatagram::bind(path) {
        Ok(s) => s,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot listen on /dev/log in CI: {e}"
            );
            eprintln!("cannot listen on /dev/log ({e}): syslog test skipped");
            return;
        }
    };
    struct Remove;
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file("/dev/log");
        }
    }
    let _remove = Remove;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "syslog");
    let sluice = start_sluice(
        cluster,
        &tenant,
        "transaction",
        2,
        "syslog = 1\nsyslog_ident = sluicetest\nsyslog_facility = local3",
    );
    let app = connect(&tenant.url(&sluice)).await;
    first_value(&app, "SELECT 1").await;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        let done = msg.contains("login attempt");
        seen.push(msg);
        if done {
            break;
        }
    }
    let hit = seen
        .iter()
        .find(|m| m.contains("login attempt"))
        .unwrap_or_else(|| panic!("no login line over syslog: {seen:?}"));
    // <priority>: local3 (19) * 8 + info (6) = 158.
    assert!(hit.starts_with("<158>"), "{hit}");
    assert!(hit.contains("sluicetest["), "{hit}");
}
