//! HBA and ident map files: parsing, PgBouncer's subset, errors that name
//! the line, and which rule a connection gets.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const LOCAL: HbaConnType = HbaConnType::Local;
const TCP: HbaConnType = HbaConnType::Host { ssl: false };
const TLS: HbaConnType = HbaConnType::Host { ssl: true };

fn hba(text: &str) -> Hba {
    Hba::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The method of the rule that applies, and its line.
fn method(
    hba: &Hba,
    conn: HbaConnType,
    addr: &str,
    db: &str,
    user: &str,
) -> Option<(HbaMethod, usize)> {
    let addr = (!addr.is_empty()).then(|| addr.parse().unwrap());
    hba.lookup(conn, addr, db, user).map(|r| (r.method, r.line))
}

fn error(text: &str) -> HbaError {
    match Hba::parse(text) {
        Ok(hba) => panic!("parsed: {hba:?}"),
        Err(e) => e,
    }
}

/// Asserts that `text` fails on `line` with a message containing `needle`.
fn fails_on(text: &str, line: usize, needle: &str) {
    let e = error(text);
    assert_eq!(e.line(), Some(line), "{e}");
    assert!(e.to_string().contains(needle), "{e:?} lacks {needle:?}");
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sluice-hba-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- which rule applies ----

#[test]
fn the_first_matching_rule_wins_in_file_order() {
    let h = hba("host app alice 10.0.0.0/8 reject\n\
         host all all 10.0.0.0/8 md5\n\
         host app alice 10.0.0.0/8 trust\n");
    assert_eq!(
        method(&h, TCP, "10.1.2.3", "app", "alice"),
        Some((HbaMethod::Reject, 1))
    );
    assert_eq!(
        method(&h, TCP, "10.1.2.3", "app", "bob"),
        Some((HbaMethod::Md5, 2))
    );
}

#[test]
fn no_matching_rule_gives_none() {
    let h = hba("host app all 127.0.0.1/32 trust\n");
    assert_eq!(method(&h, TCP, "127.0.0.1", "other", "u"), None);
    assert_eq!(method(&h, TCP, "127.0.0.2", "app", "u"), None);
    assert_eq!(Hba::default().lookup(LOCAL, None, "db", "u"), None);
}

#[test]
fn local_rules_apply_only_to_unix_socket_connections() {
    let h = hba("local all all peer\nhost all all all md5\n");
    assert_eq!(method(&h, LOCAL, "", "db", "u"), Some((HbaMethod::Peer, 1)));
    assert_eq!(
        method(&h, TCP, "127.0.0.1", "db", "u"),
        Some((HbaMethod::Md5, 2))
    );
    assert_eq!(
        method(&h, TLS, "127.0.0.1", "db", "u"),
        Some((HbaMethod::Md5, 2))
    );
    let only_host = hba("host all all all trust\n");
    assert_eq!(method(&only_host, LOCAL, "", "db", "u"), None);
    assert_eq!(h.rules()[0].address, None);
}

#[test]
fn hostssl_matches_only_tls_and_hostnossl_only_plaintext() {
    let h = hba("hostssl all all 0.0.0.0/0 scram-sha-256\n\
         hostnossl all all 0.0.0.0/0 reject\n");
    assert_eq!(
        method(&h, TLS, "192.0.2.1", "db", "u"),
        Some((HbaMethod::ScramSha256, 1))
    );
    assert_eq!(
        method(&h, TCP, "192.0.2.1", "db", "u"),
        Some((HbaMethod::Reject, 2))
    );
    assert_eq!(method(&h, LOCAL, "", "db", "u"), None);
    assert_eq!(h.rules()[0].record_type, HbaRecordType::HostSsl);
    assert_eq!(h.rules()[1].record_type, HbaRecordType::HostNoSsl);
}

#[test]
fn ipv4_cidr_matches_inside_the_range_only() {
    let h = hba("host all all 192.168.16.0/20 trust\n\
         host all all 10.9.8.7/32 md5\n");
    assert_eq!(
        method(&h, TCP, "192.168.31.255", "d", "u"),
        Some((HbaMethod::Trust, 1))
    );
    assert_eq!(method(&h, TCP, "192.168.32.0", "d", "u"), None);
    assert_eq!(
        method(&h, TCP, "10.9.8.7", "d", "u"),
        Some((HbaMethod::Md5, 2))
    );
    assert_eq!(method(&h, TCP, "10.9.8.6", "d", "u"), None);
    assert_eq!(method(&h, TCP, "::1", "d", "u"), None);
}

#[test]
fn ipv6_cidr_matches_inside_the_range_only() {
    let h = hba("host all all 2001:db8::/32 md5\nhost all all ::1/128 trust\n");
    assert_eq!(
        method(&h, TCP, "2001:db8:ffff::1", "d", "u"),
        Some((HbaMethod::Md5, 1))
    );
    assert_eq!(method(&h, TCP, "2001:db9::1", "d", "u"), None);
    assert_eq!(
        method(&h, TCP, "::1", "d", "u"),
        Some((HbaMethod::Trust, 2))
    );
    assert_eq!(method(&h, TCP, "127.0.0.1", "d", "u"), None);
}

#[test]
fn an_address_with_a_netmask_field_is_a_range() {
    let h = hba("host all all 172.16.0.0 255.240.0.0 md5\n\
         host all all fd00:: ffff:ff00:: trust\n");
    assert_eq!(
        method(&h, TCP, "172.31.1.1", "d", "u"),
        Some((HbaMethod::Md5, 1))
    );
    assert_eq!(method(&h, TCP, "172.32.0.0", "d", "u"), None);
    assert_eq!(
        method(&h, TCP, "fd00:ab::1", "d", "u"),
        Some((HbaMethod::Trust, 2))
    );
    assert_eq!(
        h.rules()[0].address,
        Some(HbaAddress::Net {
            addr: "172.16.0.0".parse().unwrap(),
            mask: "255.240.0.0".parse().unwrap(),
        })
    );
}

#[test]
fn address_all_matches_any_client_even_of_unknown_address() {
    let h = hba("host all all all trust\n");
    assert!(method(&h, TCP, "203.0.113.9", "d", "u").is_some());
    assert!(method(&h, TCP, "2001:db8::9", "d", "u").is_some());
    assert!(method(&h, TCP, "", "d", "u").is_some());
    let ranged = hba("host all all 0.0.0.0/0 trust\n");
    assert_eq!(method(&ranged, TCP, "", "d", "u"), None);
}

#[test]
fn an_ipv4_rule_matches_an_ipv4_mapped_ipv6_client() {
    let h = hba("host all all 127.0.0.0/8 trust\n");
    assert!(method(&h, TCP, "::ffff:127.0.0.1", "d", "u").is_some());
    assert!(method(&h, TCP, "::ffff:10.0.0.1", "d", "u").is_none());
}

#[test]
fn database_and_user_lists_are_comma_separated_with_optional_spaces() {
    let h = hba("host app1,app2 , app3 alice, bob 10.0.0.0/8 md5\n");
    for db in ["app1", "app2", "app3"] {
        for user in ["alice", "bob"] {
            assert!(
                method(&h, TCP, "10.0.0.1", db, user).is_some(),
                "{db} {user}"
            );
        }
    }
    assert!(method(&h, TCP, "10.0.0.1", "app4", "alice").is_none());
    assert!(method(&h, TCP, "10.0.0.1", "app1", "carol").is_none());
    let names: Vec<&str> = h.rules()[0].databases.names().collect();
    assert_eq!(names, ["app1", "app2", "app3"]);
}

#[test]
fn quoted_names_keep_spaces_commas_and_quotes_and_lose_keyword_meaning() {
    let h = hba("local \"all\" \"my user\",\"a,b\" trust\n\
         local \"sameuser\" \"say \"\"hi\"\"\" md5 # comment\n\
         local \"#x\" \"+g\",\"@f\" password\n");
    assert_eq!(
        method(&h, LOCAL, "", "all", "my user"),
        Some((HbaMethod::Trust, 1))
    );
    assert_eq!(
        method(&h, LOCAL, "", "all", "a,b"),
        Some((HbaMethod::Trust, 1))
    );
    assert_eq!(method(&h, LOCAL, "", "other", "my user"), None);
    assert!(!h.rules()[0].databases.is_all());
    assert_eq!(
        method(&h, LOCAL, "", "sameuser", "say \"hi\""),
        Some((HbaMethod::Md5, 2))
    );
    assert_eq!(method(&h, LOCAL, "", "x", "x"), None);
    assert_eq!(
        method(&h, LOCAL, "", "#x", "+g"),
        Some((HbaMethod::Password, 3))
    );
    assert_eq!(
        method(&h, LOCAL, "", "#x", "@f"),
        Some((HbaMethod::Password, 3))
    );
}

#[test]
fn all_matches_every_name_and_sameuser_a_database_named_as_the_user() {
    let h = hba("local sameuser all md5\nlocal all all reject\n");
    assert_eq!(
        method(&h, LOCAL, "", "alice", "alice"),
        Some((HbaMethod::Md5, 1))
    );
    assert_eq!(
        method(&h, LOCAL, "", "alice", "bob"),
        Some((HbaMethod::Reject, 2))
    );
    let mixed = hba("local sameuser,shared all trust\n");
    assert!(method(&mixed, LOCAL, "", "shared", "bob").is_some());
    assert!(method(&mixed, LOCAL, "", "bob", "bob").is_some());
    assert!(method(&mixed, LOCAL, "", "other", "bob").is_none());
}

#[test]
fn sameuser_in_the_user_field_is_a_plain_name() {
    let h = hba("local all sameuser trust\n");
    assert!(method(&h, LOCAL, "", "x", "x").is_none());
    assert!(method(&h, LOCAL, "", "x", "sameuser").is_some());
}

#[test]
fn replication_parses_but_matches_no_ordinary_connection() {
    let h = hba("host replication all all trust\nhost all all all md5\n");
    assert_eq!(
        method(&h, TCP, "10.0.0.1", "replication", "u"),
        Some((HbaMethod::Md5, 2))
    );
    let quoted = hba("host \"replication\" all all trust\n");
    assert!(method(&quoted, TCP, "10.0.0.1", "replication", "u").is_some());
}

#[test]
fn every_method_keyword_parses() {
    let h = hba("local a all trust\nlocal b all reject\nlocal c all md5\n\
         local d all password\nlocal e all scram-sha-256\nlocal f all cert\n\
         local g all peer\n");
    let methods: Vec<HbaMethod> = h.rules().iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        [
            HbaMethod::Trust,
            HbaMethod::Reject,
            HbaMethod::Md5,
            HbaMethod::Password,
            HbaMethod::ScramSha256,
            HbaMethod::Cert,
            HbaMethod::Peer
        ]
    );
    for m in methods {
        assert_eq!(HbaMethod::from_keyword(m.as_str()), Some(m));
    }
}

#[test]
fn keywords_are_case_sensitive_as_in_postgresql() {
    fails_on("HOST all all all trust\n", 1, "unknown record type HOST");
    fails_on("host all all all TRUST\n", 1, "\"TRUST\" is not supported");
    let h = hba("local ALL all trust\n");
    assert!(method(&h, LOCAL, "", "db", "u").is_none());
    assert!(method(&h, LOCAL, "", "ALL", "u").is_some());
}

// ---- file layout ----

#[test]
fn comments_and_blank_lines_are_ignored_and_line_numbers_count_them() {
    let h = hba("# TYPE DATABASE USER ADDRESS METHOD\n\
         \n   \t\n\
         local all all trust # trailing comment\r\n\
         host all all 127.0.0.1/32 md5#no space before the comment\n");
    assert_eq!(h.rules().len(), 2);
    assert_eq!(h.rules()[0].line, 4);
    assert_eq!(h.rules()[1].line, 5);
    assert_eq!(h.rules()[1].method, HbaMethod::Md5);
}

#[test]
fn a_backslash_at_the_end_of_a_line_continues_the_record() {
    let h =
        hba("# head\nhost all \\\n  alice,\\\n  bob \\\n  10.0.0.0/8 md5\nlocal all all trust\n");
    assert_eq!(h.rules().len(), 2);
    assert_eq!(h.rules()[0].line, 2);
    assert_eq!(h.rules()[1].line, 6);
    assert!(method(&h, TCP, "10.0.0.1", "d", "bob").is_some());
    fails_on(
        "local all all trust\nhost all \\\n  all 10.0.0.0/33 md5\n",
        2,
        "prefix",
    );
    // Only a backslash that ends the line continues it.
    fails_on("local all all trust \\ \n", 1, "\"\\\"");
}

// ---- what PgBouncer does not read ----

#[test]
fn malformed_lines_are_errors_that_name_the_line() {
    let cases: &[(&str, &str)] = &[
        ("hostx all all all trust", "unknown record type hostx"),
        ("\"host\" all all all trust", "unknown record type \"host\""),
        (
            "hostgssenc all all all trust",
            "hostgssenc records are not supported",
        ),
        ("include other.conf", "include directives are not supported"),
        ("local", "missing database field"),
        ("local all", "missing user field"),
        ("local all all", "missing authentication method"),
        ("host all all", "missing address field"),
        ("host all all 10.0.0.0/8", "missing authentication method"),
        ("local a,,b all trust", "empty item in the database list"),
        ("local a, all trust", "missing authentication method"),
        ("local \"\" all trust", "empty name"),
        ("local \"abc all trust", "unterminated quoted name"),
        ("local ab\"c\" all trust", "a quote in the middle"),
        ("local \"ab\"c all trust", "put a space or a comma"),
        ("local samerole all trust", "samerole is not supported"),
        ("local samegroup all trust", "samegroup is not supported"),
        (
            "local all +admins trust",
            "role membership (+group) is not supported",
        ),
        ("host all all 10.0.0.0/33 md5", "expected 0 to 32"),
        ("host all all ::/129 md5", "expected 0 to 128"),
        ("host all all 10.0.0.0/ md5", "invalid prefix length"),
        ("host all all 10.0.0.0/x md5", "invalid prefix length"),
        ("host all all 10.0.0.256/32 md5", "invalid IP address"),
        ("host all all 10.0.0.1 md5", "not an IPv4 netmask"),
        ("host all all 10.0.0.1 ffff:: md5", "not an IPv4 netmask"),
        (
            "host all all 10.0.0.1",
            "needs a prefix length or a netmask",
        ),
        (
            "host all all localhost md5",
            "host names and domains are not supported",
        ),
        (
            "host all all .example.com md5",
            "host names and domains are not supported",
        ),
        ("host all all samehost md5", "samehost is not supported"),
        ("host all all samenet md5", "samenet is not supported"),
        (
            "host all all \"10.0.0.1/32\" md5",
            "expected a client address",
        ),
        (
            "host all all 10.0.0.0/8,10.1.0.0/16 md5",
            "expected an authentication method, found ,",
        ),
        ("local all all ident", "\"ident\" is not supported"),
        (
            "local all all ldap ldapserver=x",
            "\"ldap\" is not supported",
        ),
        ("local all all pam", "\"pam\" is not supported"),
        ("local all all gss", "\"gss\" is not supported"),
        (
            "local all all \"trust\"",
            "expected an authentication method",
        ),
        (
            "hostssl all all all md5 clientcert=verify-full",
            "unsupported option \"clientcert=verify-full\"",
        ),
        ("local all all trust extra", "unsupported field \"extra\""),
        ("local all all peer map=m", "no ident map file is loaded"),
        ("local all all peer map=", "map= needs a map name"),
    ];
    for (record, needle) in cases {
        let text = format!("# first line\nlocal all all trust\n{record}\nlocal all all md5\n");
        let e = error(&text);
        assert_eq!(e.line(), Some(3), "{record}: {e}");
        assert!(
            e.to_string().starts_with("hba file line 3: ") && e.to_string().contains(needle),
            "{record}: {e} lacks {needle:?}"
        );
    }
}

#[test]
fn bits_outside_the_mask_are_an_error_and_leniently_a_rule_that_never_matches() {
    fails_on(
        "host all all 10.1.2.3/8 trust\n",
        1,
        "bits outside its mask 255.0.0.0",
    );
    let (h, warnings) = Hba::parse_with(
        "host all all 10.1.2.3/8 trust\n",
        None,
        HbaOptions {
            lenient: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(h.rules().len(), 1);
    assert_eq!(method(&h, TCP, "10.1.2.3", "d", "u"), None);
}

#[test]
fn a_regex_name_is_an_error_and_leniently_a_plain_name() {
    fails_on(
        "local /^app all trust\n",
        1,
        "regular expressions are not supported",
    );
    let (h, warnings) = Hba::parse_with(
        "local /^app all trust\n",
        None,
        HbaOptions {
            lenient: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(method(&h, LOCAL, "", "/^app", "u").is_some());
    assert!(method(&h, LOCAL, "", "app1", "u").is_none());
}

#[test]
fn lenient_parsing_skips_bad_lines_as_pgbouncer_does_and_reports_each() {
    let text = "host all +admins 10.0.0.0/8 trust\n\
         host all all samenet trust\n\
         local all all ident\n\
         host all all 10.0.0.0/8 md5\n\
         local all all peer\n";
    assert_eq!(error(text).line(), Some(1));
    let (h, warnings) = Hba::parse_with(
        text,
        None,
        HbaOptions {
            lenient: true,
            ..Default::default()
        },
    )
    .unwrap();
    let lines: Vec<Option<usize>> = warnings.iter().map(HbaError::line).collect();
    assert_eq!(lines, [Some(1), Some(2), Some(3)]);
    let kept: Vec<usize> = h.rules().iter().map(|r| r.line).collect();
    assert_eq!(kept, [4, 5]);
    assert_eq!(
        method(&h, TCP, "10.0.0.1", "d", "admin"),
        Some((HbaMethod::Md5, 4))
    );
}

// ---- @file includes ----

#[test]
fn at_file_names_are_read_relative_to_the_hba_file() {
    let dir = Scratch::new();
    dir.write("lists/dbs.txt", "app1, app2\n# comment\napp3 \"app 4\"\n");
    dir.write("lists/users.txt", "alice\n@more.txt\n");
    dir.write("lists/more.txt", "bob\n");
    let path = dir.write(
        "hba.conf",
        "host @lists/dbs.txt,extra @lists/users.txt 10.0.0.0/8 md5\n",
    );
    let h = Hba::load(&path).unwrap();
    for db in ["app1", "app2", "app3", "app 4", "extra"] {
        assert!(method(&h, TCP, "10.0.0.1", db, "alice").is_some(), "{db}");
    }
    assert!(method(&h, TCP, "10.0.0.1", "app1", "bob").is_some());
    assert!(method(&h, TCP, "10.0.0.1", "app5", "alice").is_none());
    assert!(method(&h, TCP, "10.0.0.1", "app1", "carol").is_none());

    let (from_text, _) = Hba::parse_with(
        "local @lists/dbs.txt all trust\n",
        Some(dir.path()),
        HbaOptions::default(),
    )
    .unwrap();
    assert!(method(&from_text, LOCAL, "", "app2", "u").is_some());
}

#[test]
fn at_file_errors_name_the_hba_line_and_the_included_file() {
    let dir = Scratch::new();
    dir.write("bad.txt", "ok\n+group\n");
    dir.write("loop.txt", "@loop.txt\n");
    let path = dir.write(
        "hba.conf",
        "local all all trust\nlocal @missing.txt all trust\nlocal @bad.txt all trust\nlocal @loop.txt all trust\n",
    );
    let e = Hba::load(&path).unwrap_err();
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().contains("could not read @missing.txt"), "{e}");

    let lenient = HbaOptions {
        lenient: true,
        ..Default::default()
    };
    let (h, warnings) = Hba::load_with(&path, lenient).unwrap();
    assert_eq!(h.rules().len(), 1);
    let messages: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert!(messages[1].contains("bad.txt line 2") && messages[1].contains("+group"));
    assert!(
        messages[2].contains("nest more than 10 deep"),
        "{}",
        messages[2]
    );
    assert!(messages[0].starts_with(&format!("{} line 2: ", path.display())));
}

#[test]
fn an_unreadable_hba_file_is_a_read_error() {
    let dir = Scratch::new();
    let e = Hba::load(&dir.path().join("absent.conf")).unwrap_err();
    assert!(matches!(e, HbaError::Read { .. }));
    assert_eq!(e.line(), None);
    assert!(e.to_string().contains("absent.conf"));
}

// ---- ident maps ----

const IDENT: &str = "# MAP SYSTEM-USER DB-USER\n\
    certs  client.example.com  app\n\
    certs  client.example.com  reporting\n\
    certs  admin.example.com   all\n\
    unix   deploy              \"app user\"\n";

fn with_ident(text: &str) -> Hba {
    let maps = IdentMaps::parse(IDENT).unwrap();
    let options = HbaOptions {
        ident: Some(&maps),
        lenient: false,
    };
    let (hba, warnings) = Hba::parse_with(text, None, options).unwrap();
    assert!(warnings.is_empty());
    hba
}

#[test]
fn ident_map_lines_collect_by_map_name() {
    let maps = IdentMaps::parse(IDENT).unwrap();
    assert!(maps.contains("certs") && maps.contains("unix") && !maps.contains("nope"));
    assert_eq!(maps.mappings("certs").len(), 3);
    assert_eq!(maps.mappings("certs")[2].database_user, IdentUser::All);
    assert_eq!(maps.mappings("certs")[2].line, 4);
    assert_eq!(
        maps.mappings("unix")[0].database_user,
        IdentUser::Name("app user".into())
    );
    assert!(maps.mappings("nope").is_empty());
}

#[test]
fn map_option_names_a_map_of_the_ident_file() {
    let h = with_ident("hostssl all all all cert map=certs\nlocal all all peer map=unix\n");
    assert_eq!(h.rules()[0].ident_map.as_deref(), Some("certs"));
    assert_eq!(h.rules()[1].ident_map.as_deref(), Some("unix"));

    let maps = IdentMaps::parse(IDENT).unwrap();
    let options = HbaOptions {
        ident: Some(&maps),
        lenient: false,
    };
    let e = Hba::parse_with("local all all peer map=other\n", None, options).unwrap_err();
    assert!(e.to_string().contains("defines no map \"other\""), "{e}");
    let e = Hba::parse_with("local all all peer map=unix map=certs\n", None, options).unwrap_err();
    assert!(e.to_string().contains("map= given twice"), "{e}");
    let e = Hba::parse_with("local all all md5 map=unix\n", None, options).unwrap_err();
    assert!(e.to_string().contains("cert and peer only"), "{e}");
}

#[test]
fn cert_and_peer_logins_check_the_system_name_through_the_map() {
    let h = with_ident(
        "hostssl all all all cert map=certs\nlocal all all peer map=unix\nhost all all all cert\n",
    );
    let cert = &h.rules()[0];
    let cn = |name: &'static str| move |n: &str| n == name;
    assert!(h.system_user_allowed(cert, "app", cn("client.example.com")));
    assert!(h.system_user_allowed(cert, "reporting", cn("client.example.com")));
    assert!(!h.system_user_allowed(cert, "postgres", cn("client.example.com")));
    assert!(h.system_user_allowed(cert, "postgres", cn("admin.example.com")));
    assert!(!h.system_user_allowed(cert, "app", cn("app")));

    let peer = &h.rules()[1];
    assert!(h.system_user_allowed(peer, "app user", cn("deploy")));
    assert!(!h.system_user_allowed(peer, "app", cn("deploy")));

    let unmapped = &h.rules()[2];
    assert!(h.system_user_allowed(unmapped, "app", cn("app")));
    assert!(!h.system_user_allowed(unmapped, "app", cn("client.example.com")));
}

#[test]
fn malformed_ident_lines_name_the_line_and_leniently_are_skipped() {
    let cases: &[(&str, &str)] = &[
        ("m sys", "expected three fields"),
        ("m sys db extra", "expected three fields"),
        ("m sys,other db", "no comma-separated lists"),
        ("include other.conf", "include directives are not supported"),
        ("m /^(.*)$ \\1", "regular expressions are not supported"),
        ("m sys +admins", "role membership (+group) is not supported"),
        ("m \"sys db", "unterminated quoted name"),
        ("m \"\" db", "empty name"),
    ];
    for (record, needle) in cases {
        let text = format!("ok sys db\n{record}\n");
        let e = IdentMaps::parse(&text).unwrap_err();
        assert_eq!(e.line(), Some(2), "{record}: {e}");
        assert!(
            e.to_string().starts_with("ident map file line 2: ") && e.to_string().contains(needle),
            "{record}: {e} lacks {needle:?}"
        );
    }

    let dir = Scratch::new();
    let path = dir.write("ident.conf", "m a b\nbroken\nm c all\n");
    let (maps, warnings) = IdentMaps::load_with(&path, true).unwrap();
    assert_eq!(maps.mappings("m").len(), 2);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line(), Some(2));
    assert!(IdentMaps::load(&path).is_err());
    assert!(matches!(
        IdentMaps::load(&dir.path().join("absent")),
        Err(HbaError::Read { .. })
    ));
}

// ---- the lexer ----

#[test]
fn records_join_continued_lines_and_keep_first_line_numbers() {
    assert_eq!(
        lexer::records("a\\\nb\nc\r\nd\\"),
        [
            (1, "ab".to_string()),
            (3, "c".to_string()),
            (4, "d".to_string())
        ]
    );
    assert_eq!(
        lexer::tokenize("x,\"y z\" # c").unwrap(),
        [
            lexer::Token::Word {
                text: "x".into(),
                quoted: false
            },
            lexer::Token::Comma,
            lexer::Token::Word {
                text: "y z".into(),
                quoted: true
            },
        ]
    );
}
