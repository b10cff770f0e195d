//! No password or secret reaches the log at any verbosity: Sluice at the
//! most verbose level (SLUICE_LOG=trace and verbose = 3), with a server
//! password in [databases], plaintext, md5 and SCRAM secrets in the
//! userlist, and logins with right and wrong passwords over md5 and SCRAM.

mod common;

use common::sluice_bin;
use sluice_testkit::{try_connect, PgCluster, SluiceProcess};

const SERVER_PW: &str = "Srv-Secret-7391";
const MD5_PW: &str = "Md5-Secret-4412";
const SCRAM_PW: &str = "Scram-Secret-8820";
const WRONG_PW: &str = "Wrong-Guess-5527";

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    format!("{:x}", Md5::digest(s.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_secret_is_logged_even_at_trace_level() {
    let cluster = PgCluster::shared();
    cluster.psql(
        "postgres",
        &format!(
            "CREATE ROLE ls_server LOGIN PASSWORD '{SERVER_PW}';\n\
             CREATE DATABASE ls_db OWNER ls_server;"
        ),
    );
    let md5_secret = format!("md5{}", md5_hex(&format!("{MD5_PW}ls_md5")));
    let userlist = format!(
        "\"ls_md5\" \"{md5_secret}\"\n\"ls_scram\" \"{SCRAM_PW}\"\n\"ls_plain\" \"{MD5_PW}\"\n"
    );
    let hba = std::env::temp_dir().join(format!("sluice-log-secrets-{}.conf", std::process::id()));
    std::fs::write(
        &hba,
        "host all ls_scram 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 md5\n",
    )
    .unwrap();
    let ini = format!(
        "[databases]\n\
         ls_db = host=127.0.0.1 port={port} user=ls_server password={SERVER_PW}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {{port}}\n\
         unix_socket_dir =\n\
         auth_type = hba\n\
         auth_hba_file = {hba}\n\
         auth_file = {{dir}}/userlist.txt\n\
         verbose = 3\n\
         log_connections = 1\n\
         log_disconnections = 1\n\
         log_pooler_errors = 1\n",
        port = cluster.port,
        hba = hba.display()
    );
    let sluice =
        SluiceProcess::start_with_env(sluice_bin(), &ini, &userlist, &[("SLUICE_LOG", "trace")]);

    for (user, right) in [
        ("ls_md5", MD5_PW),
        ("ls_scram", SCRAM_PW),
        ("ls_plain", MD5_PW),
    ] {
        for (pw, ok) in [(right, true), (WRONG_PW, false)] {
            let url = sluice.url(user, pw, "ls_db");
            match try_connect(&url).await {
                Ok(client) => {
                    assert!(ok, "{user} got in with a wrong password");
                    client.simple_query("SELECT 1").await.unwrap();
                }
                Err(e) => assert!(!ok, "{user}: {e}"),
            }
        }
    }
    let _ = std::fs::remove_file(&hba);
    let log = sluice.log();
    assert!(
        log.contains("login attempt"),
        "not verbose enough to mean anything:\n{log}"
    );
    for secret in [
        SERVER_PW.to_owned(),
        MD5_PW.to_owned(),
        SCRAM_PW.to_owned(),
        WRONG_PW.to_owned(),
        md5_secret.clone(),
        md5_secret[3..].to_owned(),
    ] {
        assert!(!log.contains(&secret), "{secret} is in the log:\n{log}");
    }
}
