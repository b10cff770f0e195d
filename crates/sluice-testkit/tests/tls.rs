//! TLS clusters from the testkit's PKI, checked with the real psql/libpq:
//! verify-full with the right and the wrong CA and host name, hostssl/
//! hostnossl rules from `ClusterOptions::hba`, and `cert` auth by CN.

use std::process::Output;

use sluice_testkit::{psql_with, ClusterOptions, HbaAuth, PgCluster, TestPki};

const PW: &[(&str, &str)] = &[("PGPASSWORD", "tls_pw")];

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "psql failed ({}): {}",
        out.status,
        stderr(out)
    );
    stdout(out)
}

#[track_caller]
fn assert_refused(out: &Output, expected: &str) {
    assert!(
        !out.status.success(),
        "psql succeeded, expected {expected:?}: {}",
        stdout(out)
    );
    let err = stderr(out);
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
}

/// Conninfo to `pg` as `user`: TCP to 127.0.0.1, `host` as the name
/// verify-full checks, then `extra` (sslmode and friends).
fn conninfo(pg: &PgCluster, host: &str, user: &str, extra: &str) -> String {
    format!(
        "host={host} hostaddr=127.0.0.1 port={} user={user} dbname=postgres {extra}",
        pg.port
    )
}

/// `<user>|t` over TLS, `<user>|f` in plaintext.
const WHOAMI: &str = "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn tls_cluster(pki: &TestPki) -> PgCluster {
    PgCluster::start(ClusterOptions {
        auth: HbaAuth::Scram,
        users: vec![("tls_user".into(), "tls_pw".into())],
        ssl: Some(pki.cluster_ssl(&["localhost", "127.0.0.1"])),
        hba: Some(
            "hostssl all tls_user 127.0.0.1/32 scram-sha-256\n\
             hostnossl all tls_user 127.0.0.1/32 reject\n"
                .into(),
        ),
        ..Default::default()
    })
}

#[test]
fn verify_full_accepts_the_right_ca_and_host_only() {
    let pki = TestPki::new("server");
    let wrong = TestPki::new("wrong");
    let pg = tls_cluster(&pki);
    assert_eq!(pg.psql("postgres", "SHOW ssl"), "on");

    let ca = format!("sslrootcert={}", pki.ca_cert.display());
    let wrong_ca = format!("sslrootcert={}", wrong.ca_cert.display());

    let full = format!("sslmode=verify-full {ca}");
    let out = psql_with(&conninfo(&pg, "localhost", "tls_user", &full), WHOAMI, PW);
    assert_eq!(assert_ok(&out), "tls_user|t");
    // The IP SAN matches a numeric host.
    let out = psql_with(&conninfo(&pg, "127.0.0.1", "tls_user", &full), WHOAMI, PW);
    assert_eq!(assert_ok(&out), "tls_user|t");

    let out = psql_with(
        &conninfo(
            &pg,
            "localhost",
            "tls_user",
            &format!("sslmode=verify-full {wrong_ca}"),
        ),
        WHOAMI,
        PW,
    );
    assert_refused(&out, "certificate verify failed");
    let out = psql_with(
        &conninfo(
            &pg,
            "localhost",
            "tls_user",
            &format!("sslmode=verify-ca {wrong_ca}"),
        ),
        WHOAMI,
        PW,
    );
    assert_refused(&out, "certificate verify failed");

    // A name the certificate lacks: verify-full refuses, verify-ca does not.
    let out = psql_with(
        &conninfo(&pg, "wrong.invalid", "tls_user", &full),
        WHOAMI,
        PW,
    );
    assert_refused(&out, "does not match host name");
    let out = psql_with(
        &conninfo(
            &pg,
            "wrong.invalid",
            "tls_user",
            &format!("sslmode=verify-ca {ca}"),
        ),
        WHOAMI,
        PW,
    );
    assert_eq!(assert_ok(&out), "tls_user|t");

    // Right CA, wrong password: TLS is fine, SCRAM is not.
    let out = psql_with(
        &conninfo(&pg, "localhost", "tls_user", &full),
        WHOAMI,
        &[("PGPASSWORD", "nope")],
    );
    assert_refused(&out, "password authentication failed");
}

#[test]
fn hostnossl_reject_refuses_plaintext_but_not_the_superuser() {
    let pki = TestPki::new("server");
    let pg = tls_cluster(&pki);

    let out = psql_with(
        &conninfo(&pg, "localhost", "tls_user", "sslmode=disable"),
        WHOAMI,
        PW,
    );
    assert_refused(&out, "pg_hba.conf rejects connection");
    assert!(stderr(&out).contains("no encryption"), "{}", stderr(&out));

    // sslmode=require needs no CA and gets in over TLS.
    let out = psql_with(
        &conninfo(&pg, "localhost", "tls_user", "sslmode=require"),
        WHOAMI,
        PW,
    );
    assert_eq!(assert_ok(&out), "tls_user|t");

    // The superuser's trust lines come first: plaintext TCP and the socket.
    let out = psql_with(
        &conninfo(&pg, "localhost", "postgres", "sslmode=disable"),
        WHOAMI,
        &[],
    );
    assert_eq!(assert_ok(&out), "postgres|f");
    assert_eq!(pg.psql("postgres", "SELECT current_user"), "postgres");
}

#[test]
fn cert_auth_checks_the_client_certificate_and_its_cn() {
    let pki = TestPki::new("server");
    let wrong = TestPki::new("wrong");
    let pg = PgCluster::start(ClusterOptions {
        users: vec![("cert_user".into(), "unused".into())],
        ssl: Some(pki.cluster_ssl(&["localhost"])),
        hba: Some("hostssl all cert_user 127.0.0.1/32 cert\n".into()),
        ..Default::default()
    });
    let with_cert = |(cert, key): (std::path::PathBuf, std::path::PathBuf)| {
        format!(
            "sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            pki.ca_cert.display(),
            cert.display(),
            key.display()
        )
    };

    let good = with_cert(pki.client_cert("cert_user", "cert_user"));
    let out = psql_with(&conninfo(&pg, "localhost", "cert_user", &good), WHOAMI, &[]);
    assert_eq!(assert_ok(&out), "cert_user|t");

    let other_cn = with_cert(pki.client_cert("mallory", "mallory"));
    let out = psql_with(
        &conninfo(&pg, "localhost", "cert_user", &other_cn),
        WHOAMI,
        &[],
    );
    assert_refused(
        &out,
        "certificate authentication failed for user \"cert_user\"",
    );

    // Signed by a CA the server does not trust: the handshake fails.
    let untrusted = with_cert(wrong.client_cert("cert_user", "cert_user"));
    let out = psql_with(
        &conninfo(&pg, "localhost", "cert_user", &untrusted),
        WHOAMI,
        &[],
    );
    assert_refused(&out, "unknown ca");

    // No certificate at all.
    let none = format!(
        "sslmode=verify-full sslrootcert={} sslcert=/nonexistent sslkey=/nonexistent",
        pki.ca_cert.display()
    );
    let out = psql_with(&conninfo(&pg, "localhost", "cert_user", &none), WHOAMI, &[]);
    assert_refused(&out, "requires a valid client certificate");
}
