//! The `[users]` section.

use std::time::Duration;

use super::{messages, parse_err, parse_ok};
use crate::{ConfigError, PoolMode};

#[test]
fn user_entries_are_parsed() {
    let (config, warnings) = parse_ok(
        "[pgbouncer]\n[users]\n\
         app = pool_mode=transaction pool_size=15 reserve_pool_size=2 max_user_connections=30\n\
         report = query_timeout=120 query_wait_timeout=5 idle_transaction_timeout=30 client_idle_timeout=1h\n\
         \"odd@user\" = pool_mode=statement\n",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let app = &config.users["app"];
    assert_eq!(app.name, "app");
    assert_eq!(app.pool_mode, Some(PoolMode::Transaction));
    assert_eq!(app.pool_size, Some(15));
    assert_eq!(app.reserve_pool_size, Some(2));
    assert_eq!(app.max_user_connections, Some(30));
    assert_eq!(app.query_timeout, None);

    let report = &config.users["report"];
    assert_eq!(report.query_timeout, Some(Duration::from_secs(120)));
    assert_eq!(report.query_wait_timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        report.idle_transaction_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(report.client_idle_timeout, Some(Duration::from_secs(3600)));

    assert_eq!(
        config.users["odd@user"].pool_mode,
        Some(PoolMode::Statement)
    );
}

#[test]
fn an_unknown_user_parameter_is_an_error() {
    let err = parse_err("[pgbouncer]\n[users]\nbob = host=x\n");
    assert!(
        matches!(&err, ConfigError::User { line: 3, name, .. } if name == "bob"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/etc/sluice/test.ini:3: user \"bob\": unrecognized user parameter: host"
    );
}

#[test]
fn an_invalid_user_value_names_the_key() {
    let err = parse_err("[pgbouncer]\n[users]\nbob = pool_mode=sometimes\n");
    assert!(
        err.to_string()
            .contains("user \"bob\": invalid value for pool_mode: \"sometimes\""),
        "{err}"
    );
}

#[test]
fn pgbouncer_user_keys_not_implemented_yet_are_warnings() {
    let (config, warnings) =
        parse_ok("[pgbouncer]\n[users]\nbob = max_user_client_connections=10 pool_size=2\n");
    assert_eq!(config.users["bob"].pool_size, Some(2));
    assert!(messages(&warnings)[0]
        .contains("max_user_client_connections is accepted but not implemented yet"));
}

#[test]
fn a_later_user_entry_replaces_the_earlier_one() {
    let (config, _) =
        parse_ok("[pgbouncer]\n[users]\nbob = pool_size=1 pool_mode=session\nbob = pool_size=2\n");
    assert_eq!(config.users["bob"].pool_size, Some(2));
    assert_eq!(config.users["bob"].pool_mode, None);
}
