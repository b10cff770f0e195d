//! auth_type = hba: the first matching line of auth_hba_file picks the
//! method per connection type, address, database and user; ident maps for
//! peer; PgBouncer's error texts when nothing matches or a line rejects.

#[path = "common_auth/mod.rs"]
mod common_auth;

use common_auth::*;
use std::time::Duration;

fn users() -> String {
    userlist(&[
        ("sluice_user", "sluice_pw"),
        ("scram_user", "scram_pw"),
        ("md5_user", "md5_pw"),
    ])
}

/// Sluice with auth_type=hba; the hba (and ident) files are written into
/// its directory before it starts.
fn start_with_hba(hba: &str, ident: Option<&str>) -> sluice_testkit::SluiceProcess {
    let dir = TempDir::new("hba");
    let hba_path = dir.write("hba.conf", hba);
    let mut extra = vec![format!("auth_hba_file = {}", hba_path.display())];
    if let Some(ident) = ident {
        let p = dir.write("ident.conf", ident);
        extra.push(format!("auth_ident_file = {}", p.display()));
    }
    extra.push("unix_socket_dir = {dir}".to_string());
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let sluice = start_sluice(&ini("hba", &standard_databases(), &extra), &users());
    // The files must outlive this function: keep the dir for the process.
    std::mem::forget(dir);
    sluice
}

#[tokio::test]
async fn the_first_matching_line_picks_the_method_by_database_and_user() {
    let sluice = start_with_hba(
        "# comments are fine\n\
         host all e2e_shut_out 127.0.0.1/32 reject\n\
         host sluice_db all 127.0.0.1/32 scram-sha-256\n\
         host forced md5_user 127.0.0.1/32 md5\n\
         host forced all 127.0.0.1/32 password\n",
        None,
    );
    match auth_request(sluice.port, "sluice_user", "sluice_db") {
        AuthRequest::Sasl(m) => assert!(m.contains(&"SCRAM-SHA-256".to_string()), "{m:?}"),
        other => panic!("expected SCRAM for sluice_db, got {other:?}"),
    }
    assert_eq!(
        auth_request(sluice.port, "md5_user", "forced"),
        AuthRequest::Md5
    );
    assert_eq!(
        auth_request(sluice.port, "scram_user", "forced"),
        AuthRequest::Cleartext
    );
    let c = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT current_user").await, "sluice_user");
    let (code, _) = login_error(sluice.port, "sluice_user", "wrong", "sluice_db").await;
    assert_eq!(code, "28P01");
    login_ok(sluice.port, "scram_user", "scram_pw", "forced").await;
}

#[tokio::test]
async fn a_reject_line_refuses_with_login_rejected() {
    let sluice = start_with_hba(
        "host all md5_user 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 md5\n",
        None,
    );
    let (code, msg) = login_error(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!((code.as_str(), msg.as_str()), ("28000", "login rejected"));
    login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
}

#[tokio::test]
async fn no_matching_line_refuses_with_no_authentication_method_is_found() {
    // Only another network and only over TLS: a plain 127.0.0.1 client matches nothing.
    let sluice = start_with_hba(
        "host all all 10.0.0.0/8 trust\nhostssl all all 127.0.0.1/32 trust\n",
        None,
    );
    let (code, msg) = login_error(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("28000", "no authentication method is found")
    );
}

#[tokio::test]
async fn hostnossl_and_address_masks_match_plain_local_clients() {
    let sluice = start_with_hba("hostnossl all all 127.0.0.0 255.0.0.0 trust\n", None);
    let c = login_ok(sluice.port, "sluice_user", "", "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT 1").await, "1");
}

#[tokio::test]
async fn peer_over_the_unix_socket_uses_the_ident_map() {
    // The test process's OS user may log in as sluice_user through map m.
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
    let sluice = start_with_hba(
        "local all all peer map=m\nhost all all 127.0.0.1/32 reject\n",
        Some(&format!("m {me} sluice_user\n")),
    );
    let connect = |user: &'static str| {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&sluice.dir)
            .port(sluice.port)
            .user(user)
            .dbname("sluice_db")
            .connect_timeout(Duration::from_secs(10));
        async move { cfg.connect(tokio_postgres::NoTls).await }
    };
    let (client, conn) = connect("sluice_user")
        .await
        .expect("peer login through the map");
    tokio::spawn(conn);
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    let err = connect("scram_user").await.err().expect("not in the map");
    let (code, msg) = db_error(&err).expect("an ErrorResponse");
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("28000", "unix socket login rejected")
    );
}

#[tokio::test]
async fn hba_without_auth_hba_file_does_not_start() {
    let out = run_to_exit(&["--version"], Duration::from_secs(5));
    assert!(out.status.success());
    let dir = TempDir::new("hba-missing");
    let ini_text = ini("hba", &standard_databases(), &[])
        .replace("{port}", "1")
        .replace("{dir}", &dir.join("").display().to_string());
    let ini_path = dir.write("pgbouncer.ini", &ini_text);
    dir.write("userlist.txt", &users());
    let out = run_to_exit(&[ini_path.to_str().unwrap()], Duration::from_secs(10));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth_hba_file"), "{err}");
}
