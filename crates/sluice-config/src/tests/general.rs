//! The `[pgbouncer]` section: every supported key, the not-yet list, unknown
//! keys and invalid values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{messages, parse_err, parse_ok};
use crate::general::{apply, Applied};
use crate::{
    describe_supported_keys, parse_str, AuthType, ConfigError, GeneralSettings, PoolMode, TlsMode,
    NOT_YET_IMPLEMENTED, SUPPORTED_KEYS,
};

/// A valid, non-default value for every supported key.
const SAMPLE_VALUES: &[(&str, &str)] = &[
    ("admin_users", "admin, root"),
    ("application_name_add_host", "1"),
    ("auth_file", "/etc/pgbouncer/userlist.txt"),
    ("auth_hba_file", "/etc/pgbouncer/pg_hba.conf"),
    ("auth_ident_file", "/etc/pgbouncer/pg_ident.conf"),
    (
        "auth_query",
        "SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
    ),
    ("auth_type", "scram-sha-256"),
    ("auth_user", "pgbouncer"),
    ("auth_dbname", "authdb"),
    ("max_prepared_statements", "50"),
    ("auth_pam_confdir", "/etc/sluice/pam.d"),
    ("client_idle_timeout", "300"),
    ("client_login_timeout", "30"),
    ("client_tls13_ciphers", "TLS_AES_256_GCM_SHA384"),
    ("client_tls_ca_file", "/etc/sluice/ca.crt"),
    ("client_tls_cert_file", "/etc/sluice/server.crt"),
    ("client_tls_ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    ("client_tls_dheparams", "none"),
    ("client_tls_ecdhcurve", "prime256v1"),
    ("client_tls_key_file", "/etc/sluice/server.key"),
    ("client_tls_protocols", "tlsv1.3"),
    ("client_tls_sslmode", "verify-full"),
    ("default_pool_size", "25"),
    ("idle_transaction_timeout", "10"),
    ("ignore_startup_parameters", "extra_float_digits, Options"),
    ("listen_addr", "127.0.0.1, ::1"),
    ("listen_port", "6433"),
    ("log_connections", "0"),
    ("log_disconnections", "0"),
    ("log_pooler_errors", "0"),
    ("log_stats", "0"),
    ("log_format", "json"),
    ("logfile", "/var/log/pgbouncer.log"),
    ("max_client_conn", "1000"),
    ("max_db_connections", "50"),
    ("max_packet_size", "1048576"),
    ("max_user_connections", "40"),
    ("min_pool_size", "2"),
    ("pidfile", "/run/pgbouncer.pid"),
    ("pkt_buf", "8192"),
    ("pool_mode", "transaction"),
    ("prometheus_listen", "127.0.0.1:9127"),
    ("query_timeout", "60"),
    ("query_wait_timeout", "30"),
    ("reserve_pool_size", "5"),
    ("reserve_pool_timeout", "2.5"),
    ("server_check_delay", "10"),
    ("server_check_query", "select 1"),
    ("server_connect_timeout", "5"),
    ("server_idle_timeout", "60"),
    ("server_lifetime", "1800"),
    ("server_login_retry", "1"),
    ("server_reset_query", "DEALLOCATE ALL"),
    ("server_reset_query_always", "1"),
    ("server_tls13_ciphers", "TLS_CHACHA20_POLY1305_SHA256"),
    ("server_tls_ca_file", "/etc/sluice/root.crt"),
    ("server_tls_cert_file", "/etc/sluice/client.crt"),
    ("server_tls_ciphers", "HIGH:!aNULL"),
    ("server_tls_key_file", "/etc/sluice/client.key"),
    ("server_tls_protocols", "all"),
    ("server_tls_sslmode", "verify-ca"),
    ("stats_period", "15"),
    ("stats_users", "stats"),
    ("syslog", "1"),
    ("syslog_facility", "local0"),
    ("syslog_ident", "sluice"),
    ("tcp_keepalive", "0"),
    ("tcp_keepcnt", "5"),
    ("tcp_keepidle", "30"),
    ("tcp_keepintvl", "10"),
    ("tcp_user_timeout", "15000"),
    ("unix_socket_dir", "/var/run/postgresql"),
    ("unix_socket_mode", "0700"),
    ("user", "postgres"),
    ("verbose", "2"),
];

#[test]
fn every_supported_key_parses_and_changes_its_setting() {
    assert_eq!(SAMPLE_VALUES.len(), SUPPORTED_KEYS.len());
    for (key, value) in SAMPLE_VALUES {
        assert!(
            SUPPORTED_KEYS.contains(key),
            "{key} missing from SUPPORTED_KEYS"
        );
        let mut g = GeneralSettings::default();
        assert_eq!(apply(&mut g, key, value), Ok(Applied::Set), "{key}");
        assert_ne!(
            g,
            GeneralSettings::default(),
            "{key} = {value} changed nothing"
        );
    }
}

#[test]
fn a_full_section_fills_the_settings() {
    let text: String = std::iter::once("[pgbouncer]\n".to_string())
        .chain(SAMPLE_VALUES.iter().map(|(k, v)| format!("{k} = {v}\n")))
        .collect();
    let (config, warnings) = parse_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    let g = &config.general;
    assert_eq!(g.listen_addr, vec!["127.0.0.1", "::1"]);
    assert_eq!(g.listen_port, 6433);
    assert_eq!(g.unix_socket_dir, "/var/run/postgresql");
    assert_eq!(g.unix_socket_mode, 0o700);
    assert_eq!(g.auth_type, AuthType::ScramSha256);
    assert_eq!(
        g.auth_file,
        Some(PathBuf::from("/etc/pgbouncer/userlist.txt"))
    );
    assert_eq!(g.auth_user.as_deref(), Some("pgbouncer"));
    assert_eq!(g.pool_mode, PoolMode::Transaction);
    assert_eq!(g.max_client_conn, 1000);
    assert_eq!(g.reserve_pool_timeout, Duration::from_millis(2500));
    assert_eq!(g.server_lifetime, Duration::from_secs(1800));
    assert_eq!(
        g.ignore_startup_parameters,
        vec!["extra_float_digits", "options"]
    );
    assert!(g.application_name_add_host);
    assert!(!g.log_connections);
    assert!(!g.tcp_keepalive);
    assert_eq!(g.tcp_user_timeout, 15000);
    assert_eq!(g.verbose, 2);
    assert_eq!(g.admin_users, vec!["admin", "root"]);
    assert_eq!(g.stats_users, vec!["stats"]);
    assert_eq!(g.user.as_deref(), Some("postgres"));
    assert_eq!(g.pidfile, Some(PathBuf::from("/run/pgbouncer.pid")));
    assert_eq!(g.client_tls_sslmode, TlsMode::VerifyFull);
    assert_eq!(
        g.client_tls_key_file.as_deref(),
        Some(Path::new("/etc/sluice/server.key"))
    );
    assert_eq!(
        g.client_tls_cert_file.as_deref(),
        Some(Path::new("/etc/sluice/server.crt"))
    );
    assert_eq!(
        g.client_tls_ca_file.as_deref(),
        Some(Path::new("/etc/sluice/ca.crt"))
    );
    assert_eq!(g.client_tls_protocols, "tlsv1.3");
    assert_eq!(g.client_tls_ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_eq!(g.client_tls13_ciphers, "TLS_AES_256_GCM_SHA384");
    assert_eq!(g.client_tls_ecdhcurve, "prime256v1");
    assert_eq!(g.client_tls_dheparams, "none");
    assert_eq!(g.server_tls_sslmode, TlsMode::VerifyCa);
    assert_eq!(
        g.server_tls_ca_file.as_deref(),
        Some(Path::new("/etc/sluice/root.crt"))
    );
    assert_eq!(
        g.server_tls_key_file.as_deref(),
        Some(Path::new("/etc/sluice/client.key"))
    );
    assert_eq!(
        g.server_tls_cert_file.as_deref(),
        Some(Path::new("/etc/sluice/client.crt"))
    );
    assert_eq!(g.server_tls_protocols, "all");
    assert_eq!(g.server_tls_ciphers, "HIGH:!aNULL");
    assert_eq!(g.server_tls13_ciphers, "TLS_CHACHA20_POLY1305_SHA256");
}

#[test]
fn tls_settings_default_to_pgbouncers() {
    let (config, _) = parse_ok("[pgbouncer]\nlisten_port = 6432\n");
    let g = &config.general;
    assert_eq!(g.client_tls_sslmode, TlsMode::Disable);
    assert_eq!(g.server_tls_sslmode, TlsMode::Prefer);
    assert_eq!(
        (
            &g.client_tls_key_file,
            &g.client_tls_cert_file,
            &g.client_tls_ca_file
        ),
        (&None, &None, &None)
    );
    assert_eq!(
        (
            &g.server_tls_key_file,
            &g.server_tls_cert_file,
            &g.server_tls_ca_file
        ),
        (&None, &None, &None)
    );
    assert_eq!(g.client_tls_protocols, "secure");
    assert_eq!(g.server_tls_protocols, "secure");
    assert_eq!(g.client_tls_ciphers, "default");
    assert_eq!(g.server_tls_ciphers, "default");
    assert_eq!(g.client_tls13_ciphers, "");
    assert_eq!(g.server_tls13_ciphers, "");
    assert_eq!(g.client_tls_ecdhcurve, "auto");
    assert_eq!(g.client_tls_dheparams, "auto");
}

#[test]
fn every_tls_mode_is_accepted_in_any_case() {
    for (text, expected) in [
        ("disable", TlsMode::Disable),
        ("Allow", TlsMode::Allow),
        ("prefer", TlsMode::Prefer),
        ("REQUIRE", TlsMode::Require),
        ("verify-ca", TlsMode::VerifyCa),
        ("Verify-Full", TlsMode::VerifyFull),
    ] {
        let (config, warnings) = parse_ok(&format!(
            "[pgbouncer]\nclient_tls_sslmode = {text}\nserver_tls_sslmode = {text}\n"
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.general.client_tls_sslmode, expected, "{text}");
        assert_eq!(config.general.server_tls_sslmode, expected, "{text}");
        assert_eq!(expected.as_str(), text.to_ascii_lowercase());
    }
}

#[test]
fn tls_mode_helpers() {
    assert!(!TlsMode::Prefer.requires_tls());
    assert!(TlsMode::Require.requires_tls());
    assert!(!TlsMode::Require.verifies_peer());
    assert!(TlsMode::VerifyCa.verifies_peer() && TlsMode::VerifyFull.verifies_peer());
}

#[test]
fn an_invalid_tls_mode_is_an_error_naming_file_and_line() {
    for key in ["client_tls_sslmode", "server_tls_sslmode"] {
        let text = format!("[pgbouncer]\n\n{key} = verify_full\n");
        let err = parse_str(&text, Path::new("/etc/x.ini")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "/etc/x.ini:3: invalid value for {key}: \"verify_full\" (expected one of \
                 disable, allow, prefer, require, verify-ca, verify-full)"
            )
        );
        assert_eq!(err.location(), (Path::new("/etc/x.ini"), Some(3)));
    }
}

#[test]
fn empty_tls_file_settings_mean_not_set() {
    let (config, _) = parse_ok(
        "[pgbouncer]\nclient_tls_key_file =\nclient_tls_cert_file = \nserver_tls_ca_file=\n",
    );
    let g = &config.general;
    assert_eq!(g.client_tls_key_file, None);
    assert_eq!(g.client_tls_cert_file, None);
    assert_eq!(g.server_tls_ca_file, None);
}

#[test]
fn unset_keys_keep_pgbouncer_defaults() {
    let (config, _) = parse_ok("[pgbouncer]\nlisten_port = 6432\n");
    let g = &config.general;
    assert_eq!(g.pool_mode, PoolMode::Session);
    assert_eq!(g.auth_type, AuthType::Md5);
    assert_eq!(g.max_client_conn, 100);
    assert_eq!(g.default_pool_size, 20);
    assert_eq!(g.query_wait_timeout, Duration::from_secs(120));
    assert_eq!(g.server_reset_query, "DISCARD ALL");
    assert_eq!(g.unix_socket_dir, "/tmp");
    assert!(g.listen_addr.is_empty());
}

#[test]
fn keys_are_case_insensitive() {
    let (config, warnings) = parse_ok("[pgbouncer]\nPool_Mode = Transaction\nLISTEN_ADDR = *\n");
    assert_eq!(config.general.pool_mode, PoolMode::Transaction);
    assert_eq!(config.general.listen_addr, vec!["*"]);
    assert!(warnings.is_empty());
}

#[test]
fn empty_path_and_name_values_mean_not_set() {
    let (config, _) = parse_ok(
        "[pgbouncer]\nlogfile =\npidfile = \nauth_file=\nauth_user =\nuser =\nunix_socket_dir =\n",
    );
    let g = &config.general;
    assert_eq!(
        (g.logfile.clone(), g.pidfile.clone(), g.auth_file.clone()),
        (None, None, None)
    );
    assert_eq!((g.auth_user.clone(), g.user.clone()), (None, None));
    assert_eq!(g.unix_socket_dir, "");
}

#[test]
fn relative_auth_file_is_kept_as_written() {
    let (config, _) = parse_ok("[pgbouncer]\nauth_file = userlist.txt\n");
    assert_eq!(
        config.general.auth_file.as_deref(),
        Some(Path::new("userlist.txt"))
    );
}

#[test]
fn hba_and_ident_files_are_paths_kept_as_written_and_empty_means_unset() {
    let (config, warnings) = parse_ok(
        "[pgbouncer]\nauth_type = hba\nauth_hba_file = conf/pg_hba.conf\nauth_ident_file = /etc/pg_ident.conf\n",
    );
    assert!(warnings.is_empty(), "{warnings:?}");
    let g = &config.general;
    assert_eq!(g.auth_type, AuthType::Hba);
    assert_eq!(
        g.auth_hba_file.as_deref(),
        Some(Path::new("conf/pg_hba.conf"))
    );
    assert_eq!(
        g.auth_ident_file.as_deref(),
        Some(Path::new("/etc/pg_ident.conf"))
    );

    let (config, _) = parse_ok("[pgbouncer]\nauth_hba_file =\nauth_ident_file = \n");
    assert_eq!(config.general.auth_hba_file, None);
    assert_eq!(config.general.auth_ident_file, None);
}

#[test]
fn every_auth_type_is_accepted_in_any_case() {
    for (text, expected) in [
        ("trust", AuthType::Trust),
        ("any", AuthType::Any),
        ("plain", AuthType::Plain),
        ("MD5", AuthType::Md5),
        ("SCRAM-SHA-256", AuthType::ScramSha256),
        ("cert", AuthType::Cert),
        ("hba", AuthType::Hba),
        ("pam", AuthType::Pam),
    ] {
        let (config, _) = parse_ok(&format!("[pgbouncer]\nauth_type = {text}\n"));
        assert_eq!(config.general.auth_type, expected, "{text}");
    }
    let err = parse_err("[pgbouncer]\nauth_type = ldap\n");
    assert!(
        err.to_string()
            .contains("ldap authentication is not supported"),
        "{err}"
    );
}

#[test]
fn invalid_value_error_names_file_line_key_value_and_reason() {
    let text = format!("[pgbouncer]\n{}max_client_conn = abc\n", "\n".repeat(10));
    let err = parse_str(&text, Path::new("/etc/x.ini")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/x.ini:12: invalid value for max_client_conn: \"abc\" (expected an integer)"
    );
    assert_eq!(err.location(), (Path::new("/etc/x.ini"), Some(12)));
}

#[test]
fn invalid_values_of_each_kind_are_errors() {
    for (line, reason_part) in [
        ("pool_mode = sometimes", "session, transaction or statement"),
        ("server_lifetime = forever", "number of seconds"),
        ("query_timeout = -5", "negative"),
        ("log_connections = maybe", "boolean"),
        ("listen_port = 70000", "too large"),
        ("verbose = 1000", "too large"),
        ("unix_socket_mode = rwx", "octal"),
        ("default_pool_size = -1", "non-negative"),
        ("tcp_keepcnt = 1.5", "integer"),
    ] {
        let err = parse_err(&format!("[pgbouncer]\n{line}\n"));
        assert!(
            matches!(&err, ConfigError::InvalidValue { line: 2, reason, .. } if reason.contains(reason_part)),
            "{line}: {err}"
        );
    }
}

#[test]
fn unknown_keys_are_warnings_naming_key_and_line() {
    let (config, warnings) = parse_ok("[pgbouncer]\nfrobnicate = 3\nlisten_port = 7777\n");
    assert_eq!(config.general.listen_port, 7777);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 2);
    assert!(warnings[0].message.contains("\"frobnicate\""));
}

#[test]
fn a_misspelt_key_gets_a_suggestion() {
    let (_, warnings) = parse_ok("[pgbouncer]\nmax_client_con = 10\n");
    assert!(
        warnings[0]
            .message
            .contains("did you mean max_client_conn?"),
        "{}",
        warnings[0]
    );
}

#[test]
fn not_yet_implemented_keys_are_accepted_with_a_softer_warning() {
    let (config, warnings) =
        parse_ok("[pgbouncer]\nserver_fast_close = 1\ndns_max_ttl = 30\nsuspend_timeout = 10\n");
    assert_eq!(config.general, GeneralSettings::default());
    let msgs = messages(&warnings);
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs.iter()
            .all(|m| m.contains("accepted but not implemented yet")),
        "{msgs:?}"
    );
    assert!(msgs[0].starts_with("server_fast_close"));
}

#[test]
fn every_not_yet_implemented_key_is_recognised() {
    for key in NOT_YET_IMPLEMENTED {
        let mut g = GeneralSettings::default();
        assert_eq!(
            apply(&mut g, key, "whatever"),
            Ok(Applied::NotYetImplemented),
            "{key}"
        );
    }
}

#[test]
fn supported_and_not_yet_lists_are_sorted_and_disjoint() {
    let (supported, not_yet) = describe_supported_keys();
    assert!(
        supported.windows(2).all(|w| w[0] < w[1]),
        "supported not sorted/unique"
    );
    assert!(
        not_yet.windows(2).all(|w| w[0] < w[1]),
        "not_yet not sorted/unique"
    );
    for key in supported {
        assert!(!not_yet.contains(key), "{key} in both lists");
    }
}
