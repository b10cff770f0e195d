//! End-to-end: how clients authenticate to Sluice (auth_type trust, any,
//! plain, md5, scram-sha-256 against plaintext, md5 and SCRAM secrets in the
//! auth_file), how Sluice logs in to PostgreSQL on their behalf, and the
//! errors a login can end with (PgBouncer's wording and SQLSTATEs, or the
//! server's own error passed on).

mod common_auth;

use std::time::{Duration, Instant};

use common_auth::{
    auth_request, cluster, db_line, describe, login, login_error, login_ok, md5_secret, scalar,
    standard_databases, start_sluice, stored_secret, userlist, AuthRequest,
};
use sluice_testkit::psql_cmd;

// ---------------------------------------------------------------- trust

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_lets_a_user_listed_in_the_auth_file_in_without_a_password() {
    let sluice = start_sluice(
        &common_auth::ini("trust", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    assert_eq!(
        auth_request(sluice.port, "sluice_user", "sluice_db"),
        AuthRequest::Ok
    );
    let client = login_ok(sluice.port, "sluice_user", "", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_refuses_a_user_missing_from_the_auth_file_with_28000() {
    let sluice = start_sluice(
        &common_auth::ini("trust", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let (code, message) = login_error(sluice.port, "stranger", "", "forced").await;
    assert_eq!(code, "28000", "message: {message}");
    assert!(
        message.contains("\"trust\" authentication failed"),
        "message: {message}"
    );
}

// ---------------------------------------------------------------- any

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_accepts_any_user_name_and_logs_in_as_the_forced_user() {
    let sluice = start_sluice(&common_auth::ini("any", &standard_databases(), &[]), "");
    assert_eq!(
        auth_request(sluice.port, "nobody_in_particular", "forced"),
        AuthRequest::Ok
    );
    let client = login_ok(sluice.port, "nobody_in_particular", "", "forced").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    assert_eq!(
        scalar(&client, "SELECT current_database()").await,
        "sluice_db"
    );
}

// ---------------------------------------------------------------- plain

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_asks_for_a_cleartext_password() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    assert_eq!(
        auth_request(sluice.port, "sluice_user", "sluice_db"),
        AuthRequest::Cleartext
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_with_a_plaintext_secret_succeeds_and_reaches_the_server() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_checks_the_password_against_an_md5_secret() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[(
            "plain_md5_client",
            &md5_secret("plain_md5_client", "s3cret"),
        )]),
    );
    let client = login_ok(sluice.port, "plain_md5_client", "s3cret", "forced").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    let (code, message) = login_error(sluice.port, "plain_md5_client", "wrong", "forced").await;
    assert_eq!(code, "28P01", "message: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_checks_the_password_against_a_scram_secret() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("scram_user", &stored_secret("scram_user"))]),
    );
    let client = login_ok(sluice.port, "scram_user", "scram_pw", "forced").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    let (code, message) = login_error(sluice.port, "scram_user", "not_scram_pw", "forced").await;
    assert_eq!(code, "28P01", "message: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_with_a_wrong_password_is_refused_with_28p01() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let (code, message) = login_error(sluice.port, "sluice_user", "sluice_pw_x", "sluice_db").await;
    assert_eq!(code, "28P01", "message: {message}");
    assert!(
        message.contains("password authentication failed"),
        "message: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_login_with_an_empty_password_is_refused_with_28p01() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("empty_pw_user", "")]),
    );
    // tokio-postgres refuses to send an empty password itself, so speak the
    // protocol by hand: StartupMessage, then an empty PasswordMessage.
    let outcome = raw_cleartext_login(sluice.port, "empty_pw_user", "forced", "");
    assert_eq!(
        outcome.0, "28P01",
        "an empty password must never log in: {outcome:?}"
    );
}

// ---------------------------------------------------------------- md5

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_asks_for_an_md5_password_when_the_secret_is_plaintext_or_md5() {
    let sluice = start_sluice(
        &common_auth::ini("md5", &standard_databases(), &[]),
        &userlist(&[
            ("sluice_user", "sluice_pw"),
            ("md5_user", &stored_secret("md5_user")),
        ]),
    );
    assert_eq!(
        auth_request(sluice.port, "sluice_user", "sluice_db"),
        AuthRequest::Md5
    );
    assert_eq!(
        auth_request(sluice.port, "md5_user", "sluice_db"),
        AuthRequest::Md5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_login_with_a_plaintext_secret_succeeds_and_reaches_the_server() {
    let sluice = start_sluice(
        &common_auth::ini("md5", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_login_with_an_md5_secret_succeeds_and_the_hash_logs_in_to_an_md5_server() {
    let secret = stored_secret("md5_user");
    assert_eq!(secret, md5_secret("md5_user", "md5_pw"));
    let sluice = start_sluice(
        &common_auth::ini("md5", &standard_databases(), &[]),
        &userlist(&[("md5_user", &secret)]),
    );
    let client = login_ok(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "md5_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_login_with_a_wrong_password_is_refused_with_28p01() {
    let sluice = start_sluice(
        &common_auth::ini("md5", &standard_databases(), &[]),
        &userlist(&[
            ("sluice_user", "sluice_pw"),
            ("md5_user", &stored_secret("md5_user")),
        ]),
    );
    for user in ["sluice_user", "md5_user"] {
        let (code, message) = login_error(sluice.port, user, "wrong_pw", "sluice_db").await;
        assert_eq!(code, "28P01", "{user}: {message}");
        assert!(
            message.contains("password authentication failed"),
            "{user}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_switches_to_scram_for_a_user_whose_secret_is_scram() {
    let sluice = start_sluice(
        &common_auth::ini("md5", &standard_databases(), &[]),
        &userlist(&[("scram_user", &stored_secret("scram_user"))]),
    );
    assert_eq!(
        auth_request(sluice.port, "scram_user", "sluice_db"),
        AuthRequest::Sasl(vec!["SCRAM-SHA-256".to_owned()])
    );
    // The SCRAM login also hands Sluice the keys to log in to the server.
    let client = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "scram_user");
    let (code, message) = login_error(sluice.port, "scram_user", "md5_guess", "sluice_db").await;
    assert_eq!(code, "28P01", "message: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_refuses_an_unknown_user_with_28p01_after_a_full_exchange() {
    let sluice = start_sluice(
        &common_auth::ini("md5", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    // An unknown user is challenged like a known one, so names cannot be probed.
    assert_eq!(
        auth_request(sluice.port, "no_such_user_md5", "forced"),
        AuthRequest::Md5
    );
    let (code, message) = login_error(sluice.port, "no_such_user_md5", "whatever", "forced").await;
    assert_eq!(code, "28P01", "message: {message}");
    let (_, known_message) = login_error(sluice.port, "sluice_user", "whatever", "forced").await;
    assert_eq!(message, known_message);
}

// ---------------------------------------------------------------- scram-sha-256

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_offers_only_scram_sha_256() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    assert_eq!(
        auth_request(sluice.port, "sluice_user", "sluice_db"),
        AuthRequest::Sasl(vec!["SCRAM-SHA-256".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_login_with_a_plaintext_secret_succeeds_and_reaches_the_server() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    assert_eq!(scalar(&client, "SELECT 40 + 2").await, "42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_login_with_a_scram_secret_passes_the_client_key_through_to_the_server() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("scram_user", &stored_secret("scram_user"))]),
    );
    // Sluice knows only the verifier; the server login works only with the
    // ClientKey recovered from this client's proof.
    let client = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "scram_user");
    // A second client reuses or opens server connections the same way.
    let second = login_ok(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    let (a, b) = tokio::join!(
        scalar(&client, "SELECT 'first'"),
        scalar(&second, "SELECT 'second'")
    );
    assert_eq!((a.as_str(), b.as_str()), ("first", "second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_login_with_a_wrong_password_is_refused_with_28p01() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[
            ("sluice_user", "sluice_pw"),
            ("scram_user", &stored_secret("scram_user")),
        ]),
    );
    for user in ["sluice_user", "scram_user"] {
        let (code, message) = login_error(sluice.port, user, "wrong_pw", "sluice_db").await;
        assert_eq!(code, "28P01", "{user}: {message}");
        assert!(
            message.contains("password authentication failed"),
            "{user}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_refuses_a_user_whose_secret_is_md5_with_28p01() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("md5_user", &stored_secret("md5_user"))]),
    );
    let (code, message) = login_error(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!(code, "28P01", "message: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_refuses_an_unknown_user_like_a_wrong_password() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    assert_eq!(
        auth_request(sluice.port, "no_such_user_scram", "forced"),
        AuthRequest::Sasl(vec!["SCRAM-SHA-256".to_owned()])
    );
    let (code, message) =
        login_error(sluice.port, "no_such_user_scram", "sluice_pw", "forced").await;
    assert_eq!(code, "28P01", "message: {message}");
    let (_, known_message) = login_error(sluice.port, "sluice_user", "nope", "forced").await;
    assert_eq!(message, known_message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_logs_in_with_scram_through_the_ssl_refusal() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("scram_user", &stored_secret("scram_user"))]),
    );
    // libpq's default sslmode=prefer sends an SSLRequest first; Sluice says
    // `N` and the SCRAM login continues in the clear.
    let port = sluice.port.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(psql_cmd())
            .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-p", &port])
            .args(["-U", "scram_user", "-d", "sluice_db"])
            .args(["-c", "SELECT current_user || '@' || current_database()"])
            .env("PGPASSWORD", "scram_pw")
            .env("PGSSLMODE", "prefer")
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGOPTIONS")
            .env_remove("PGSERVICE")
            .output()
            .expect("run psql")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "psql failed: {}\n--- sluice log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        sluice.log()
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "scram_user@sluice_db"
    );
}

// ---------------------------------------------------------------- userlist

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userlist_fields_may_contain_doubled_quotes_and_comment_lines_are_skipped() {
    let text = "; a comment line\n\
                \"quo\"\"ted\" \"pa\"\"ss word\"\n\
                ;\"sluice_user\" \"sluice_pw\"\n";
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        text,
    );
    let client = login_ok(sluice.port, "quo\"ted", "pa\"ss word", "forced").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    let (code, _) = login_error(sluice.port, "quo\"ted", "pa\"ss", "forced").await;
    assert_eq!(code, "28P01");
    // The commented-out entry does not exist.
    let (code, _) = login_error(sluice.port, "sluice_user", "sluice_pw", "forced").await;
    assert_eq!(code, "28P01");
}

// ---------------------------------------------------------------- server login

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_secret_also_logs_in_to_an_md5_server() {
    // md5_user is md5 in the server's pg_hba; Sluice knows the plaintext.
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("md5_user", "md5_pw")]),
    );
    let client = login_ok(sluice.port, "md5_user", "md5_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "md5_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_the_configured_password_passes_its_error_to_the_client() {
    let mut databases = standard_databases();
    databases.push(db_line(
        "bad_server_pw",
        "dbname=sluice_db user=sluice_user password=not_the_password",
    ));
    let sluice = start_sluice(&common_auth::ini("any", &databases, &[]), "");
    let (code, message) = server_side_error(sluice.port, "whoever", "", "bad_server_pw").await;
    assert_eq!(code, "28P01", "message: {message}");
    assert!(
        message.contains("password authentication failed for user \"sluice_user\""),
        "the client must see the server's own message, got: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_missing_on_the_server_passes_the_servers_3d000_to_the_client() {
    let mut databases = standard_databases();
    databases.push(db_line("*", ""));
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &databases, &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let (code, message) = server_side_error(
        sluice.port,
        "sluice_user",
        "sluice_pw",
        "no_such_db_on_server",
    )
    .await;
    assert_eq!(code, "3D000", "message: {message}");
    assert!(
        message.contains("no_such_db_on_server"),
        "message: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wildcard_entry_serves_a_database_not_listed_by_its_own_name() {
    let mut databases = standard_databases();
    databases.push(db_line("*", ""));
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &databases, &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "postgres").await;
    assert_eq!(
        scalar(&client, "SELECT current_database()").await,
        "postgres"
    );
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

// ---------------------------------------------------------------- pooler errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_database_without_a_wildcard_is_refused_with_no_such_database() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let (code, message) = login_error(sluice.port, "sluice_user", "sluice_pw", "nope_db").await;
    assert_eq!(code, "08P01", "message: {message}");
    assert_eq!(message, "no such database: nope_db");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_max_client_conn_is_refused_and_admitted_once_another_leaves() {
    let sluice = start_sluice(
        &common_auth::ini(
            "scram-sha-256",
            &standard_databases(),
            &["max_client_conn = 2"],
        ),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let first = login_ok(sluice.port, "sluice_user", "sluice_pw", "forced").await;
    let second = login_ok(sluice.port, "sluice_user", "sluice_pw", "forced").await;
    let (code, message) = login_error(sluice.port, "sluice_user", "sluice_pw", "forced").await;
    assert_eq!(code, "08P01", "message: {message}");
    assert_eq!(message, "no more connections allowed (max_client_conn)");
    // The two admitted clients keep working.
    assert_eq!(scalar(&first, "SELECT 1").await, "1");
    assert_eq!(scalar(&second, "SELECT 2").await, "2");

    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    let third = loop {
        match login(sluice.port, "sluice_user", "sluice_pw", "forced").await {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!(
                "a slot freed by a disconnect was never given out: {}",
                describe(&e)
            ),
        }
    };
    assert_eq!(scalar(&third, "SELECT 3").await, "3");
}

// ---------------------------------------------------------------- helpers

/// A login whose failure may surface at login (Sluice logs in to the server
/// right away) or at the first query (it logs in lazily): either way it must
/// be an ErrorResponse; returns its (SQLSTATE, message).
async fn server_side_error(port: u16, user: &str, password: &str, db: &str) -> (String, String) {
    let error = match login(port, user, password, db).await {
        Err(e) => e,
        Ok(client) => match client.simple_query("SELECT 1").await {
            Ok(_) => panic!("login as {user} to {db} and a query succeeded, but must fail"),
            Err(e) => e,
        },
    };
    common_auth::db_error(&error).unwrap_or_else(|| {
        panic!(
            "login as {user} to {db} failed without an ErrorResponse: {}",
            describe(&error)
        )
    })
}

/// Logs in by hand with a cleartext password (which may be empty) and returns
/// the (SQLSTATE, message) of the error Sluice answers with, or ("", "ok")
/// when it answers AuthenticationOk.
fn raw_cleartext_login(port: u16, user: &str, db: &str, password: &str) -> (String, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&startup_packet(user, db)).unwrap();

    let (tag, payload) = read_message(&mut stream);
    assert_eq!(tag, b'R', "expected an authentication request");
    assert_eq!(&payload[..4], &3i32.to_be_bytes(), "expected cleartext");

    let mut msg = vec![b'p'];
    msg.extend_from_slice(&((password.len() + 5) as i32).to_be_bytes());
    msg.extend_from_slice(password.as_bytes());
    msg.push(0);
    stream.write_all(&msg).unwrap();

    let (tag, payload) = read_message(&mut stream);
    match tag {
        b'R' if payload[..4] == 0i32.to_be_bytes() => (String::new(), "ok".to_owned()),
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
            (code, message)
        }
        other => panic!("unexpected answer {:?}", other as char),
    }
}

// ---------------------------------------------------------------- more

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_applies_saslprep_to_non_ascii_passwords_like_postgresql() {
    // Soft hyphen maps to nothing and U+2168 (ROMAN NUMERAL NINE) to "IX"
    // under SASLprep, as PostgreSQL does when it stores the verifier.
    let role = "e2e_auth_saslprep";
    let password = "pä\u{AD}ss\u{2168}";
    cluster().psql(
        "postgres",
        &format!(
            "DROP ROLE IF EXISTS {role};\n\
             SET password_encryption = 'scram-sha-256';\n\
             CREATE ROLE {role} LOGIN PASSWORD '{password}';"
        ),
    );
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[(role, password)]),
    );
    // The plaintext secret logs the client in and Sluice in to the server.
    let client = login_ok(sluice.port, role, password, "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, role);
    // The prepared form is the same password.
    let client = login_ok(sluice.port, role, "pässIX", "forced").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_scram_logins_with_a_scram_secret_all_reach_the_server() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("scram_user", &stored_secret("scram_user"))]),
    );
    let port = sluice.port;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            tokio::spawn(async move {
                let client = login_ok(port, "scram_user", "scram_pw", "sluice_db").await;
                scalar(&client, &format!("SELECT current_user || '-{i}'")).await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), format!("scram_user-{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_login_without_a_usable_password_ends_in_an_error_response_not_a_hang() {
    // With auth_type plain, Sluice never sees a SCRAM proof, so a SCRAM
    // verifier is no use for logging in to a SCRAM server.
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("scram_user", &stored_secret("scram_user"))]),
    );
    let (code, message) =
        server_side_error(sluice.port, "scram_user", "scram_pw", "sluice_db").await;
    assert!(!code.is_empty() && !message.is_empty());
    // Sluice is still fine for everyone else.
    let client = login_ok(sluice.port, "scram_user", "scram_pw", "forced").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_picking_an_unoffered_sasl_mechanism_is_refused_and_sluice_keeps_serving() {
    use std::io::{Read, Write};
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(&startup_packet("sluice_user", "sluice_db"))
        .unwrap();
    let (tag, _) = read_message(&mut stream);
    assert_eq!(tag, b'R');
    // SASLInitialResponse naming a mechanism that was not offered.
    let mut body = b"SCRAM-SHA-1\0".to_vec();
    body.extend_from_slice(&4i32.to_be_bytes());
    body.extend_from_slice(b"junk");
    let mut msg = vec![b'p'];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(&body);
    stream.write_all(&msg).unwrap();
    let (tag, payload) = read_message(&mut stream);
    assert_eq!(tag, b'E', "expected an ErrorResponse");
    let text = String::from_utf8_lossy(&payload).into_owned();
    assert!(
        text.contains("C28000"),
        "expected SQLSTATE 28000 in {text:?}"
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the socket must be closed after the error");

    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_scram_client_first_message_fails_cleanly() {
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    use std::io::Write;
    stream
        .write_all(&startup_packet("sluice_user", "sluice_db"))
        .unwrap();
    let (tag, _) = read_message(&mut stream);
    assert_eq!(tag, b'R');
    let data = b"this is not a gs2 header";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(data.len() as i32).to_be_bytes());
    body.extend_from_slice(data);
    let mut msg = vec![b'p'];
    msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    msg.extend_from_slice(&body);
    stream.write_all(&msg).unwrap();
    let (tag, payload) = read_message(&mut stream);
    assert_eq!(tag, b'E', "expected an ErrorResponse");
    let text = String::from_utf8_lossy(&payload).into_owned();
    assert!(text.contains("SFATAL"), "expected a FATAL error: {text:?}");

    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

fn startup_packet(user: &str, db: &str) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", db)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

fn read_message(stream: &mut std::net::TcpStream) -> (u8, Vec<u8>) {
    use std::io::Read;
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).expect("message header");
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    assert!((4..1 << 20).contains(&len), "implausible length {len}");
    let mut payload = vec![0u8; len - 4];
    stream.read_exact(&mut payload).expect("message body");
    (header[0], payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_abandoned_logins_do_not_use_up_max_client_conn() {
    use std::io::Write;
    let sluice = start_sluice(
        &common_auth::ini(
            "scram-sha-256",
            &standard_databases(),
            &["max_client_conn = 2"],
        ),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    for _ in 0..5 {
        let (code, _) = login_error(sluice.port, "sluice_user", "wrong", "forced").await;
        assert_eq!(code, "28P01");
    }
    for _ in 0..5 {
        // Ask to log in, read the SASL offer, then hang up. (The slot of
        // the login before may take a moment to be given back: a refusal
        // for max_client_conn is retried for a while.)
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            stream
                .write_all(&startup_packet("sluice_user", "forced"))
                .unwrap();
            let (tag, body) = read_message(&mut stream);
            if tag == b'R' {
                break;
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            assert!(
                tag == b'E' && text.contains("max_client_conn") && Instant::now() < deadline,
                "{} {text}",
                tag as char
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Both slots are free again once Sluice has noticed the hang-ups.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (a, b) = loop {
        let a = login(sluice.port, "sluice_user", "sluice_pw", "forced").await;
        let b = login(sluice.port, "sluice_user", "sluice_pw", "forced").await;
        match (a, b) {
            (Ok(a), Ok(b)) => break (a, b),
            (a, b) if Instant::now() < deadline => {
                drop((a, b));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (a, b) => panic!(
                "slots leaked by failed or abandoned logins: {:?} / {:?}",
                a.err().map(|e| describe(&e)),
                b.err().map(|e| describe(&e))
            ),
        }
    };
    assert_eq!(scalar(&a, "SELECT 1").await, "1");
    assert_eq!(scalar(&b, "SELECT 2").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_startup_packet_without_a_user_is_refused_with_a_fatal_error() {
    use std::io::Write;
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let mut body = 196608i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"database\0sluice_db\0\0");
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", sluice.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&packet).unwrap();
    let (tag, payload) = read_message(&mut stream);
    assert_eq!(tag, b'E', "expected an ErrorResponse");
    let text = String::from_utf8_lossy(&payload).into_owned();
    assert!(text.contains("SFATAL"), "expected FATAL: {text:?}");
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_cleartext_password_is_refused_with_28p01_and_sluice_keeps_serving() {
    let sluice = start_sluice(
        &common_auth::ini("plain", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let huge = "x".repeat(64 * 1024);
    let (code, message) = raw_cleartext_login(sluice.port, "sluice_user", "forced", &huge);
    assert_eq!(code, "28P01", "{message}");
    let client = login_ok(sluice.port, "sluice_user", "sluice_pw", "forced").await;
    assert_eq!(scalar(&client, "SELECT 1").await, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_ignores_a_password_the_client_volunteers() {
    let sluice = start_sluice(
        &common_auth::ini("trust", &standard_databases(), &[]),
        &userlist(&[("sluice_user", "sluice_pw")]),
    );
    let client = login_ok(sluice.port, "sluice_user", "not_checked", "sluice_db").await;
    assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userlist_lines_may_use_tabs_crlf_and_trailing_fields() {
    let text = "\"tab_user\"\t\"tab_pw\"\r\n\
                \"extra_user\"  \"extra_pw\"  \"ignored third field\"\r\n";
    let sluice = start_sluice(
        &common_auth::ini("scram-sha-256", &standard_databases(), &[]),
        text,
    );
    for (user, password) in [("tab_user", "tab_pw"), ("extra_user", "extra_pw")] {
        let client = login_ok(sluice.port, user, password, "forced").await;
        assert_eq!(scalar(&client, "SELECT current_user").await, "sluice_user");
    }
}
