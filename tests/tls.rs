//! End-to-end: TLS on both sides of Sluice.
//!
//! Towards clients: psql (libpq) with sslmode require / verify-ca /
//! verify-full against the right and the wrong CA and host name; what each
//! `client_tls_sslmode` lets in; `auth_type = cert`; client certificates
//! demanded by verify-ca; SCRAM channel binding; PostgreSQL 17 direct TLS
//! (raw rustls client with ALPN); an SSLRequest with bytes stuffed behind
//! it; stalled handshakes and `client_login_timeout`; certificates reloaded
//! on SIGHUP (and a broken one refused); `client_tls_protocols` /
//! `_ciphers` / `_ecdhcurve` honoured, and what rustls cannot do refused or
//! warned about.
//!
//! Towards servers: a private PostgreSQL with `ssl = on` whose pg_hba.conf
//! admits the test user over TLS only; every `server_tls_sslmode`, the right
//! and the wrong CA and host name, a client certificate for `cert` auth,
//! `server_tls_protocols` / `_ciphers` as PostgreSQL's pg_stat_ssl sees them,
//! and `server_tls_sslmode` changed by SIGHUP.
//!
//! Plaintext servers are the process's shared cluster; the TLS server is one
//! private cluster shared by the tests here (`common_tls::tls_cluster`).
//! Every test runs its own Sluice with its own certificates.

mod common_auth;
mod common_tls;

use std::path::Path;
use std::time::{Duration, Instant};

use common_auth::{
    db_line, ini, login, login_error, login_ok, scalar, standard_databases, start_sluice, userlist,
    wait_for_log, TempDir,
};
use common_tls::{
    client_cert, conninfo, messages, psql_err, psql_ok, read_to_end, row, ssl_request,
    ssl_request_answer, strs, tcp, tls_after_ssl_request, tls_cluster, tls_config, tls_config_with,
    tls_direct, verify, Ending, SluiceCert, Wire, CERT_USER, SERVER_SSL_SQL, SSL_REQUEST, TLS_DB,
    TLS_PW, TLS_USER,
};
use rustls::{CipherSuite, NamedGroup, ProtocolVersion};
use sluice_testkit::{SluiceProcess, TestPki};
use tokio::io::AsyncWriteExt;

/// The shared cluster's role and database the client-side tests log in as.
const USER: &str = "sluice_user";
const PW: &str = "sluice_pw";
const DB: &str = "sluice_db";

/// userlist.txt with sluice_user's plaintext password.
fn users() -> String {
    userlist(&[(USER, PW)])
}

/// Sluice in front of the shared cluster with `auth_type` and these
/// [pgbouncer] lines.
fn sluice_with(auth_type: &str, extra: &[String]) -> SluiceProcess {
    start_sluice(
        &ini(auth_type, &standard_databases(), &strs(extra)),
        &users(),
    )
}

/// Conninfo for sluice_user/sluice_db at `sluice` with libpq TLS options.
fn to(sluice: &SluiceProcess, tls: &str) -> String {
    conninfo(sluice.port, USER, DB, tls)
}

/// Asserts that psql logs in with `tls`, runs a query through Sluice, and
/// that `\conninfo` reports encryption exactly when `encrypted`.
fn assert_psql_works(sluice: &SluiceProcess, tls: &str, encrypted: bool) {
    let (rows, was_encrypted) = psql_ok(&to(sluice, tls), "SELECT current_user", PW);
    assert_eq!(rows, USER, "psql with {tls:?}");
    assert_eq!(
        was_encrypted, encrypted,
        "psql with {tls:?}: TLS in use = {was_encrypted}, expected {encrypted}"
    );
}

/// Asserts that psql with `tls` cannot log in and its stderr contains
/// `needle`.
fn assert_psql_fails(sluice: &SluiceProcess, tls: &str, password: &str, needle: &str) {
    let stderr = psql_err(&to(sluice, tls), password);
    assert!(
        stderr.contains(needle),
        "psql with {tls:?}: expected {needle:?} in stderr:\n{stderr}\n--- Sluice log ---\n{}",
        sluice.log()
    );
}

// ====================================================== client side: psql

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_logs_in_over_tls_with_sslmode_require_verify_ca_and_verify_full() {
    let cert = SluiceCert::new("sluice", &["localhost", "127.0.0.1"]);
    let sluice = sluice_with("plain", &cert.client_tls("require"));
    assert_eq!(
        ssl_request_answer(sluice.port).await,
        b'S',
        "SSLRequest must be answered S"
    );
    assert_psql_works(&sluice, "sslmode=require", true);
    assert_psql_works(&sluice, &verify("verify-ca", cert.ca()), true);
    assert_psql_works(&sluice, &verify("verify-full", cert.ca()), true);

    // verify-full by address: 127.0.0.1 is one of the certificate's IP SANs.
    let by_ip = format!(
        "host=127.0.0.1 port={} user={USER} dbname={DB} {}",
        sluice.port,
        verify("verify-full", cert.ca())
    );
    let (rows, encrypted) = psql_ok(&by_ip, "SELECT 40 + 2", PW);
    assert_eq!(rows, "42");
    assert!(encrypted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_verify_ca_and_verify_full_refuse_a_sluice_certificate_from_another_ca() {
    let cert = SluiceCert::new("sluice", &["localhost", "127.0.0.1"]);
    let other_ca = TestPki::new("not-sluices-ca");
    let sluice = sluice_with("plain", &cert.client_tls("require"));
    for mode in ["verify-ca", "verify-full"] {
        assert_psql_fails(
            &sluice,
            &verify(mode, &other_ca.ca_cert),
            PW,
            "certificate verify failed",
        );
    }
    // The same Sluice is fine for a client that trusts its CA.
    assert_psql_works(&sluice, &verify("verify-full", cert.ca()), true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_verify_full_refuses_a_certificate_for_another_host_name_that_verify_ca_accepts() {
    let cert = SluiceCert::new("sluice", &["other.name"]);
    let sluice = sluice_with("plain", &cert.client_tls("require"));
    assert_psql_fails(
        &sluice,
        &verify("verify-full", cert.ca()),
        PW,
        "does not match host name \"localhost\"",
    );
    assert_psql_works(&sluice, &verify("verify-ca", cert.ca()), true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_sslmode_require_refuses_plaintext_with_ssl_required() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("plain", &cert.client_tls("require"));
    assert_psql_fails(&sluice, "sslmode=disable", PW, "SSL required");
    let (code, message) = login_error(sluice.port, USER, PW, DB).await;
    assert_eq!((code.as_str(), message.as_str()), ("08P01", "SSL required"));
    // libpq's prefer asks for TLS first; allow tries plaintext, is refused,
    // and tries again with TLS.
    assert_psql_works(&sluice, "sslmode=prefer", true);
    assert_psql_works(&sluice, "sslmode=allow", true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_sslmode_disable_answers_n_and_serves_plaintext_only() {
    // No client_tls_* at all: the default is disable.
    let sluice = sluice_with("plain", &[]);
    assert_eq!(
        ssl_request_answer(sluice.port).await,
        b'N',
        "SSLRequest must be answered N"
    );
    assert_psql_fails(
        &sluice,
        "sslmode=require",
        PW,
        "server does not support SSL",
    );
    assert_psql_works(&sluice, "sslmode=prefer", false);
    assert_psql_works(&sluice, "sslmode=disable", false);

    // A direct TLS handshake gets nowhere, and Sluice keeps serving.
    let cert = SluiceCert::new("nobody", &["localhost"]);
    let direct = tls_direct(sluice.port, tls_config(cert.ca(), true), "localhost").await;
    assert!(
        direct.is_err(),
        "a direct TLS handshake with a Sluice without client TLS must fail"
    );
    assert_psql_works(&sluice, "sslmode=prefer", false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_sslmode_prefer_serves_tls_and_plaintext_clients() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("plain", &cert.client_tls("prefer"));
    assert_psql_works(&sluice, &verify("verify-full", cert.ca()), true);
    assert_psql_works(&sluice, "sslmode=disable", false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_sslmode_verify_ca_demands_a_client_certificate_signed_by_its_ca() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("plain", &cert.client_tls_with_ca("verify-ca"));
    let tls = verify("verify-full", cert.ca());

    // No certificate: the handshake fails.
    assert_psql_fails(&sluice, &tls, PW, "SSL error");

    // A certificate from another CA: refused as well.
    let stranger = TestPki::new("stranger");
    let (c, k) = stranger.client_cert("stranger", "whoever");
    assert_psql_fails(
        &sluice,
        &format!("{tls} {}", client_cert(&c, &k)),
        PW,
        "SSL error",
    );

    // A certificate from the CA, whatever its CN (verify-ca checks no name;
    // the user still needs the password under auth_type = plain).
    let (c, k) = cert.pki.client_cert("anybody", "anybody");
    assert_psql_works(&sluice, &format!("{tls} {}", client_cert(&c, &k)), true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_ca_file_under_require_makes_a_client_certificate_optional_but_checked() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("plain", &cert.client_tls_with_ca("require"));
    let tls = verify("verify-full", cert.ca());
    assert_psql_works(&sluice, &tls, true);
    let (c, k) = cert.pki.client_cert("member", "member");
    assert_psql_works(&sluice, &format!("{tls} {}", client_cert(&c, &k)), true);
    let stranger = TestPki::new("stranger");
    let (c, k) = stranger.client_cert("stranger", "stranger");
    assert_psql_fails(
        &sluice,
        &format!("{tls} {}", client_cert(&c, &k)),
        PW,
        "SSL error",
    );
}

// ====================================================== auth_type = cert

fn cert_auth_sluice(cert: &SluiceCert) -> SluiceProcess {
    sluice_with("cert", &cert.client_tls_with_ca("verify-full"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_type_cert_lets_in_the_user_named_by_the_certificate_cn() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = cert_auth_sluice(&cert);
    let (c, k) = cert.pki.client_cert("user", USER);
    let tls = format!(
        "{} {}",
        verify("verify-full", cert.ca()),
        client_cert(&c, &k)
    );
    // No password: the certificate is the credential.
    let (rows, encrypted) = psql_ok(&to(&sluice, &tls), "SELECT current_user", "");
    assert_eq!(rows, USER);
    assert!(encrypted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_type_cert_refuses_a_certificate_whose_cn_names_another_user() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = cert_auth_sluice(&cert);
    let (c, k) = cert.pki.client_cert("other", "md5_user");
    let tls = format!(
        "{} {}",
        verify("verify-full", cert.ca()),
        client_cert(&c, &k)
    );
    assert_psql_fails(
        &sluice,
        &tls,
        "",
        "FATAL:  certificate authentication failed",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_type_cert_refuses_clients_without_a_certificate_from_its_ca() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = cert_auth_sluice(&cert);
    let tls = verify("verify-full", cert.ca());

    // No certificate: verify-full makes the handshake fail, before any
    // authentication.
    assert_psql_fails(&sluice, &tls, PW, "SSL error");
    // Plaintext: SSL required.
    assert_psql_fails(&sluice, "sslmode=disable", PW, "SSL required");
    // The right CN, but signed by another CA.
    let stranger = TestPki::new("stranger");
    let (c, k) = stranger.client_cert("user", USER);
    assert_psql_fails(
        &sluice,
        &format!("{tls} {}", client_cert(&c, &k)),
        "",
        "SSL error",
    );
}

// ====================================================== SCRAM channel binding

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_channel_binding_require_works_over_tls() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("scram-sha-256", &cert.client_tls("require"));
    // SCRAM-SHA-256-PLUS with tls-server-end-point (libpq's channel_binding).
    assert_psql_works(
        &sluice,
        &format!(
            "{} channel_binding=require",
            verify("verify-full", cert.ca())
        ),
        true,
    );
    // The plain mechanism still works for clients that do not bind.
    assert_psql_works(
        &sluice,
        &format!(
            "{} channel_binding=disable",
            verify("verify-full", cert.ca())
        ),
        true,
    );
}

// ====================================================== raw clients

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tls_with_alpn_postgresql_logs_in_and_runs_a_query() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    // require: a direct TLS connection must count as TLS.
    let sluice = sluice_with("plain", &cert.client_tls("require"));
    let tls = tls_direct(sluice.port, tls_config(cert.ca(), true), "localhost")
        .await
        .unwrap_or_else(|e| {
            panic!(
                "direct TLS handshake failed: {e}\n--- Sluice log ---\n{}",
                sluice.log()
            )
        });
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"postgresql"[..]),
        "Sluice must select ALPN postgresql"
    );
    let mut wire = Wire::new(tls);
    wire.login(USER, DB, PW)
        .await
        .unwrap_or_else(|e| panic!("login over direct TLS failed: {e}\n{}", sluice.log()));
    assert_eq!(
        wire.query("SELECT current_user").await.unwrap(),
        vec![USER.to_owned()]
    );
    assert_eq!(wire.query("SELECT 6 * 7").await.unwrap(), vec!["42"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_tls_without_alpn_is_refused_as_postgresql_17_does() {
    // PostgreSQL 17 closes a direct TLS connection that did not negotiate
    // ALPN "postgresql" (defence against cross-protocol attacks); over
    // SSLRequest, ALPN stays optional (libpq before 17 sends none).
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("plain", &cert.client_tls("require"));
    if let Ok(tls) = tls_direct(sluice.port, tls_config(cert.ca(), false), "localhost").await {
        let mut wire = Wire::new(tls);
        let login = wire.login(USER, DB, PW).await;
        assert!(
            login.is_err(),
            "a direct TLS connection without ALPN was served"
        );
    }
    let old_style = tls_after_ssl_request(sluice.port, tls_config(cert.ca(), false), "localhost")
        .await
        .expect("TLS after SSLRequest without ALPN");
    let mut wire = Wire::new(old_style);
    wire.login(USER, DB, PW)
        .await
        .expect("login over SSLRequest TLS without ALPN");
    assert_eq!(wire.query("SELECT 1").await.unwrap(), vec!["1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssl_request_with_bytes_stuffed_behind_it_is_refused_and_closed() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let sluice = sluice_with("trust", &cert.client_tls("prefer"));
    // SSLRequest and a StartupMessage in one write: the startup must never
    // be taken as if it had come through TLS (CVE-2021-23214).
    let mut startup = 196608u32.to_be_bytes().to_vec();
    startup.extend_from_slice(b"user\0sluice_user\0database\0sluice_db\0\0");
    let mut packet = SSL_REQUEST.to_vec();
    packet.extend_from_slice(&((startup.len() + 4) as u32).to_be_bytes());
    packet.extend_from_slice(&startup);
    let mut s = tcp(sluice.port).await;
    s.write_all(&packet).await.unwrap();
    let (got, ending) = read_to_end(&mut s, Duration::from_secs(10)).await;
    assert_ne!(ending, Ending::StillOpen, "connection left open: {got:?}");
    // PostgreSQL answers S and then the error in plaintext; answering only
    // the error is as good.
    let rest = got.strip_prefix(b"S").unwrap_or(&got);
    let msgs = messages(rest);
    assert!(
        msgs.iter().all(|(tag, _)| *tag != b'R'),
        "the stuffed StartupMessage was served: {msgs:?}"
    );
    let error = msgs
        .iter()
        .find(|(tag, _)| *tag == b'E')
        .map(|(_, body)| common_tls::error_text(body))
        .unwrap_or_else(|| panic!("no ErrorResponse, got {got:?}"));
    assert!(error.starts_with("08P01: "), "{error}");
    // Sluice is still there for honest clients.
    assert_psql_works(&sluice, "sslmode=require", true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_closed_after_client_login_timeout() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let mut extra = cert.client_tls("require");
    extra.push("client_login_timeout = 1".to_owned());
    let sluice = sluice_with("plain", &extra);
    let started = Instant::now();
    let (mut s, answer) = ssl_request(sluice.port).await;
    assert_eq!(answer, b'S');
    // …and no ClientHello.
    let (_, ending) = read_to_end(&mut s, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert_ne!(
        ending,
        Ending::StillOpen,
        "still open after 10 s\n{}",
        sluice.log()
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected about 1 s"
    );
    assert!(
        wait_for_log(&sluice, "client_login_timeout", Duration::from_secs(5)).await,
        "no client_login_timeout in the log:\n{}",
        sluice.log()
    );
    assert_psql_works(&sluice, &verify("verify-full", cert.ca()), true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_direct_tls_handshake_is_closed_after_client_login_timeout() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let mut extra = cert.client_tls("require");
    extra.push("client_login_timeout = 1".to_owned());
    let sluice = sluice_with("plain", &extra);
    let started = Instant::now();
    let mut s = tcp(sluice.port).await;
    // The first bytes of a TLS record header (handshake, TLS 1.0), then
    // nothing.
    s.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let (_, ending) = read_to_end(&mut s, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert_ne!(
        ending,
        Ending::StillOpen,
        "still open after 10 s\n{}",
        sluice.log()
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}, expected about 1 s"
    );
    assert_psql_works(&sluice, "sslmode=require", true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_protocols_ciphers_and_ecdhcurve_are_honoured() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let mut extra = cert.client_tls("require");
    extra.extend([
        "client_tls_protocols = tlsv1.2".to_owned(),
        "client_tls_ciphers = ECDHE-ECDSA-CHACHA20-POLY1305".to_owned(),
        "client_tls_ecdhcurve = secp384r1".to_owned(),
    ]);
    let sluice = sluice_with("plain", &extra);
    let tls = tls_after_ssl_request(sluice.port, tls_config(cert.ca(), false), "localhost")
        .await
        .unwrap_or_else(|e| panic!("handshake failed: {e}\n{}", sluice.log()));
    let conn = tls.get_ref().1;
    assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(
        conn.negotiated_cipher_suite().map(|s| s.suite()),
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
    );
    assert_eq!(
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        Some(NamedGroup::secp384r1)
    );
    let mut wire = Wire::new(tls);
    wire.login(USER, DB, PW).await.expect("login over TLS 1.2");
    assert_eq!(wire.query("SELECT 1").await.unwrap(), vec!["1"]);

    // A client that speaks only TLS 1.3 is refused.
    let tls13_only = tls_config_with(
        cert.ca(),
        false,
        &[&rustls::version::TLS13],
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    );
    assert!(
        tls_after_ssl_request(sluice.port, tls13_only, "localhost")
            .await
            .is_err(),
        "a TLS 1.3-only client got in although client_tls_protocols = tlsv1.2"
    );

    // And the other way round.
    let mut extra = cert.client_tls("require");
    extra.push("client_tls_protocols = tlsv1.3".to_owned());
    let sluice13 = sluice_with("plain", &extra);
    let tls12_only = tls_config_with(
        cert.ca(),
        false,
        &[&rustls::version::TLS12],
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    );
    assert!(
        tls_after_ssl_request(sluice13.port, tls12_only, "localhost")
            .await
            .is_err(),
        "a TLS 1.2-only client got in although client_tls_protocols = tlsv1.3"
    );
    let tls = tls_after_ssl_request(sluice13.port, tls_config(cert.ca(), false), "localhost")
        .await
        .expect("TLS 1.3 handshake");
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_rustls_cannot_honour_are_refused_or_warned_about_never_weakened() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let dir = TempDir::new("tls-settings");
    let port = common_auth::free_port();
    let ini_file = |extra: &[&str]| {
        let mut lines = cert.client_tls("require");
        lines.extend(extra.iter().map(|l| (*l).to_owned()));
        let text = ini("plain", &standard_databases(), &strs(&lines))
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.path.to_string_lossy());
        dir.write("userlist.txt", &users());
        dir.write("pgbouncer.ini", &text)
    };

    // Only TLS 1.0/1.1, which rustls does not have: refused at start.
    let path = ini_file(&["client_tls_protocols = tlsv1.1"]);
    let out = common_auth::run_to_exit(&[&path.to_string_lossy()], Duration::from_secs(20));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "started with tlsv1.1 only:\n{text}");
    assert!(text.contains("client_tls_protocols"), "{text}");

    // A verify mode without the CA that clients are checked against.
    let path = ini_file(&["client_tls_sslmode = verify-full"]);
    let out = common_auth::run_to_exit(&[&path.to_string_lossy()], Duration::from_secs(20));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "verify-full without a CA:\n{text}");
    assert!(text.contains("client_tls_ca_file"), "{text}");

    // Legacy DH parameters and TLS 1.0 in the list: started, with warnings,
    // and TLS 1.2+ still works.
    let sluice = sluice_with("plain", &{
        let mut lines = cert.client_tls("require");
        lines.push("client_tls_dheparams = legacy".to_owned());
        lines.push("client_tls_protocols = tlsv1.0,tlsv1.2,tlsv1.3".to_owned());
        lines
    });
    let log = sluice.log();
    assert!(
        log.contains("client_tls_dheparams") && log.contains("client_tls_protocols"),
        "expected warnings naming client_tls_dheparams and client_tls_protocols:\n{log}"
    );
    assert_psql_works(&sluice, &verify("verify-full", cert.ca()), true);
}

// ====================================================== reload

/// Copies a certificate and key over `cert`/`key`, each atomically (written
/// aside, then renamed), as a certificate renewal would.
fn install(from: (&Path, &Path), cert: &Path, key: &Path) {
    for (src, dst) in [(from.0, cert), (from.1, key)] {
        let tmp = dst.with_extension("new");
        std::fs::copy(src, &tmp).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        std::fs::rename(&tmp, dst).unwrap_or_else(|e| panic!("rename {}: {e}", tmp.display()));
    }
}

/// Sends SIGHUP and waits until the log shows one more `needle` than before.
async fn sighup_and_wait(sluice: &SluiceProcess, needle: &str) {
    let before = sluice.log().matches(needle).count();
    sluice.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sluice.log().matches(needle).count() <= before {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log within 10 s of SIGHUP:\n{}",
            sluice.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reissued_certificate_serves_new_clients_and_keeps_connected_ones() {
    let dir = TempDir::new("tls-reload");
    let (cert_path, key_path) = (dir.join("sluice.crt"), dir.join("sluice.key"));
    let first = SluiceCert::new("first", &["localhost"]);
    install((&first.cert, &first.key), &cert_path, &key_path);
    let extra = vec![
        "client_tls_sslmode = require".to_owned(),
        format!("client_tls_cert_file = {}", cert_path.display()),
        format!("client_tls_key_file = {}", key_path.display()),
    ];
    let sluice = sluice_with("plain", &extra);
    assert_psql_works(&sluice, &verify("verify-full", first.ca()), true);

    // A client connected over TLS with the first certificate.
    let tls = tls_after_ssl_request(sluice.port, tls_config(first.ca(), false), "localhost")
        .await
        .expect("handshake with the first certificate");
    let mut old = Wire::new(tls);
    old.login(USER, DB, PW).await.expect("login");
    assert_eq!(old.query("SELECT 1").await.unwrap(), vec!["1"]);

    // Renewal by another CA, then SIGHUP.
    let second = SluiceCert::new("second", &["localhost"]);
    install((&second.cert, &second.key), &cert_path, &key_path);
    sighup_and_wait(&sluice, "configuration reloaded").await;

    assert_psql_works(&sluice, &verify("verify-full", second.ca()), true);
    assert_psql_fails(
        &sluice,
        &verify("verify-full", first.ca()),
        PW,
        "certificate verify failed",
    );
    assert_eq!(
        old.query("SELECT 2").await,
        Ok(vec!["2".to_owned()]),
        "the client connected before the reload was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_certificate_file_keeps_the_old_tls_config() {
    let dir = TempDir::new("tls-reload-broken");
    let (cert_path, key_path) = (dir.join("sluice.crt"), dir.join("sluice.key"));
    let first = SluiceCert::new("first", &["localhost"]);
    install((&first.cert, &first.key), &cert_path, &key_path);
    let extra = vec![
        "client_tls_sslmode = require".to_owned(),
        format!("client_tls_cert_file = {}", cert_path.display()),
        format!("client_tls_key_file = {}", key_path.display()),
    ];
    let sluice = sluice_with("plain", &extra);
    assert_psql_works(&sluice, &verify("verify-full", first.ca()), true);

    std::fs::write(&cert_path, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    sighup_and_wait(&sluice, "reload failed").await;
    assert!(
        sluice.log().contains("client_tls_cert_file"),
        "the reload error should name the setting:\n{}",
        sluice.log()
    );
    assert_psql_works(&sluice, &verify("verify-full", first.ca()), true);
    assert_psql_fails(&sluice, "sslmode=disable", PW, "SSL required");

    // A key that belongs to another certificate: rejected too.
    let second = SluiceCert::new("second", &["localhost"]);
    install((&first.cert, &second.key), &cert_path, &key_path);
    sighup_and_wait(&sluice, "reload failed").await;
    assert_psql_works(&sluice, &verify("verify-full", first.ca()), true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_turns_client_tls_on_and_off_for_new_connections() {
    let cert = SluiceCert::new("sluice", &["localhost"]);
    let plain_ini = ini("plain", &standard_databases(), &[]);
    let tls_ini = ini(
        "plain",
        &standard_databases(),
        &strs(&cert.client_tls("require")),
    );
    let sluice = start_sluice(&plain_ini, &users());
    assert_eq!(ssl_request_answer(sluice.port).await, b'N');
    assert_psql_works(&sluice, "sslmode=prefer", false);

    sluice.rewrite_ini(&tls_ini);
    sighup_and_wait(&sluice, "configuration reloaded").await;
    assert_eq!(ssl_request_answer(sluice.port).await, b'S');
    assert_psql_works(&sluice, &verify("verify-full", cert.ca()), true);
    assert_psql_fails(&sluice, "sslmode=disable", PW, "SSL required");

    sluice.rewrite_ini(&plain_ini);
    sighup_and_wait(&sluice, "configuration reloaded").await;
    assert_eq!(ssl_request_answer(sluice.port).await, b'N');
    assert_psql_works(&sluice, "sslmode=disable", false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_changes_server_tls_sslmode_for_new_server_connections() {
    let tc = tls_cluster();
    let databases = [tc.db_line(TLS_DB, "localhost", "")];
    let ini_with = |mode: &str| {
        ini(
            "plain",
            &databases,
            &[
                &format!("server_tls_sslmode = {mode}"),
                &format!("server_tls_ca_file = {}", tc.pki.ca_cert.display()),
            ],
        )
    };
    let sluice = start_sluice(&ini_with("disable"), &userlist(&[(TLS_USER, TLS_PW)]));
    let (code, message) = login_error(sluice.port, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(code, "28000", "{message}");

    sluice.rewrite_ini(&ini_with("verify-full"));
    sighup_and_wait(&sluice, "configuration reloaded").await;
    let client = match login(sluice.port, TLS_USER, TLS_PW, TLS_DB).await {
        Ok(c) => c,
        Err(e) => panic!(
            "login after switching server_tls_sslmode to verify-full: {}\n{}",
            common_auth::describe(&e),
            sluice.log()
        ),
    };
    assert_eq!(row(&client, SERVER_SSL_SQL).await[0], "true");
}

// ====================================================== server side

/// Sluice (auth_type plain, client TLS off) with `databases` and these
/// [pgbouncer] lines; the userlist knows tls_user and sluice_user.
fn server_side_sluice(databases: &[String], extra: &[String]) -> SluiceProcess {
    start_sluice(
        &ini("plain", databases, &strs(extra)),
        &userlist(&[(TLS_USER, TLS_PW), (USER, PW), ("app", "app_pw")]),
    )
}

/// (ssl, version, cipher) of the server connection behind a Sluice client.
async fn server_ssl(sluice: &SluiceProcess, user: &str, pw: &str, db: &str) -> Vec<String> {
    let client = login_ok(sluice.port, user, pw, db).await;
    row(&client, SERVER_SSL_SQL).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_sslmode_require_reaches_a_server_that_accepts_only_tls() {
    let tc = tls_cluster();
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "127.0.0.1", "")],
        &["server_tls_sslmode = require".to_owned()],
    );
    let ssl = server_ssl(&sluice, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(ssl[0], "true", "server connection not encrypted: {ssl:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_sslmode_disable_passes_on_the_servers_rejection() {
    let tc = tls_cluster();
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "127.0.0.1", "")],
        &["server_tls_sslmode = disable".to_owned()],
    );
    let (code, message) = login_error(sluice.port, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(code, "28000", "{message}");
    assert!(
        message.contains("pg_hba.conf rejects connection") && message.contains("no encryption"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_sslmode_prefer_is_the_default_and_encrypts_when_the_server_can() {
    let tc = tls_cluster();
    let sluice = server_side_sluice(&[tc.db_line(TLS_DB, "127.0.0.1", "")], &[]);
    let ssl = server_ssl(&sluice, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(ssl[0], "true", "{ssl:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_sslmode_prefer_falls_back_to_plaintext_against_a_server_without_ssl() {
    let sluice = server_side_sluice(
        &[db_line(DB, &format!("dbname={DB}"))],
        &["server_tls_sslmode = prefer".to_owned()],
    );
    let ssl = server_ssl(&sluice, USER, PW, DB).await;
    assert_eq!(ssl[0], "false", "{ssl:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_sslmode_require_fails_against_a_server_without_ssl() {
    let sluice = server_side_sluice(
        &[db_line(DB, &format!("dbname={DB}"))],
        &["server_tls_sslmode = require".to_owned()],
    );
    let (_, message) = login_error(sluice.port, USER, PW, DB).await;
    let lower = message.to_lowercase();
    assert!(
        lower.contains("tls") || lower.contains("ssl"),
        "the error should say the server refused TLS: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_sslmode_allow_asks_for_tls_and_falls_back_like_pgbouncer() {
    // PgBouncer sends an SSLRequest for every mode but disable; allow and
    // prefer both take TLS when the server says S and go on in plaintext
    // when it says N (sluice-tls documents allow as "encrypted" too).
    let tc = tls_cluster();
    let allow = ["server_tls_sslmode = allow".to_owned()];
    let sluice = server_side_sluice(&[tc.db_line(TLS_DB, "127.0.0.1", "")], &allow);
    let client = match login(sluice.port, TLS_USER, TLS_PW, TLS_DB).await {
        Ok(c) => c,
        Err(e) => panic!(
            "server_tls_sslmode = allow against a TLS-only server: {}",
            common_auth::describe(&e)
        ),
    };
    assert_eq!(row(&client, SERVER_SSL_SQL).await[0], "true");

    let sluice = server_side_sluice(&[db_line(DB, &format!("dbname={DB}"))], &allow);
    assert_eq!(server_ssl(&sluice, USER, PW, DB).await[0], "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_verify_full_accepts_the_right_ca_and_host_name() {
    let tc = tls_cluster();
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "localhost", "")],
        &[
            "server_tls_sslmode = verify-full".to_owned(),
            format!("server_tls_ca_file = {}", tc.pki.ca_cert.display()),
        ],
    );
    let client = login_ok(sluice.port, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(scalar(&client, "SELECT current_user").await, TLS_USER);
    assert_eq!(row(&client, SERVER_SSL_SQL).await[0], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_verify_full_refuses_a_certificate_without_the_host_name() {
    let tc = tls_cluster();
    // The server's certificate names only "localhost".
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "127.0.0.1", "")],
        &[
            "server_tls_sslmode = verify-full".to_owned(),
            format!("server_tls_ca_file = {}", tc.pki.ca_cert.display()),
        ],
    );
    let (_, message) = login_error(sluice.port, TLS_USER, TLS_PW, TLS_DB).await;
    assert!(
        message.to_lowercase().contains("certificate"),
        "the error should be about the server's certificate: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_verify_ca_refuses_the_wrong_ca_and_does_not_check_the_host_name() {
    let tc = tls_cluster();
    let wrong = TestPki::new("wrong-server-ca");
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "127.0.0.1", "")],
        &[
            "server_tls_sslmode = verify-ca".to_owned(),
            format!("server_tls_ca_file = {}", wrong.ca_cert.display()),
        ],
    );
    let (_, message) = login_error(sluice.port, TLS_USER, TLS_PW, TLS_DB).await;
    assert!(
        message.to_lowercase().contains("certificate"),
        "the error should be about the server's certificate: {message}"
    );

    // The right CA, by address (not a name in the certificate): accepted.
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "127.0.0.1", "")],
        &[
            "server_tls_sslmode = verify-ca".to_owned(),
            format!("server_tls_ca_file = {}", tc.pki.ca_cert.display()),
        ],
    );
    let ssl = server_ssl(&sluice, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(ssl[0], "true", "{ssl:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_require_with_a_ca_file_verifies_the_chain_like_libpq() {
    let tc = tls_cluster();
    let wrong = TestPki::new("wrong-server-ca");
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "127.0.0.1", "")],
        &[
            "server_tls_sslmode = require".to_owned(),
            format!("server_tls_ca_file = {}", wrong.ca_cert.display()),
        ],
    );
    let (_, message) = login_error(sluice.port, TLS_USER, TLS_PW, TLS_DB).await;
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_cert_file_is_presented_to_a_server_that_wants_cert_auth() {
    let tc = tls_cluster();
    // Clients log in to Sluice as "app"; Sluice logs in to PostgreSQL as
    // tls_cert_user with its certificate (pg_hba `cert`, no password).
    let databases = [tc.db_line("certdb", "localhost", &format!("user={CERT_USER}"))];
    let mut extra = vec![
        "server_tls_sslmode = verify-full".to_owned(),
        format!("server_tls_ca_file = {}", tc.pki.ca_cert.display()),
    ];
    let without = server_side_sluice(&databases, &extra);
    let (code, message) = login_error(without.port, "app", "app_pw", "certdb").await;
    assert_eq!(code, "28000", "{message}");

    extra.push(format!(
        "server_tls_cert_file = {}",
        tc.client_cert.display()
    ));
    extra.push(format!("server_tls_key_file = {}", tc.client_key.display()));
    let with = server_side_sluice(&databases, &extra);
    let client = match login(with.port, "app", "app_pw", "certdb").await {
        Ok(c) => c,
        Err(e) => panic!(
            "login with a server certificate failed: {}\n{}",
            common_auth::describe(&e),
            with.log()
        ),
    };
    assert_eq!(scalar(&client, "SELECT current_user").await, CERT_USER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tls_protocols_and_ciphers_are_honoured() {
    let tc = tls_cluster();
    let sluice = server_side_sluice(
        &[tc.db_line(TLS_DB, "localhost", "")],
        &[
            "server_tls_sslmode = verify-full".to_owned(),
            format!("server_tls_ca_file = {}", tc.pki.ca_cert.display()),
            "server_tls_protocols = tlsv1.2".to_owned(),
            "server_tls_ciphers = ECDHE-ECDSA-AES128-GCM-SHA256".to_owned(),
        ],
    );
    let ssl = server_ssl(&sluice, TLS_USER, TLS_PW, TLS_DB).await;
    assert_eq!(
        ssl,
        ["true", "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        "pg_stat_ssl of the server connection"
    );
}
