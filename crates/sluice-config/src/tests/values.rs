//! Durations, booleans and the small value parsers.

use std::time::Duration;

use crate::values::{parse_list, parse_octal_mode, parse_optional_uint, parse_port, parse_uint};
use crate::{parse_bool, parse_duration_secs};

#[test]
fn plain_number_duration_is_seconds() {
    assert_eq!(parse_duration_secs("15"), Ok(Duration::from_secs(15)));
    assert_eq!(parse_duration_secs("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration_secs(" 3600 "), Ok(Duration::from_secs(3600)));
}

#[test]
fn fractional_duration_is_fractional_seconds() {
    assert_eq!(parse_duration_secs("0.5"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration_secs("5.0"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration_secs(".25"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration_secs("0.1"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_duration_secs("0.7"), Ok(Duration::from_millis(700)));
}

#[test]
fn duration_units_are_accepted() {
    assert_eq!(parse_duration_secs("100ms"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_duration_secs("250us"), Ok(Duration::from_micros(250)));
    assert_eq!(parse_duration_secs("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration_secs("2min"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration_secs("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration_secs("1d"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_duration_secs("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(
        parse_duration_secs("100 ms"),
        Ok(Duration::from_millis(100))
    );
}

#[test]
fn bad_durations_are_rejected_with_a_reason() {
    for bad in [
        "", "abc", "-1", "-0.5", "1.2.3", ".", "10x", "5m", "1e3", "inf", "NaN",
    ] {
        let err = parse_duration_secs(bad).expect_err(bad);
        assert!(!err.is_empty(), "{bad}: empty reason");
    }
    assert!(parse_duration_secs("10x")
        .unwrap_err()
        .contains("unknown unit \"x\""));
    assert!(parse_duration_secs("-1").unwrap_err().contains("negative"));
}

#[test]
fn huge_duration_is_an_error_not_a_panic() {
    let err = parse_duration_secs("99999999999999999999999999d").unwrap_err();
    assert!(err.contains("too large"), "{err}");
}

#[test]
fn booleans_accept_common_spellings() {
    for yes in ["1", "yes", "YES", "on", "On", "true", "TRUE", " 1 "] {
        assert_eq!(parse_bool(yes), Ok(true), "{yes}");
    }
    for no in ["0", "no", "No", "off", "OFF", "false", "False"] {
        assert_eq!(parse_bool(no), Ok(false), "{no}");
    }
    for bad in ["", "2", "maybe", "y", "enabled"] {
        assert!(parse_bool(bad).is_err(), "{bad}");
    }
}

#[test]
fn integers_are_decimal_and_non_negative() {
    assert_eq!(parse_uint::<usize>("100"), Ok(100));
    assert_eq!(parse_uint::<usize>("010"), Ok(10));
    assert_eq!(
        parse_uint::<usize>("abc"),
        Err("expected an integer".to_string())
    );
    assert_eq!(
        parse_uint::<usize>("-5"),
        Err("expected a non-negative integer".to_string())
    );
    assert!(parse_uint::<u8>("300").unwrap_err().contains("too large"));
    assert!(parse_uint::<usize>("").is_err());
    assert!(parse_uint::<usize>("1.5").is_err());
    assert!(parse_uint::<usize>("+3").is_err());
}

#[test]
fn minus_one_means_unset_in_per_entry_counts() {
    assert_eq!(parse_optional_uint::<usize>("-1"), Ok(None));
    assert_eq!(parse_optional_uint::<usize>("7"), Ok(Some(7)));
    assert!(parse_optional_uint::<usize>("-2").is_err());
}

#[test]
fn server_port_must_be_1_to_65535() {
    assert_eq!(parse_port("5432"), Ok(5432));
    assert!(parse_port("0").is_err());
    assert!(parse_port("65536").is_err());
    assert!(parse_port("http").is_err());
}

#[test]
fn unix_socket_mode_is_octal() {
    assert_eq!(parse_octal_mode("0777"), Ok(0o777));
    assert_eq!(parse_octal_mode("777"), Ok(0o777));
    assert_eq!(parse_octal_mode("0o700"), Ok(0o700));
    assert_eq!(parse_octal_mode("0660"), Ok(0o660));
    assert!(parse_octal_mode("0789").is_err());
    assert!(parse_octal_mode("").is_err());
    assert!(parse_octal_mode("077777").is_err());
}

#[test]
fn lists_are_split_on_commas_and_trimmed() {
    assert_eq!(parse_list(" a, b ,,c "), vec!["a", "b", "c"]);
    assert!(parse_list("").is_empty());
    assert_eq!(parse_list("*"), vec!["*"]);
}
