//! Connection strings of `[databases]` and `[users]`.

use crate::parse_connstr;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn plain_pairs_are_split_on_whitespace() {
    assert_eq!(
        parse_connstr("host=localhost port=5432  dbname=app\tuser=u"),
        Ok(pairs(&[
            ("host", "localhost"),
            ("port", "5432"),
            ("dbname", "app"),
            ("user", "u"),
        ]))
    );
}

#[test]
fn spaces_around_equals_are_allowed() {
    assert_eq!(
        parse_connstr("host = db1 port =6543"),
        Ok(pairs(&[("host", "db1"), ("port", "6543")]))
    );
}

#[test]
fn quoted_values_keep_spaces_and_unescape_quotes() {
    assert_eq!(
        parse_connstr(r"connect_query='SELECT 1' application_name='it\'s' password='a''b'"),
        Ok(pairs(&[
            ("connect_query", "SELECT 1"),
            ("application_name", "it's"),
            ("password", "a'b"),
        ]))
    );
}

#[test]
fn backslashes_escape_only_quotes_and_backslashes_inside_quotes() {
    assert_eq!(
        parse_connstr(r"a='x\\y' b='c:\dir' c=p\q"),
        Ok(pairs(&[("a", r"x\y"), ("b", r"c:\dir"), ("c", r"p\q")]))
    );
}

#[test]
fn empty_values_are_allowed() {
    assert_eq!(
        parse_connstr("password='' user=x"),
        Ok(pairs(&[("password", ""), ("user", "x")]))
    );
    assert_eq!(parse_connstr("password="), Ok(pairs(&[("password", "")])));
    assert_eq!(parse_connstr(""), Ok(vec![]));
    assert_eq!(parse_connstr("   "), Ok(vec![]));
}

#[test]
fn a_key_without_equals_is_an_error() {
    assert_eq!(
        parse_connstr("host=x bogus"),
        Err("missing \"=\" after \"bogus\"".to_string())
    );
    assert!(parse_connstr("=x").is_err());
}

#[test]
fn an_unterminated_quote_is_an_error_that_does_not_echo_the_value() {
    let err = parse_connstr("password='secret host=x").unwrap_err();
    assert_eq!(err, "unterminated quoted value for \"password\"");
    assert!(!err.contains("secret"));
}

#[test]
fn text_glued_to_a_closing_quote_is_an_error() {
    assert!(parse_connstr("a='x'b=1").is_err());
}

#[test]
fn non_ascii_values_survive() {
    assert_eq!(
        parse_connstr("application_name='café über' timezone=Europe/Zürich"),
        Ok(pairs(&[
            ("application_name", "café über"),
            ("timezone", "Europe/Zürich"),
        ]))
    );
}
