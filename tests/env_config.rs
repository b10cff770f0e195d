//! End-to-end: Sluice configured by environment variables alone, in each
//! of the three container images' dialects (pgbouncer/pgbouncer,
//! edoburu/pgbouncer, bitnami/pgbouncer), in front of a real PostgreSQL;
//! `--print-config` masking secrets; a mix of dialects refused; `sluice
//! health` (the container HEALTHCHECK) against a running and a stopped
//! pooler.

mod common;

use std::process::Command;

use common::{sluice_bin, Tenant};
use sluice_testkit::{connect, free_port, PgCluster, SluiceProcess};

/// A transaction through Sluice as `user`; returns (current_user,
/// current_database()).
async fn transaction(url: &str) -> (String, String) {
    let client = connect(url).await;
    client.batch_execute("BEGIN").await.unwrap();
    let row = client
        .query_one("SELECT current_user::text, current_database()::text", &[])
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_image_variables_alone_run_a_transaction_pooler() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "envpgb");
    let port = free_port();
    let pg_port = cluster.port.to_string();
    let listen = port.to_string();
    let sluice = SluiceProcess::start_env_only(
        sluice_bin(),
        &[
            ("DATABASES_HOST", "127.0.0.1"),
            ("DATABASES_PORT", &pg_port),
            ("DATABASES_USER", &tenant.user),
            ("DATABASES_PASSWORD", &tenant.password),
            ("DATABASES_DBNAME", &tenant.db),
            ("PGBOUNCER_LISTEN_ADDR", "127.0.0.1"),
            ("PGBOUNCER_LISTEN_PORT", &listen),
            ("PGBOUNCER_UNIX_SOCKET_DIR", "{dir}"),
            ("PGBOUNCER_POOL_MODE", "transaction"),
            ("PGBOUNCER_MAX_CLIENT_CONN", "1000"),
            ("PGBOUNCER_DEFAULT_POOL_SIZE", "2"),
        ],
        port,
    );
    // auth_type any (the image's default): any name and password get in,
    // and every database name reaches the one configured (`*`).
    let url = sluice.url("whoever", "anything", "any_name");
    let (user, db) = transaction(&url).await;
    assert_eq!(
        (user.as_str(), db.as_str()),
        (tenant.user.as_str(), tenant.db.as_str())
    );
    assert!(
        sluice.log().contains("pgbouncer/pgbouncer variables"),
        "{}",
        sluice.log()
    );

    // The HEALTHCHECK: same variables, a console login and SHOW VERSION,
    // over the unix socket (the own OS user) and over TCP (auth_type any).
    let dir = sluice.dir.to_string_lossy().into_owned();
    let env = [
        ("DATABASES_HOST", "127.0.0.1"),
        ("PGBOUNCER_LISTEN_ADDR", "127.0.0.1"),
        ("PGBOUNCER_LISTEN_PORT", listen.as_str()),
    ];
    for socket_dir in [dir.as_str(), ""] {
        let mut env = env.to_vec();
        env.push(("PGBOUNCER_UNIX_SOCKET_DIR", socket_dir));
        let out = sluice_with_env(&["health"], &env);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains("console answers SHOW VERSION: PgBouncer") && text.contains("Sluice"),
            "{text}"
        );
        let via = if socket_dir.is_empty() {
            "127.0.0.1"
        } else {
            ".s.PGSQL."
        };
        assert!(text.contains(via), "{text}");
    }
    drop(sluice);
    let mut env = env.to_vec();
    env.push(("PGBOUNCER_UNIX_SOCKET_DIR", ""));
    let out = sluice_with_env(&["health"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unhealthy: cannot connect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edoburu_database_url_alone_runs_a_pooler_with_its_userlist_entry() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "envedo");
    let port = free_port();
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{}/{}?sslmode=disable",
        tenant.user, tenant.password, cluster.port, tenant.db
    );
    let listen = port.to_string();
    let sluice = SluiceProcess::start_env_only(
        sluice_bin(),
        &[
            ("DATABASE_URL", &url),
            ("AUTH_TYPE", "scram-sha-256"),
            ("LISTEN_ADDR", "127.0.0.1"),
            ("LISTEN_PORT", &listen),
            ("POOL_MODE", "transaction"),
            ("DEFAULT_POOL_SIZE", "2"),
        ],
        port,
    );
    // The user the image writes into the userlist logs in with its
    // password (SCRAM), and the server login reuses it.
    let (user, db) = transaction(&tenant.url(&sluice)).await;
    assert_eq!(
        (user.as_str(), db.as_str()),
        (tenant.user.as_str(), tenant.db.as_str())
    );
    // No unix socket (the image's default) and md5 for the console: the
    // health check sees the pooler ask for a password.
    let out = sluice_with_env(
        &["health"],
        &[
            ("DATABASE_URL", &url),
            ("LISTEN_ADDR", "127.0.0.1"),
            ("LISTEN_PORT", &listen),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("answers logins"), "{text}");
    let wrong = sluice.url(&tenant.user, "wrong", &tenant.db);
    let Err(e) = sluice_testkit::try_connect(&wrong).await else {
        panic!("a wrong password got in");
    };
    assert!(format!("{e:?}").contains("28P01"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitnami_variables_alone_run_a_pooler_with_secrets_from_files() {
    let cluster = PgCluster::shared();
    let tenant = Tenant::create(cluster, "envbit");
    let port = free_port();
    let pg_port = cluster.port.to_string();
    let listen = port.to_string();
    let secret_dir = std::env::temp_dir().join(format!("sluice-bitnami-{}", std::process::id()));
    std::fs::create_dir_all(&secret_dir).unwrap();
    let secret = secret_dir.join("password");
    std::fs::write(&secret, format!("{}\n", tenant.password)).unwrap();
    let sluice = SluiceProcess::start_env_only(
        sluice_bin(),
        &[
            ("POSTGRESQL_HOST", "127.0.0.1"),
            ("POSTGRESQL_PORT", &pg_port),
            ("POSTGRESQL_USERNAME", &tenant.user),
            ("POSTGRESQL_PASSWORD_FILE", secret.to_str().unwrap()),
            ("POSTGRESQL_DATABASE", &tenant.db),
            ("PGBOUNCER_DATABASE", "app"),
            ("PGBOUNCER_PORT", &listen),
            ("PGBOUNCER_LISTEN_ADDRESS", "127.0.0.1"),
            ("PGBOUNCER_SOCKET_DIR", "{dir}"),
            ("PGBOUNCER_POOL_MODE", "transaction"),
        ],
        port,
    );
    // Client name `app` maps to the tenant's database (dbname=), SCRAM
    // against the plaintext userlist entry the image writes.
    let url = sluice.url(&tenant.user, &tenant.password, "app");
    let (user, db) = transaction(&url).await;
    assert_eq!(
        (user.as_str(), db.as_str()),
        (tenant.user.as_str(), tenant.db.as_str())
    );
    let _ = std::fs::remove_dir_all(&secret_dir);
}

fn sluice_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("PGBOUNCER_") || k.starts_with("DATABASE") || k.starts_with("DB_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn print_config_shows_the_effective_settings_with_secrets_masked() {
    let out = sluice_with_env(
        &["--print-config"],
        &[
            ("DATABASES_HOST", "db.internal"),
            ("DATABASES_PASSWORD", "hunter2-secret"),
            ("PGBOUNCER_POOL_MODE", "transaction"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("* = host=db.internal port=5432 password=*****"),
        "{text}"
    );
    assert!(text.contains("pool_mode = transaction"), "{text}");
    assert!(text.contains("auth_type = any"), "{text}");
    assert!(text.contains("pgbouncer/pgbouncer dialect"), "{text}");
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn env_overrides_the_file_only_with_the_env_flag() {
    let dir = std::env::temp_dir().join(format!("sluice-envflag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ini = dir.join("pgbouncer.ini");
    std::fs::write(
        &ini,
        "[databases]\n* = host=127.0.0.1\n[pgbouncer]\npool_mode = session\n",
    )
    .unwrap();
    let ini = ini.to_str().unwrap();
    let env = [("PGBOUNCER_POOL_MODE", "statement")];
    let plain = sluice_with_env(&["--print-config", ini], &env);
    assert!(String::from_utf8_lossy(&plain.stdout).contains("pool_mode = session"));
    let with_env = sluice_with_env(&["--env", "--print-config", ini], &env);
    assert!(String::from_utf8_lossy(&with_env.stdout).contains("pool_mode = statement"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mix_of_image_dialects_is_refused_naming_the_variables() {
    let out = sluice_with_env(&[], &[("DATABASES_HOST", "a"), ("DB_HOST", "b")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DATABASES_HOST") && err.contains("DB_HOST"),
        "{err}"
    );
}
