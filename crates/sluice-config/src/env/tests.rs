use super::edoburu::{parse_url, Backend};
use super::*;
use crate::{ConfigSource, Loaded, PoolMode};

fn vars(pairs: &[(&str, &str)]) -> EnvVars {
    EnvVars::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn load(pairs: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    ConfigSource {
        file: None,
        env: Some(vars(pairs)),
    }
    .load()
}

#[test]
fn the_cal_com_sidecar_variables_make_one_database_line_and_set_the_pool() {
    let l = load(&[
        ("DATABASES_HOST", "db"),
        ("DATABASES_PORT", "5433"),
        ("DATABASES_USER", "cal"),
        ("DATABASES_PASSWORD", "pw with 'quote' and space"),
        ("DATABASES_DBNAME", "calendso"),
        ("PGBOUNCER_POOL_MODE", "transaction"),
        ("PGBOUNCER_MAX_CLIENT_CONN", "1000"),
        ("PGBOUNCER_DEFAULT_POOL_SIZE", "25"),
        ("HOME", "/root"),
        ("USER", "root"),
    ])
    .unwrap();
    assert_eq!(l.dialect, Some(Dialect::PgBouncerImage));
    let g = &l.config.general;
    assert_eq!(g.pool_mode, PoolMode::Transaction);
    assert_eq!(g.max_client_conn, 1000);
    assert_eq!(g.default_pool_size, 25);
    assert_eq!(g.listen_port, 6432);
    assert_eq!(g.auth_type.as_str(), "any");
    assert_eq!(g.admin_users, vec!["postgres".to_string()]);
    assert_eq!(
        g.ignore_startup_parameters,
        vec!["extra_float_digits".to_string()]
    );
    // $USER is not a [pgbouncer] key here: only PGBOUNCER_* are.
    assert_eq!(g.user, None);
    let db = &l.config.databases["*"];
    assert_eq!(db.host.as_deref(), Some("db"));
    assert_eq!(db.port, 5433);
    assert_eq!(db.user.as_deref(), Some("cal"));
    assert_eq!(db.password.as_deref(), Some("pw with 'quote' and space"));
    assert_eq!(db.dbname.as_deref(), Some("calendso"));
    assert!(l.env_userlist.is_empty());
}

#[test]
fn pgbouncer_image_port_defaults_to_5432_and_the_client_side_name_can_be_set() {
    let l = load(&[
        ("DATABASES_HOST", "db"),
        ("DATABASES_CLIENT_SIDE_DBNAME", "app"),
        ("DATABASES_POOL_SIZE", "7"),
        ("DATABASES_POOL_MODE", "session"),
    ])
    .unwrap();
    let db = &l.config.databases["app"];
    assert_eq!(db.port, 5432);
    assert_eq!(db.pool_size, Some(7));
    assert_eq!(db.pool_mode, Some(PoolMode::Session));
    assert_eq!(db.user, None);
}

#[test]
fn databases_host_is_required_with_the_other_databases_variables() {
    let e = load(&[("DATABASES_PORT", "5432")]).unwrap_err().to_string();
    assert!(e.contains("DATABASES_HOST is required"), "{e}");
    assert!(e.contains("DATABASES_PORT"), "{e}");
}

#[test]
fn databases_and_databases_raw_give_whole_lines() {
    let l = load(&[
        ("DATABASES", "a = host=h1 dbname=x, b = host=h2"),
        (
            "DATABASES_RAW",
            "c = host=h3 connect_query='SELECT 1,2'|d = host=h4",
        ),
    ])
    .unwrap();
    let names: Vec<&str> = l.config.databases.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
    assert_eq!(l.config.databases["a"].dbname.as_deref(), Some("x"));
    assert_eq!(l.config.databases["d"].host.as_deref(), Some("h4"));
    assert_eq!(
        l.config.databases["c"].connect_query.as_deref(),
        Some("SELECT 1,2")
    );
}

#[test]
fn a_value_cannot_smuggle_in_a_line_or_an_include() {
    let e = load(&[
        ("DATABASES_HOST", "db"),
        ("PGBOUNCER_POOL_MODE", "transaction\n%include /etc/passwd"),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("$PGBOUNCER_POOL_MODE:1: invalid value for pool_mode"),
        "{e}"
    );
}

#[test]
fn variables_of_two_images_are_an_error_naming_them() {
    let e = load(&[
        ("DATABASES_HOST", "a"),
        ("DB_HOST", "b"),
        ("POSTGRESQL_HOST", "c"),
    ])
    .unwrap_err()
    .to_string();
    for name in [
        "DATABASES_HOST",
        "DB_HOST",
        "POSTGRESQL_HOST",
        "edoburu/pgbouncer",
    ] {
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn no_file_and_no_image_variables_is_an_error() {
    let e = load(&[("HOME", "/root")]).unwrap_err().to_string();
    assert!(e.contains("no config file given"), "{e}");
}

#[test]
fn edoburu_db_variables_make_an_auth_user_line_and_an_md5_userlist_entry() {
    let l = load(&[
        ("DB_HOST", "db.example.com"),
        ("DB_USER", "appuser"),
        ("DB_PASSWORD", "s3cret"),
        ("POOL_MODE", "transaction"),
        ("MAX_CLIENT_CONN", "500"),
    ])
    .unwrap();
    assert_eq!(l.dialect, Some(Dialect::Edoburu));
    let g = &l.config.general;
    assert_eq!(g.listen_port, 5432);
    assert_eq!(g.auth_type.as_str(), "md5");
    assert_eq!(g.pool_mode, PoolMode::Transaction);
    assert_eq!(g.max_client_conn, 500);
    assert_eq!(g.unix_socket_dir, "");
    let db = &l.config.databases["*"];
    assert_eq!(db.auth_user.as_deref(), Some("appuser"));
    assert_eq!(db.port, 5432);
    // The value edoburu's own tests pin for appuser / s3cret.
    assert_eq!(
        l.env_userlist,
        "\"appuser\" \"md5fa2df9ea52c258d9e2cf7d41e881af9f\"\n"
    );
    assert!(!l.env_userlist_wins);
}

#[test]
fn edoburu_keeps_the_password_itself_for_scram_and_plain() {
    for auth in ["scram-sha-256", "plain"] {
        let l = load(&[
            ("DB_HOST", "h"),
            ("DB_USER", "u"),
            ("DB_PASSWORD", "p"),
            ("AUTH_TYPE", auth),
        ])
        .unwrap();
        assert_eq!(l.env_userlist, "\"u\" \"p\"\n", "{auth}");
    }
}

#[test]
fn edoburu_urls_are_decoded_and_each_stands_alone() {
    assert_eq!(
        parse_url("postgresql://us%40er:p%3Ass@db:5433/app%20db?sslmode=require").unwrap(),
        Backend {
            host: Some("db".into()),
            port: Some("5433".into()),
            user: Some("us@er".into()),
            password: Some("p:ss".into()),
            dbname: Some("app db".into()),
        }
    );
    assert_eq!(
        parse_url("postgres://[::1]:6000/x")
            .unwrap()
            .host
            .as_deref(),
        Some("::1")
    );
    assert!(parse_url("db:5432").is_err());
    assert!(parse_url("postgres://h:port/x").is_err());
    let l = load(&[(
        "DATABASE_URLS",
        "postgres://a:pa@h1:5433/base,postgres://h2/paid",
    )])
    .unwrap();
    let base = &l.config.databases["base"];
    let paid = &l.config.databases["paid"];
    assert_eq!((base.port, base.auth_user.as_deref()), (5433, Some("a")));
    // Not the previous URL's port and user, as the image's shell would.
    assert_eq!(
        (paid.port, paid.auth_user.as_deref()),
        (5432, Some("postgres"))
    );
    assert_eq!(
        l.env_userlist,
        "\"a\" \"md546868402329ead93f08c779481a35b08\"\n"
    );
}

#[test]
fn edoburu_needs_a_host() {
    let e = load(&[("DB_USER", "u")]).unwrap_err().to_string();
    assert!(e.contains("DB_HOST"), "{e}");
}

#[test]
fn bitnami_defaults_make_a_scram_pooler_for_the_postgres_database() {
    let l = load(&[("POSTGRESQL_HOST", "pg"), ("POSTGRESQL_PASSWORD", "pw\"x")]).unwrap();
    assert_eq!(l.dialect, Some(Dialect::Bitnami));
    let g = &l.config.general;
    assert_eq!(g.listen_port, 6432);
    assert_eq!(g.auth_type.as_str(), "scram-sha-256");
    assert_eq!(g.admin_users, vec!["postgres".to_string()]);
    let db = &l.config.databases["postgres"];
    assert_eq!(db.host.as_deref(), Some("pg"));
    assert_eq!(db.dbname.as_deref(), Some("postgres"));
    assert_eq!(db.user, None);
    assert_eq!(l.env_userlist, "\"postgres\" \"pw\"\"x\"\n");
    assert!(l.env_userlist_wins);
}

#[test]
fn bitnami_reads_files_dsns_and_the_extra_userlist() {
    let dir = std::env::temp_dir().join(format!("sluice-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("pw");
    std::fs::write(&secret, "from-file\n").unwrap();
    let l = load(&[
        ("POSTGRESQL_HOST", "pg"),
        ("POSTGRESQL_USERNAME", "app"),
        ("POSTGRESQL_PASSWORD", "ignored"),
        ("POSTGRESQL_PASSWORD_FILE", secret.to_str().unwrap()),
        ("PGBOUNCER_DATABASE", "appdb"),
        ("PGBOUNCER_SET_DATABASE_USER", "yes"),
        ("PGBOUNCER_SET_DATABASE_PASSWORD", "true"),
        ("PGBOUNCER_DSN_0", "other=host=pg2 dbname=o"),
        ("PGBOUNCER_DSN_2", "skipped=host=pg3"),
        ("PGBOUNCER_USERLIST", "\"bob\" \"bobpw\""),
        ("PGBOUNCER_PORT", "7432"),
        ("PGBOUNCER_POOL_MODE", "transaction"),
    ])
    .unwrap();
    let db = &l.config.databases["appdb"];
    assert_eq!(db.user.as_deref(), Some("app"));
    assert_eq!(db.password.as_deref(), Some("from-file"));
    assert_eq!(l.config.databases["other"].dbname.as_deref(), Some("o"));
    assert!(!l.config.databases.contains_key("skipped"));
    assert_eq!(l.config.general.listen_port, 7432);
    assert_eq!(l.config.general.pool_mode, PoolMode::Transaction);
    assert_eq!(l.env_userlist, "\"app\" \"from-file\"\n\"bob\" \"bobpw\"\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bitnami_requires_a_password_unless_trust() {
    let e = load(&[("POSTGRESQL_HOST", "pg")]).unwrap_err().to_string();
    assert!(e.contains("POSTGRESQL_PASSWORD is required"), "{e}");
    assert!(load(&[("POSTGRESQL_HOST", "pg"), ("PGBOUNCER_AUTH_TYPE", "trust")]).is_ok());
}

#[test]
fn the_environment_overrides_the_file_it_is_read_with() {
    let dir = std::env::temp_dir().join(format!("sluice-env-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ini = dir.join("pgbouncer.ini");
    std::fs::write(
        &ini,
        "[databases]\nfiledb = host=f\n[pgbouncer]\npool_mode = session\nmax_client_conn = 10\n",
    )
    .unwrap();
    let l = ConfigSource {
        file: Some(ini.clone()),
        env: Some(vars(&[("PGBOUNCER_POOL_MODE", "statement")])),
    }
    .load()
    .unwrap();
    assert_eq!(l.config.general.pool_mode, PoolMode::Statement);
    assert_eq!(l.config.general.max_client_conn, 10);
    assert!(l.config.databases.contains_key("filedb"));
    // Without the environment, the file alone.
    let l = ConfigSource {
        file: Some(ini),
        env: None,
    }
    .load()
    .unwrap();
    assert_eq!(l.config.general.pool_mode, PoolMode::Session);
    let _ = std::fs::remove_dir_all(&dir);
}
