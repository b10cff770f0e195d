//! The `[databases]` section.

use std::time::Duration;

use super::{messages, parse_err, parse_ok};
use crate::{ConfigError, DatabaseDef, PoolMode};

fn db(text: &str) -> DatabaseDef {
    let (config, _) = parse_ok(&format!("[pgbouncer]\n[databases]\n{text}\n"));
    assert_eq!(config.databases.len(), 1, "{config:?}");
    config.databases.into_values().next().expect("one database")
}

#[test]
fn every_key_is_parsed() {
    let d = db(
        "app = host=db1,db2 port=6543 dbname=real user=svc password='p w' auth_user=au \
                pool_size=10 min_pool_size=2 reserve_pool_size=3 pool_mode=transaction \
                max_db_connections=40 connect_query='SELECT set_config(''a'', ''b'', false)' \
                client_encoding=UTF8 datestyle='ISO, MDY' timezone=UTC application_name=app1 \
                server_lifetime=600 query_wait_timeout=0.5",
    );
    assert_eq!(d.name, "app");
    assert_eq!(d.host.as_deref(), Some("db1,db2"));
    assert_eq!(d.port, 6543);
    assert_eq!(d.dbname.as_deref(), Some("real"));
    assert_eq!(d.user.as_deref(), Some("svc"));
    assert_eq!(d.password.as_deref(), Some("p w"));
    assert_eq!(d.auth_user.as_deref(), Some("au"));
    assert_eq!(d.pool_size, Some(10));
    assert_eq!(d.min_pool_size, Some(2));
    assert_eq!(d.reserve_pool_size, Some(3));
    assert_eq!(d.pool_mode, Some(PoolMode::Transaction));
    assert_eq!(d.max_db_connections, Some(40));
    assert_eq!(
        d.connect_query.as_deref(),
        Some("SELECT set_config('a', 'b', false)")
    );
    assert_eq!(d.client_encoding.as_deref(), Some("UTF8"));
    assert_eq!(d.datestyle.as_deref(), Some("ISO, MDY"));
    assert_eq!(d.timezone.as_deref(), Some("UTC"));
    assert_eq!(d.application_name.as_deref(), Some("app1"));
    assert_eq!(d.server_lifetime, Some(Duration::from_secs(600)));
    assert_eq!(d.query_wait_timeout, Some(Duration::from_millis(500)));
}

#[test]
fn an_empty_connection_string_means_unix_socket_on_5432() {
    let d = db("foodb =");
    assert_eq!(
        d,
        DatabaseDef {
            name: "foodb".to_string(),
            port: 5432,
            ..DatabaseDef::default()
        }
    );
}

#[test]
fn port_defaults_to_5432() {
    assert_eq!(db("app = host=localhost").port, 5432);
}

#[test]
fn reserve_pool_is_an_alias_of_reserve_pool_size() {
    assert_eq!(db("app = reserve_pool=4").reserve_pool_size, Some(4));
}

#[test]
fn quoted_values_keep_spaces_and_escaped_quotes() {
    let d = db(r"app = password='it\'s a secret' application_name='my app'");
    assert_eq!(d.password.as_deref(), Some("it's a secret"));
    assert_eq!(d.application_name.as_deref(), Some("my app"));
}

#[test]
fn minus_one_means_not_set() {
    let d = db("app = pool_size=-1 query_wait_timeout=-1 server_lifetime=-1");
    assert_eq!(
        (d.pool_size, d.query_wait_timeout, d.server_lifetime),
        (None, None, None)
    );
}

#[test]
fn quoted_database_names_may_contain_spaces_and_quotes() {
    let (config, _) = parse_ok(
        "[pgbouncer]\n[databases]\n\"Foo Bar\" = host=x\n\"say \"\"hi\"\"\" = host=y\n'single q' = host=z\n",
    );
    assert!(config.databases.contains_key("Foo Bar"));
    assert!(config.databases.contains_key("say \"hi\""));
    assert!(config.databases.contains_key("single q"));
    assert_eq!(config.databases["Foo Bar"].name, "Foo Bar");
}

#[test]
fn database_names_are_case_sensitive() {
    let (config, _) = parse_ok("[pgbouncer]\n[databases]\nApp = host=a\napp = host=b\n");
    assert_eq!(config.databases.len(), 2);
}

#[test]
fn star_is_the_fallback_entry() {
    let (config, _) =
        parse_ok("[pgbouncer]\n[databases]\nexact = host=one\n* = host=fallback port=5433\n");
    assert_eq!(
        config.database("exact").and_then(|d| d.host.as_deref()),
        Some("one")
    );
    let other = config.database("anything").expect("fallback");
    assert_eq!(other.name, "*");
    assert_eq!(other.host.as_deref(), Some("fallback"));
    assert_eq!(other.port, 5433);
    assert_eq!(other.dbname, None);
}

#[test]
fn without_a_fallback_unknown_names_are_not_found() {
    let (config, _) = parse_ok("[pgbouncer]\n[databases]\nexact = host=one\n");
    assert!(config.database("other").is_none());
}

#[test]
fn an_unknown_connection_parameter_is_an_error() {
    let err = parse_err("[pgbouncer]\n[databases]\napp = host=x bogus=1\n");
    assert!(
        matches!(&err, ConfigError::Database { line: 3, name, .. } if name == "app"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/etc/sluice/test.ini:3: database \"app\": unrecognized connection parameter: bogus"
    );
}

#[test]
fn pgbouncer_keys_not_implemented_yet_are_warnings() {
    let (config, warnings) = parse_ok(
        "[pgbouncer]\n[databases]\napp = host=x load_balance_hosts=disable target_session_attrs=any\n",
    );
    assert_eq!(config.databases["app"].host.as_deref(), Some("x"));
    let msgs = messages(&warnings);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("load_balance_hosts is accepted but not implemented yet"));
    assert_eq!(warnings[0].line, 3);
}

#[test]
fn auth_dbname_and_auth_query_are_read_per_database() {
    let (config, warnings) = parse_ok(
        "[pgbouncer]\n[databases]\napp = host=x auth_user=au auth_dbname=authdb auth_query='SELECT u, p FROM f($1)'\n",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let app = &config.databases["app"];
    assert_eq!(app.auth_dbname.as_deref(), Some("authdb"));
    assert_eq!(app.auth_query.as_deref(), Some("SELECT u, p FROM f($1)"));
}

#[test]
fn invalid_values_name_the_database_key_and_reason() {
    for (entry, expected) in [
        ("app = port=0", "invalid value for port: \"0\""),
        ("app = port=abc", "expected a port number"),
        (
            "app = pool_size=big",
            "invalid value for pool_size: \"big\" (expected an integer)",
        ),
        ("app = pool_mode=weird", "session, transaction or statement"),
        (
            "app = server_lifetime=soon",
            "invalid value for server_lifetime",
        ),
    ] {
        let err = parse_err(&format!("[pgbouncer]\n[databases]\n{entry}\n"));
        let shown = err.to_string();
        assert!(
            shown.starts_with("/etc/sluice/test.ini:3: database \"app\":"),
            "{shown}"
        );
        assert!(shown.contains(expected), "{entry}: {shown}");
    }
}

#[test]
fn a_connection_string_syntax_error_does_not_echo_the_password() {
    let err = parse_err("[pgbouncer]\n[databases]\napp = password='hunter2\n");
    let shown = err.to_string();
    assert!(
        shown.contains("syntax error in connection string"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn the_admin_console_names_are_reserved() {
    for name in ["pgbouncer", "sluice"] {
        let err = parse_err(&format!("[pgbouncer]\n[databases]\n{name} = host=x\n"));
        assert!(err.to_string().contains("is reserved"), "{err}");
    }
}

#[test]
fn connstr_keys_are_case_insensitive() {
    assert_eq!(db("app = HOST=db Port=6000").port, 6000);
}
