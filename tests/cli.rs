//! End-to-end: Sluice's command line (-V, -h, -R, -q, -v, -d), config
//! errors at start, the pidfile, and the signals PgBouncer operators rely on
//! (SIGHUP reload, SIGTERM/SIGINT graceful shutdown, SIGQUIT immediate).

mod common_auth;

use std::time::Duration;

use common_auth::{
    db_line, free_port, login, login_error, login_ok, process_alive, read_lossy, run_to_exit,
    scalar, send_signal, standard_databases, start_sluice, userlist, wait_exit, wait_for_log,
    wait_for_text, Foreground, TempDir,
};

fn sluice_userlist() -> String {
    userlist(&[("sluice_user", "sluice_pw")])
}

/// A scram-sha-256 ini on `{port}` with the standard databases.
fn basic_ini(extra: &[&str]) -> String {
    common_auth::ini("scram-sha-256", &standard_databases(), extra)
}

/// A complete ini for a Sluice started by hand on `port`, with its auth_file
/// in `dir`.
fn hand_ini(dir: &TempDir, port: u16, extra: &[&str]) -> String {
    basic_ini(extra)
        .replace("{port}", &port.to_string())
        .replace("{dir}", &dir.path.to_string_lossy())
}

const SHORT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- flags

#[test]
fn version_flag_prints_the_name_and_version_and_exits_zero() {
    for flag in ["-V", "--version"] {
        let out = run_to_exit(&[flag], SHORT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        assert!(
            stdout.starts_with(&format!("Sluice {}", env!("CARGO_PKG_VERSION"))),
            "{flag} printed: {stdout:?}"
        );
    }
}

#[test]
fn help_flag_prints_usage_and_exits_zero() {
    for flag in ["-h", "--help"] {
        let out = run_to_exit(&[flag], SHORT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flag}: {:?}", out.status);
        assert!(stdout.contains("Usage"), "{flag} printed: {stdout}");
        for option in ["-d", "-q", "-v", "-V", "-h"] {
            assert!(stdout.contains(option), "{flag} does not mention {option}");
        }
    }
}

#[test]
fn reboot_flag_is_refused_as_not_supported() {
    let dir = TempDir::new("reboot");
    let ini = dir.write("pgbouncer.ini", &hand_ini(&dir, free_port(), &[]));
    for flag in ["-R", "--reboot"] {
        let out = run_to_exit(&[flag, &ini.to_string_lossy()], SHORT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} must fail");
        assert!(stderr.contains("not supported"), "{flag} said: {stderr}");
    }
}

#[test]
fn an_unknown_option_is_an_error() {
    let out = run_to_exit(&["-x", "whatever.ini"], SHORT);
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty(), "an error must say why");
}

#[test]
fn no_config_file_argument_is_an_error() {
    let out = run_to_exit(&[], SHORT);
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty(), "an error must say why");
}

#[test]
fn a_missing_config_file_makes_it_exit_nonzero_naming_the_file() {
    let dir = TempDir::new("missing");
    let path = dir.join("does-not-exist.ini");
    let out = run_to_exit(&[&path.to_string_lossy()], SHORT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("does-not-exist.ini"),
        "stderr must name the file: {stderr}"
    );
}

#[test]
fn an_invalid_value_exits_1_naming_the_file_and_line() {
    let dir = TempDir::new("invalid");
    let text = hand_ini(&dir, free_port(), &["max_client_conn = abc"]);
    let line = text
        .lines()
        .position(|l| l.trim() == "max_client_conn = abc")
        .unwrap()
        + 1;
    let ini = dir.write("pgbouncer.ini", &text);
    dir.write("userlist.txt", &sluice_userlist());
    let out = run_to_exit(&[&ini.to_string_lossy()], SHORT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    let location = format!("{}:{line}", ini.display());
    assert!(
        stderr.contains(&location),
        "stderr must name {location}: {stderr}"
    );
    assert!(stderr.contains("max_client_conn"), "stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_warned_about_by_name_and_sluice_still_starts() {
    let sluice = start_sluice(&basic_ini(&["frobnicate_level = 3"]), &sluice_userlist());
    assert!(
        wait_for_log(&sluice, "frobnicate_level", SHORT).await,
        "the log must name the unknown key:\n{}",
        sluice.log()
    );
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_flag_keeps_stderr_and_stdout_empty() {
    let dir = TempDir::new("quiet");
    let port = free_port();
    let ini = dir.write("pgbouncer.ini", &hand_ini(&dir, port, &[]));
    dir.write("userlist.txt", &sluice_userlist());
    let mut sluice = Foreground::start(&dir, &["-q"], &ini, port);
    let client = login_ok(port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    drop(client);
    sluice.signal(libc::SIGTERM);
    assert!(
        sluice.wait_exit(SHORT).await.is_some(),
        "no exit on SIGTERM"
    );
    assert_eq!(sluice.stderr(), "", "-q must keep stderr quiet");
    assert_eq!(sluice.stdout(), "", "-q must keep stdout quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_flag_still_writes_the_logfile() {
    let dir = TempDir::new("quiet-logfile");
    let port = free_port();
    let logfile = dir.join("sluice.log");
    let ini = dir.write(
        "pgbouncer.ini",
        &hand_ini(&dir, port, &[&format!("logfile = {}", logfile.display())]),
    );
    dir.write("userlist.txt", &sluice_userlist());
    let mut sluice = Foreground::start(&dir, &["--quiet"], &ini, port);
    assert!(
        wait_for_text(|| read_lossy(&logfile), &port.to_string(), SHORT).await,
        "the startup line (naming the port) must reach the logfile: {:?}",
        read_lossy(&logfile)
    );
    sluice.signal(libc::SIGTERM);
    assert!(
        sluice.wait_exit(SHORT).await.is_some(),
        "no exit on SIGTERM"
    );
    assert_eq!(sluice.stderr(), "", "--quiet must keep stderr quiet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_flags_the_log_goes_to_stderr() {
    let dir = TempDir::new("stderr");
    let port = free_port();
    let ini = dir.write("pgbouncer.ini", &hand_ini(&dir, port, &[]));
    dir.write("userlist.txt", &sluice_userlist());
    let sluice = Foreground::start(&dir, &[], &ini, port);
    assert!(
        wait_for_text(|| sluice.stderr(), &port.to_string(), SHORT).await,
        "the startup line (naming the port) must be on stderr: {:?}",
        sluice.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_flag_adds_debug_messages_that_are_hidden_by_default() {
    async fn debug_lines(flags: &[&str]) -> String {
        let dir = TempDir::new("verbose");
        let port = free_port();
        let ini = dir.write("pgbouncer.ini", &hand_ini(&dir, port, &[]));
        dir.write("userlist.txt", &sluice_userlist());
        let mut sluice = Foreground::start(&dir, flags, &ini, port);
        // Opening a server connection is logged at debug level.
        let client = login_ok(port, "sluice_user", "sluice_pw", "sluice_db").await;
        assert_eq!(scalar(&client, "SELECT 1").await, "1");
        drop(client);
        sluice.signal(libc::SIGTERM);
        assert!(
            sluice.wait_exit(SHORT).await.is_some(),
            "no exit on SIGTERM"
        );
        let log = sluice.stderr();
        log.lines()
            .filter(|l| l.contains("DEBUG"))
            .collect::<Vec<_>>()
            .join("\n")
    }
    let quiet = debug_lines(&[]).await;
    assert_eq!(quiet, "", "no debug lines without -v");
    let verbose = debug_lines(&["-v"]).await;
    assert!(!verbose.is_empty(), "-v must show debug lines");
}

// ---------------------------------------------------------------- daemon and pidfile

/// SIGKILLs a daemonized Sluice if the test ends before it did.
struct KillOnDrop(Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            if process_alive(pid) {
                send_signal(pid, libc::SIGKILL);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_flag_returns_at_once_and_the_pidfile_names_a_serving_process_until_sigterm() {
    let dir = TempDir::new("daemon");
    let port = free_port();
    let logfile = dir.join("sluice.log");
    let pidfile = dir.join("sluice.pid");
    let ini = dir.write(
        "pgbouncer.ini",
        &hand_ini(
            &dir,
            port,
            &[
                &format!("logfile = {}", logfile.display()),
                &format!("pidfile = {}", pidfile.display()),
            ],
        ),
    );
    dir.write("userlist.txt", &sluice_userlist());

    let started = std::time::Instant::now();
    let out = run_to_exit(&["-d", &ini.to_string_lossy()], SHORT);
    assert!(
        out.status.success(),
        "sluice -d failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "-d must return at once"
    );

    let mut guard = KillOnDrop(None);
    assert!(
        wait_for_text(|| read_lossy(&pidfile), "\n", SHORT).await,
        "no pidfile at {}; log:\n{}",
        pidfile.display(),
        read_lossy(&logfile)
    );
    let pid: i32 = read_lossy(&pidfile)
        .trim()
        .parse()
        .expect("pidfile holds a pid");
    guard.0 = Some(pid);
    assert!(
        process_alive(pid),
        "pid {pid} from the pidfile is not running"
    );

    // Wait until the daemon listens, then use it.
    let client = loop {
        match login(port, "sluice_user", "sluice_pw", "sluice_db").await {
            Ok(c) => break c,
            Err(_) if started.elapsed() < Duration::from_secs(15) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("daemon does not serve: {e}\n{}", read_lossy(&logfile)),
        }
    };
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    drop(client);
    assert!(
        !read_lossy(&logfile).is_empty(),
        "the daemon must log to its logfile"
    );

    send_signal(pid, libc::SIGTERM);
    let deadline = std::time::Instant::now() + SHORT;
    while process_alive(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!process_alive(pid), "daemon still running after SIGTERM");
    assert!(
        !pidfile.exists(),
        "the pidfile must be removed at exit; log:\n{}",
        read_lossy(&logfile)
    );
    guard.0 = None;
}

#[test]
fn daemon_flag_with_an_invalid_config_fails_in_the_foreground_with_exit_1() {
    let dir = TempDir::new("daemon-invalid");
    let port = free_port();
    let text = hand_ini(
        &dir,
        port,
        &[
            &format!("logfile = {}", dir.join("sluice.log").display()),
            &format!("pidfile = {}", dir.join("sluice.pid").display()),
            "default_pool_size = lots",
        ],
    );
    let ini = dir.write("pgbouncer.ini", &text);
    dir.write("userlist.txt", &sluice_userlist());
    let out = run_to_exit(&["-d", &ini.to_string_lossy()], SHORT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("default_pool_size"), "stderr: {stderr}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing may listen after a failed start"
    );
}

#[test]
fn daemon_flag_without_a_pidfile_is_refused() {
    // PgBouncer: "Without pidfile set, daemonization (-d) is not allowed."
    let dir = TempDir::new("daemon-nopid");
    let port = free_port();
    let logfile = dir.join("sluice.log");
    let ini = dir.write(
        "pgbouncer.ini",
        &hand_ini(&dir, port, &[&format!("logfile = {}", logfile.display())]),
    );
    dir.write("userlist.txt", &sluice_userlist());
    let out = run_to_exit(&["-d", &ini.to_string_lossy()], SHORT);
    // If it daemonized anyway, stop the stray process before asserting.
    std::thread::sleep(Duration::from_millis(300));
    let stray = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    if stray {
        kill_listener_on(&logfile);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && !stray,
        "-d without pidfile must be refused (status {:?}, daemon listening: {stray}); stderr: {stderr}",
        out.status
    );
    assert!(stderr.contains("pidfile"), "stderr must say why: {stderr}");
}

/// Best effort: SIGQUITs the sluice process whose command line names
/// `marker`'s private directory (only the daemon this test started can).
fn kill_listener_on(marker: &std::path::Path) {
    let dir = marker.parent().unwrap().to_string_lossy().into_owned();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = read_lossy(&entry.path().join("cmdline"));
            let is_sluice = std::fs::read_link(entry.path().join("exe"))
                .map(|exe| exe == common_auth::sluice_binary())
                .unwrap_or(false);
            if is_sluice && cmdline.contains(&dir) && pid != std::process::id() as i32 {
                send_signal(pid, libc::SIGQUIT);
            }
        }
    }
}

#[test]
fn daemon_flag_without_a_logfile_is_refused() {
    // PgBouncer: "For daemonization (-d), either this or syslog need to be set."
    let dir = TempDir::new("daemon-nolog");
    let port = free_port();
    let pidfile = dir.join("sluice.pid");
    let ini = dir.write(
        "pgbouncer.ini",
        &hand_ini(&dir, port, &[&format!("pidfile = {}", pidfile.display())]),
    );
    dir.write("userlist.txt", &sluice_userlist());
    let out = run_to_exit(&["-d", &ini.to_string_lossy()], SHORT);
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(pid) = read_lossy(&pidfile).trim().parse::<i32>() {
        send_signal(pid, libc::SIGQUIT);
        panic!("-d without logfile daemonized anyway (pid {pid})");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "-d without logfile must be refused");
    assert!(stderr.contains("logfile"), "stderr must say why: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pidfile_holds_the_pid_while_running_and_is_removed_at_exit() {
    let mut sluice = start_sluice(
        &basic_ini(&["pidfile = {dir}/sluice.pid"]),
        &sluice_userlist(),
    );
    let pidfile = sluice.dir.join("sluice.pid");
    assert_eq!(read_lossy(&pidfile).trim(), sluice.pid().to_string());
    sluice.signal(libc::SIGTERM);
    let status = wait_exit(&mut sluice, SHORT)
        .await
        .expect("exit on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!pidfile.exists(), "pidfile left behind");
}

#[test]
fn a_pidfile_naming_a_running_process_stops_startup() {
    let dir = TempDir::new("pidfile-busy");
    let port = free_port();
    let pidfile = dir.join("sluice.pid");
    // This test process is certainly running.
    std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
    let ini = dir.write(
        "pgbouncer.ini",
        &hand_ini(&dir, port, &[&format!("pidfile = {}", pidfile.display())]),
    );
    dir.write("userlist.txt", &sluice_userlist());
    let out = run_to_exit(&[&ini.to_string_lossy()], SHORT);
    assert!(!out.status.success());
    assert_eq!(
        read_lossy(&pidfile).trim(),
        std::process::id().to_string(),
        "the other process's pidfile must be left alone"
    );
}

// ---------------------------------------------------------------- SIGHUP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_a_new_database_entry_usable_without_a_restart() {
    let sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let (code, _) = login_error(sluice.port, "sluice_user", "sluice_pw", "added_db").await;
    assert_eq!(code, "08P01");

    let mut databases = standard_databases();
    databases.push(db_line("added_db", "dbname=postgres"));
    sluice.rewrite_ini(&common_auth::ini("scram-sha-256", &databases, &[]));
    sluice.signal(libc::SIGHUP);

    let client = retry_login(&sluice, "sluice_user", "sluice_pw", "added_db").await;
    assert_eq!(
        scalar(&client, "SELECT current_database()").await,
        "postgres"
    );
    assert!(sluice.log().contains("SIGHUP") || sluice.log().contains("reload"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_auth_file_so_a_new_user_can_log_in() {
    let sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let (code, _) = login_error(sluice.port, "hup_newcomer", "hup_pw", "forced").await;
    assert_eq!(code, "28P01");

    std::fs::write(
        sluice.dir.join("userlist.txt"),
        userlist(&[("sluice_user", "sluice_pw"), ("hup_newcomer", "hup_pw")]),
    )
    .unwrap();
    sluice.signal(libc::SIGHUP);

    let client = retry_login(&sluice, "hup_newcomer", "hup_pw", "forced").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_auth_file_so_a_removed_user_is_refused() {
    let sluice = start_sluice(
        &basic_ini(&[]),
        &userlist(&[("sluice_user", "sluice_pw"), ("hup_leaver", "leaver_pw")]),
    );
    let client = login_ok(sluice.port, "hup_leaver", "leaver_pw", "forced").await;
    drop(client);

    std::fs::write(sluice.dir.join("userlist.txt"), sluice_userlist()).unwrap();
    sluice.signal(libc::SIGHUP);

    let deadline = std::time::Instant::now() + SHORT;
    loop {
        match login(sluice.port, "hup_leaver", "leaver_pw", "forced").await {
            Err(e) => {
                let (code, message) = common_auth::db_error(&e).expect("an ErrorResponse");
                assert_eq!(code, "28P01", "{message}");
                break;
            }
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => panic!("removed user still logs in after SIGHUP:\n{}", sluice.log()),
        }
    }
    // Those still listed are unaffected.
    login_ok(sluice.port, "sluice_user", "sluice_pw", "forced").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_an_invalid_ini_keeps_the_old_configuration_and_logs_an_error() {
    let sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let mut databases = standard_databases();
    databases.push(db_line("half_applied_db", "dbname=postgres"));
    let broken = common_auth::ini(
        "scram-sha-256",
        &databases,
        &["max_client_conn = abc", "auth_type = trust"],
    );
    let line = broken
        .lines()
        .position(|l| l.trim() == "max_client_conn = abc")
        .unwrap()
        + 1;
    sluice.rewrite_ini(&broken);
    sluice.signal(libc::SIGHUP);

    let location = format!("{}:{line}", sluice.ini_path.display());
    assert!(
        wait_for_log(&sluice, &location, SHORT).await,
        "the log must name {location}:\n{}",
        sluice.log()
    );
    let log = sluice.log();
    let error_line = log
        .lines()
        .find(|l| l.contains(&location))
        .unwrap_or_default();
    assert!(
        error_line.contains("ERROR"),
        "the reload failure must be logged as an error: {error_line}"
    );

    // Still running with the old settings: nothing of the new file applies.
    let mut sluice = sluice;
    assert!(wait_exit(&mut sluice, Duration::from_millis(200))
        .await
        .is_none());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    let (code, message) =
        login_error(sluice.port, "sluice_user", "sluice_pw", "half_applied_db").await;
    assert_eq!(code, "08P01", "{message}");
    assert_eq!(
        common_auth::auth_request(sluice.port, "sluice_user", "sluice_db"),
        common_auth::AuthRequest::Sasl(vec!["SCRAM-SHA-256".to_owned()]),
        "auth_type must still be scram-sha-256"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_new_auth_type() {
    let sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    assert_eq!(
        common_auth::auth_request(sluice.port, "sluice_user", "sluice_db"),
        common_auth::AuthRequest::Sasl(vec!["SCRAM-SHA-256".to_owned()])
    );
    sluice.rewrite_ini(&basic_ini(&["auth_type = md5"]));
    sluice.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + SHORT;
    while common_auth::auth_request(sluice.port, "sluice_user", "sluice_db")
        != common_auth::AuthRequest::Md5
    {
        assert!(
            std::time::Instant::now() < deadline,
            "auth_type = md5 not in force after SIGHUP:\n{}",
            sluice.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_missing_auth_file_keeps_the_old_users_and_logs_an_error() {
    let sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    std::fs::remove_file(sluice.dir.join("userlist.txt")).unwrap();
    sluice.signal(libc::SIGHUP);
    assert!(
        wait_for_log(&sluice, "userlist.txt", SHORT).await,
        "the log must name the auth_file:\n{}",
        sluice.log()
    );
    let log = sluice.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("userlist.txt"))
        .unwrap_or_default();
    assert!(line.contains("ERROR"), "must be logged as an error: {line}");
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "forced").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_leaves_connected_clients_working() {
    let sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(scalar(&client, "SELECT 2").await, "2");
    sluice.rewrite_ini(&basic_ini(&["default_pool_size = 7"]));
    sluice.signal(libc::SIGHUP);
    assert!(
        wait_for_log(&sluice, "SIGHUP", SHORT).await,
        "{}",
        sluice.log()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Inside the open transaction and after it.
    assert_eq!(scalar(&client, "SELECT 3").await, "3");
    client.simple_query("COMMIT").await.unwrap();
    assert_eq!(scalar(&client, "SELECT 4").await, "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_and_sigusr2_do_not_stop_sluice() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    sluice.signal(libc::SIGUSR1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    sluice.signal(libc::SIGUSR2);
    assert!(
        wait_exit(&mut sluice, Duration::from_millis(300))
            .await
            .is_none(),
        "SIGUSR1/SIGUSR2 killed Sluice"
    );
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

// ---------------------------------------------------------------- SIGTERM

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_without_clients_exits_zero_promptly() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    sluice.signal(libc::SIGTERM);
    let status = wait_exit(&mut sluice, Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("still running 3 s after SIGTERM:\n{}", sluice.log()));
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_connected_clients_while_refusing_new_ones_then_exits_zero() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");

    sluice.signal(libc::SIGTERM);
    assert!(wait_for_log(&sluice, "SIGTERM", SHORT).await);
    assert!(
        wait_exit(&mut sluice, Duration::from_millis(700))
            .await
            .is_none(),
        "exited while a client was still connected:\n{}",
        sluice.log()
    );
    // The connected client keeps working.
    assert_eq!(scalar(&client, "SELECT 2").await, "2");
    // A new client is turned away.
    match login(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await {
        Ok(_) => panic!("a new client got in after SIGTERM"),
        Err(e) => {
            if let Some((code, message)) = common_auth::db_error(&e) {
                assert_eq!(code, "08P01", "{message}");
            }
        }
    }

    drop(client);
    let status = wait_exit(&mut sluice, SHORT).await.unwrap_or_else(|| {
        panic!(
            "still running after the last client left:\n{}",
            sluice.log()
        )
    });
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_at_once_despite_connected_clients() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    sluice.signal(libc::SIGTERM);
    assert!(wait_for_log(&sluice, "SIGTERM", SHORT).await);
    assert!(wait_exit(&mut sluice, Duration::from_millis(300))
        .await
        .is_none());
    sluice.signal(libc::SIGTERM);
    assert!(
        wait_exit(&mut sluice, Duration::from_secs(2))
            .await
            .is_some(),
        "a second SIGTERM must exit at once:\n{}",
        sluice.log()
    );
    drop(client);
}

// ---------------------------------------------------------------- SIGINT

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_exits_promptly_when_connected_clients_hold_no_server() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    // Transaction pooling: between transactions the client holds no server.
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    sluice.signal(libc::SIGINT);
    let status = wait_exit(&mut sluice, Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("still running 3 s after SIGINT:\n{}", sluice.log()));
    assert!(status.success(), "{status:?}");
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_waits_for_an_open_transaction_to_commit_then_exits_zero() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(scalar(&client, "SELECT 1").await, "1");

    sluice.signal(libc::SIGINT);
    assert!(wait_for_log(&sluice, "SIGINT", SHORT).await);
    assert!(
        wait_exit(&mut sluice, Duration::from_millis(700))
            .await
            .is_none(),
        "exited while a transaction held a server:\n{}",
        sluice.log()
    );
    // No new clients while shutting down.
    if let Ok(_newcomer) = login(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await {
        panic!("a new client got in after SIGINT");
    }
    // The transaction can finish.
    assert_eq!(scalar(&client, "SELECT 2").await, "2");
    client
        .simple_query("COMMIT")
        .await
        .unwrap_or_else(|e| panic!("COMMIT after SIGINT failed: {}", common_auth::describe(&e)));

    let status = wait_exit(&mut sluice, SHORT)
        .await
        .unwrap_or_else(|| panic!("still running after COMMIT:\n{}", sluice.log()));
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_despite_an_open_transaction() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    sluice.signal(libc::SIGINT);
    assert!(wait_for_log(&sluice, "SIGINT", SHORT).await);
    assert!(wait_exit(&mut sluice, Duration::from_millis(300))
        .await
        .is_none());
    sluice.signal(libc::SIGINT);
    assert!(
        wait_exit(&mut sluice, Duration::from_secs(2))
            .await
            .is_some(),
        "a second SIGINT must exit at once:\n{}",
        sluice.log()
    );
    drop(client);
}

// ---------------------------------------------------------------- SIGQUIT

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_exits_at_once_despite_an_open_transaction() {
    let mut sluice = start_sluice(&basic_ini(&[]), &sluice_userlist());
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
    sluice.signal(libc::SIGQUIT);
    assert!(
        wait_exit(&mut sluice, Duration::from_secs(2))
            .await
            .is_some(),
        "SIGQUIT must exit at once:\n{}",
        sluice.log()
    );
    // The client's connection is gone with it.
    assert!(client.simple_query("SELECT 1").await.is_err());
}

// ---------------------------------------------------------------- helpers

/// Logs in, retrying for a while (a reload is applied asynchronously).
async fn retry_login(
    sluice: &sluice_testkit::SluiceProcess,
    user: &str,
    password: &str,
    db: &str,
) -> tokio_postgres::Client {
    let deadline = std::time::Instant::now() + SHORT;
    loop {
        match login(sluice.port, user, password, db).await {
            Ok(client) => return client,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!(
                "login as {user} to {db} still fails after SIGHUP: {}\n--- log ---\n{}",
                common_auth::describe(&e),
                sluice.log()
            ),
        }
    }
}
