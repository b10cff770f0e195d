//! The line format: comments, sections, `key = value`, duplicates, syntax
//! errors.

use std::path::Path;

use super::{messages, parse_err, parse_ok};
use crate::{parse_str, ConfigError, PoolMode};

#[test]
fn comment_lines_start_with_semicolon_or_hash_after_optional_whitespace() {
    let (config, warnings) = parse_ok(
        "; leading comment\n\
         # another\n\
         [pgbouncer]\n\
         \t  ; indented comment\n\
         \t# indented hash comment\n\
         listen_port = 7000\n\
         ;listen_port = 8000\n",
    );
    assert_eq!(config.general.listen_port, 7000);
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn semicolon_later_in_a_line_is_part_of_the_value() {
    let (config, _) =
        parse_ok("[pgbouncer]\nserver_reset_query = DISCARD ALL; SELECT 1 # not a comment\n");
    assert_eq!(
        config.general.server_reset_query,
        "DISCARD ALL; SELECT 1 # not a comment"
    );
}

#[test]
fn quotes_in_pgbouncer_values_are_kept_as_written() {
    let (config, _) = parse_ok("[pgbouncer]\nserver_check_query = \"select 1\"\n");
    assert_eq!(config.general.server_check_query, "\"select 1\"");
}

#[test]
fn values_are_trimmed_and_may_contain_equals_signs() {
    let (config, _) =
        parse_ok("[pgbouncer]\nauth_query   =   SELECT u, p FROM f($1) WHERE a=b   \n");
    assert_eq!(
        config.general.auth_query,
        "SELECT u, p FROM f($1) WHERE a=b"
    );
}

#[test]
fn section_names_are_case_insensitive_and_may_have_a_trailing_comment() {
    let (config, warnings) = parse_ok(
        "[PgBouncer]\npool_mode = transaction\n[DATABASES] ; the dbs\napp = host=db\n[Users]\nbob = pool_size=3\n",
    );
    assert_eq!(config.general.pool_mode, PoolMode::Transaction);
    assert!(config.databases.contains_key("app"));
    assert!(config.users.contains_key("bob"));
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn sections_may_repeat_and_interleave() {
    let (config, _) = parse_ok(
        "[pgbouncer]\nlisten_port = 1\n[databases]\na = host=x\n[pgbouncer]\nmax_client_conn = 5\n[databases]\nb = host=y\n",
    );
    assert_eq!(config.general.listen_port, 1);
    assert_eq!(config.general.max_client_conn, 5);
    assert_eq!(config.databases.len(), 2);
}

#[test]
fn a_later_duplicate_key_wins() {
    let (config, _) = parse_ok(
        "[pgbouncer]\npool_mode = session\nmax_client_conn = 10\npool_mode = transaction\nMAX_CLIENT_CONN = 20\n",
    );
    assert_eq!(config.general.pool_mode, PoolMode::Transaction);
    assert_eq!(config.general.max_client_conn, 20);
}

#[test]
fn a_later_duplicate_database_replaces_the_whole_entry() {
    let (config, _) =
        parse_ok("[pgbouncer]\n[databases]\napp = host=old pool_size=5\napp = host=new\n");
    let app = &config.databases["app"];
    assert_eq!(app.host.as_deref(), Some("new"));
    assert_eq!(app.pool_size, None);
}

#[test]
fn crlf_line_endings_are_accepted() {
    let (config, _) =
        parse_ok("[pgbouncer]\r\nlisten_port = 7001\r\n[databases]\r\napp = host=db port=5433\r\n");
    assert_eq!(config.general.listen_port, 7001);
    assert_eq!(config.databases["app"].port, 5433);
}

#[test]
fn a_line_without_equals_is_a_syntax_error_with_file_and_line() {
    let err = parse_err("[pgbouncer]\n\nlisten_port 6432\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 3, .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with("/etc/sluice/test.ini:3: syntax error:"),
        "{shown}"
    );
}

#[test]
fn an_unclosed_section_header_is_a_syntax_error() {
    let err = parse_err("[pgbouncer\nlisten_port = 1\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn text_after_a_section_header_is_a_syntax_error() {
    let err = parse_err("[pgbouncer] listen_port = 1\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn a_key_before_any_section_is_an_error() {
    let err = parse_err("listen_port = 1\n[pgbouncer]\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("before any section"), "{err}");
}

#[test]
fn an_unknown_section_is_an_error() {
    let err = parse_err("[pgbouncer]\n[databasez]\n");
    assert!(
        matches!(&err, ConfigError::UnknownSection { line: 2, name, .. } if name == "databasez"),
        "{err:?}"
    );
}

#[test]
fn peers_section_is_accepted_with_a_warning_and_ignored() {
    let (config, warnings) = parse_ok("[pgbouncer]\n[peers]\n1 = host=/tmp/pgb1\n2 = host=other port=6432\n[databases]\na = host=x\n");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].line, 2);
    assert!(warnings[0].message.contains("not supported yet"));
    assert!(config.databases.contains_key("a"));
}

#[test]
fn a_file_without_a_pgbouncer_section_loads_defaults_with_a_warning() {
    let (config, warnings) = parse_ok("[databases]\napp = host=db\n");
    assert_eq!(config.general, crate::GeneralSettings::default());
    assert!(messages(&warnings)
        .iter()
        .any(|m| m.contains("no [pgbouncer] section")));
    assert_eq!(
        warnings[0].to_string(),
        "/etc/sluice/test.ini: no [pgbouncer] section; using default settings"
    );
}

#[test]
fn an_empty_file_parses_to_defaults() {
    let (config, _) = parse_ok("");
    assert_eq!(config.general, crate::GeneralSettings::default());
    assert!(config.databases.is_empty());
}

#[test]
fn source_is_the_origin_path() {
    let (config, _) = parse_str("[pgbouncer]\n", Path::new("conf/p.ini")).unwrap();
    assert_eq!(config.source, Path::new("conf/p.ini"));
}

#[test]
fn warnings_display_as_file_colon_line_colon_message() {
    let (_, warnings) = parse_ok("[pgbouncer]\n\nnot_a_setting = 1\n");
    assert_eq!(
        warnings[0].to_string(),
        "/etc/sluice/test.ini:3: unknown setting \"not_a_setting\" in [pgbouncer]; ignored"
    );
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    let (config, _) = parse_ok("\u{feff}[pgbouncer]\nlisten_port = 7002\n");
    assert_eq!(config.general.listen_port, 7002);
}
