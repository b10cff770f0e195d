//! `%include`: relative paths, section carry-over, overrides, loops, depth.

use super::{parse_ok, TempDir};
use crate::{load, parse_str, ConfigError, PoolMode, MAX_INCLUDE_DEPTH};

#[test]
fn include_path_is_relative_to_the_including_file() {
    let dir = TempDir::new();
    dir.write("conf.d/pools.ini", "[databases]\napp = host=db1\n");
    let main = dir.write(
        "pgbouncer.ini",
        "[pgbouncer]\nlisten_port = 7000\n%include conf.d/pools.ini\n",
    );
    let (config, warnings) = load(&main).unwrap();
    assert_eq!(config.general.listen_port, 7000);
    assert_eq!(config.databases["app"].host.as_deref(), Some("db1"));
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn nested_includes_resolve_against_their_own_directory() {
    let dir = TempDir::new();
    dir.write("a/b/inner.ini", "max_client_conn = 42\n");
    dir.write("a/outer.ini", "%include b/inner.ini\n");
    let main = dir.write("main.ini", "[pgbouncer]\n%include a/outer.ini\n");
    let (config, _) = load(&main).unwrap();
    assert_eq!(config.general.max_client_conn, 42);
}

#[test]
fn absolute_include_paths_work() {
    let dir = TempDir::new();
    let extra = dir.write("extra.ini", "[pgbouncer]\npool_mode = statement\n");
    let text = format!("%include {}\n", extra.display());
    let (config, _) = parse_str(&text, std::path::Path::new("/nonexistent/main.ini")).unwrap();
    assert_eq!(config.general.pool_mode, PoolMode::Statement);
}

#[test]
fn parse_str_takes_includes_from_the_origin_directory() {
    let dir = TempDir::new();
    dir.write("more.ini", "default_pool_size = 7\n");
    let origin = dir.path().join("virtual.ini");
    let (config, _) = parse_str("[pgbouncer]\n%include more.ini\n", &origin).unwrap();
    assert_eq!(config.general.default_pool_size, 7);
}

#[test]
fn the_current_section_carries_into_and_out_of_an_include() {
    let dir = TempDir::new();
    dir.write("dbs.ini", "inside = host=a\n[users]\nbob = pool_size=1\n");
    let main = dir.write(
        "main.ini",
        "[pgbouncer]\n[databases]\n%include dbs.ini\nalice = pool_size=2\n",
    );
    let (config, _) = load(&main).unwrap();
    assert!(config.databases.contains_key("inside"));
    // after the include the section is still [users], as in PgBouncer
    assert!(config.users.contains_key("alice"));
    assert!(config.users.contains_key("bob"));
}

#[test]
fn a_later_line_overrides_an_included_one_and_vice_versa() {
    let dir = TempDir::new();
    dir.write(
        "override.ini",
        "[pgbouncer]\nmax_client_conn = 500\npool_mode = transaction\n",
    );
    let main = dir.write(
        "main.ini",
        "[pgbouncer]\nmax_client_conn = 100\npool_mode = session\n%include override.ini\npool_mode = statement\n",
    );
    let (config, _) = load(&main).unwrap();
    assert_eq!(config.general.max_client_conn, 500);
    assert_eq!(config.general.pool_mode, PoolMode::Statement);
}

#[test]
fn errors_in_included_files_name_the_included_file_and_its_line() {
    let dir = TempDir::new();
    let bad = dir.write("bad.ini", "; comment\nmax_client_conn = lots\n");
    let main = dir.write("main.ini", "[pgbouncer]\n%include bad.ini\n");
    let err = load(&main).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: invalid value for max_client_conn: \"lots\" (expected an integer)",
            bad.display()
        )
    );
}

#[test]
fn a_missing_include_names_the_directive_and_the_file() {
    let dir = TempDir::new();
    let main = dir.write("main.ini", "[pgbouncer]\n\n%include nope.ini\n");
    let err = load(&main).unwrap_err();
    assert!(
        matches!(err, ConfigError::IncludeIo { line: 3, .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:3:", main.display())),
        "{shown}"
    );
    assert!(shown.contains("nope.ini"), "{shown}");
}

#[test]
fn an_include_loop_is_detected() {
    let dir = TempDir::new();
    let a = dir.write("a.ini", "[pgbouncer]\n%include b.ini\n");
    dir.write("b.ini", "%include a.ini\n");
    let err = load(&a).unwrap_err();
    assert!(matches!(err, ConfigError::Include { .. }), "{err:?}");
    assert!(err.to_string().contains("include loop"), "{err}");
}

#[test]
fn a_file_including_itself_is_a_loop() {
    let dir = TempDir::new();
    let main = dir.write("self.ini", "[pgbouncer]\n%include ./self.ini\n");
    let err = load(&main).unwrap_err();
    assert!(err.to_string().contains("include loop"), "{err}");
}

#[test]
fn the_same_file_may_be_included_twice_in_sequence() {
    let dir = TempDir::new();
    dir.write("common.ini", "listen_port = 6000\n");
    let main = dir.write(
        "main.ini",
        "[pgbouncer]\n%include common.ini\n%include common.ini\n",
    );
    let (config, _) = load(&main).unwrap();
    assert_eq!(config.general.listen_port, 6000);
}

#[test]
fn include_depth_is_limited() {
    let dir = TempDir::new();
    // main -> f1 -> ... -> fN: N includes deep.
    let chain = |n: usize| {
        for i in 1..=n {
            let body = if i < n {
                format!("%include f{}.ini\n", i + 1)
            } else {
                "max_client_conn = 9\n".to_string()
            };
            dir.write(&format!("f{i}.ini"), &body);
        }
        dir.write("main.ini", "[pgbouncer]\n%include f1.ini\n")
    };
    let main = chain(MAX_INCLUDE_DEPTH);
    let (config, _) = load(&main).unwrap();
    assert_eq!(config.general.max_client_conn, 9);

    let main = chain(MAX_INCLUDE_DEPTH + 1);
    let err = load(&main).unwrap_err();
    assert!(matches!(err, ConfigError::Include { .. }), "{err:?}");
    assert!(err.to_string().contains("too deep"), "{err}");
}

#[test]
fn include_without_a_file_name_is_a_syntax_error() {
    let err = super::parse_err("[pgbouncer]\n%include\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn a_missing_main_file_is_an_io_error_naming_it() {
    let dir = TempDir::new();
    let missing = dir.path().join("missing.ini");
    let err = load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!(
        "{}: could not read config file",
        missing.display()
    )));
    assert_eq!(err.location(), (missing.as_path(), None));
}

#[test]
fn percent_include_is_only_a_directive_at_line_start() {
    let (config, _) = parse_ok("[pgbouncer]\nserver_check_query = %include x\n");
    assert_eq!(config.general.server_check_query, "%include x");
}
