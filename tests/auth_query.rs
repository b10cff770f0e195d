//! auth_query: users missing from auth_file are looked up in PostgreSQL's
//! pg_authid through the auth_user, with md5 and SCRAM secrets, and the
//! server login then works with what was found (md5 hash, SCRAM pass-through).

#[path = "common_auth/mod.rs"]
mod common_auth;

use common_auth::*;

/// A superuser that can read pg_authid, in the userlist with its password.
fn auth_user() -> (&'static str, &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        cluster().psql(
            "postgres",
            "DO $$ BEGIN CREATE ROLE e2e_auth_lookup SUPERUSER LOGIN PASSWORD 'lookup_pw'; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
        );
    });
    ("e2e_auth_lookup", "lookup_pw")
}

fn sluice_with_auth_query(auth_type: &str, extra: &[&str]) -> sluice_testkit::SluiceProcess {
    let (au, apw) = auth_user();
    let auth_user_line = format!("auth_user = {au}");
    let mut lines = vec![auth_user_line.as_str()];
    lines.extend_from_slice(extra);
    start_sluice(
        &ini(auth_type, &standard_databases(), &lines),
        &userlist(&[(au, apw)]),
    )
}

#[tokio::test]
async fn a_scram_user_missing_from_auth_file_logs_in_through_auth_query_and_scram_pass_through() {
    let sluice = sluice_with_auth_query("scram-sha-256", &[]);
    let c = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT current_user").await, "scram_user");
    // A second client reuses the pool's learnt keys.
    let c2 = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(scalar(&c2, "SELECT 7").await, "7");
}

#[tokio::test]
async fn an_md5_user_missing_from_auth_file_logs_in_through_auth_query_and_its_md5_hash() {
    let sluice = sluice_with_auth_query("md5", &[]);
    let c = login_ok(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT current_user").await, "md5_user");
}

#[tokio::test]
async fn md5_auth_type_uses_scram_for_a_scram_secret_found_by_auth_query() {
    let sluice = sluice_with_auth_query("md5", &[]);
    let c = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT current_user").await, "scram_user");
}

#[tokio::test]
async fn a_wrong_password_for_an_auth_query_user_is_refused_with_28p01() {
    let sluice = sluice_with_auth_query("scram-sha-256", &[]);
    let (code, msg) = login_error(sluice.port, "scram_user", "nope", "sluice_db").await;
    assert_eq!(code, "28P01", "{msg}");
    let (code, _) = login_error(sluice.port, "md5_user", "nope", "sluice_db").await;
    assert_eq!(code, "28P01");
}

#[tokio::test]
async fn a_user_unknown_to_postgres_is_refused_like_a_wrong_password() {
    let sluice = sluice_with_auth_query("scram-sha-256", &[]);
    let (code, _) = login_error(sluice.port, "e2e_nobody_here", "x", "sluice_db").await;
    assert_eq!(code, "28P01");
}

#[tokio::test]
async fn a_custom_auth_query_is_used() {
    // Only users whose name starts with md5_ are found.
    let q = "auth_query = SELECT rolname, rolpassword FROM pg_authid WHERE rolname = $1 AND rolname LIKE 'md5%'";
    let sluice = sluice_with_auth_query("md5", &[q]);
    login_ok(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    let (code, _) = login_error(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(code, "28P01");
}

#[tokio::test]
async fn a_broken_auth_query_gives_a_config_error_not_a_hang() {
    let sluice = sluice_with_auth_query(
        "md5",
        &["auth_query = SELECT nonsense FROM nowhere WHERE x = $1"],
    );
    let (code, msg) = login_error(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("08P01", "bouncer config error")
    );
    assert!(
        sluice.log().contains("auth_query failed"),
        "{}",
        sluice.log()
    );
}

#[tokio::test]
async fn users_in_auth_file_do_not_need_auth_query() {
    let sluice = start_sluice(
        &ini(
            "md5",
            &standard_databases(),
            &["auth_user = e2e_missing_auth_user"],
        ),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
}

#[tokio::test]
async fn auth_dbname_runs_the_lookup_in_another_configured_database() {
    let (au, apw) = auth_user();
    let mut dbs = standard_databases();
    dbs.push(db_line("authdb", "dbname=postgres"));
    let sluice = start_sluice(
        &ini(
            "scram-sha-256",
            &dbs,
            &[&format!("auth_user = {au}"), "auth_dbname = authdb"],
        ),
        &userlist(&[(au, apw)]),
    );
    let c = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(scalar(&c, "SELECT current_database()").await, "sluice_db");
}

#[tokio::test]
async fn an_auth_dbname_that_is_not_configured_is_a_config_error() {
    let sluice = sluice_with_auth_query("md5", &["auth_dbname = e2e_not_there"]);
    let (code, msg) = login_error(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("08P01", "bouncer config error")
    );
    assert!(
        sluice
            .log()
            .contains("authentication database \"e2e_not_there\" is not configured"),
        "{}",
        sluice.log()
    );
}

#[tokio::test]
async fn a_per_database_auth_user_and_auth_query_override_the_global_ones() {
    let (au, apw) = auth_user();
    let line = db_line(
        "narrow",
        &format!(
            "dbname=sluice_db auth_user={au} auth_query='SELECT rolname, rolpassword FROM pg_authid WHERE rolname = $1 AND rolname LIKE ''scram%'''"
        ),
    );
    let sluice = start_sluice(&ini("scram-sha-256", &[line], &[]), &userlist(&[(au, apw)]));
    login_ok(sluice.port, "scram_user", "scram_pw", "narrow").await;
    let (code, _) = login_error(sluice.port, "sluice_user", "sluice_pw", "narrow").await;
    assert_eq!(code, "28P01");
}
