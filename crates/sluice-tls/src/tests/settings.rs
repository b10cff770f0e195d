//! The protocol, cipher, curve and DH settings: parsing, warnings, errors.

use rustls::CipherSuite;
use sluice_config::GeneralSettings;

use super::Pki;
use crate::choices::{parse_protocols, tls12_suites_for_test, TLS10, TLS11, TLS12, TLS13};
use crate::{ClientTls, ServerTls, TlsError, TlsMode};

#[test]
fn protocols_follow_pgbouncer_syntax() {
    let p = |v: &str| parse_protocols("client_tls_protocols", v).unwrap();
    assert_eq!(p("secure"), TLS12 | TLS13);
    assert_eq!(p("default"), TLS12 | TLS13);
    assert_eq!(p(""), TLS12 | TLS13);
    assert_eq!(p("all"), TLS10 | TLS11 | TLS12 | TLS13);
    assert_eq!(p("legacy"), TLS10 | TLS11 | TLS12 | TLS13);
    assert_eq!(p("tlsv1"), TLS10 | TLS11 | TLS12 | TLS13);
    assert_eq!(p("tlsv1.2"), TLS12);
    assert_eq!(p("TLSv1.3"), TLS13);
    assert_eq!(p("tlsv1.2,tlsv1.3"), TLS12 | TLS13);
    assert_eq!(p("tlsv1.2:tlsv1.3"), TLS12 | TLS13);
    assert_eq!(p("tlsv1.2, tlsv1.3"), TLS12 | TLS13);
    assert_eq!(p("tlsv1.2 tlsv1.3"), TLS12 | TLS13);
    assert_eq!(p("tlsv1.2,+tlsv1.3"), TLS12 | TLS13);
    assert_eq!(p("!tlsv1.3"), TLS10 | TLS11 | TLS12);
    assert_eq!(p("all,!tlsv1.0,!tlsv1.1"), TLS12 | TLS13);
    assert_eq!(p("secure,!tlsv1.2"), TLS13);

    let err = parse_protocols("server_tls_protocols", "tlsv1.4").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid server_tls_protocols \"tlsv1.4\": unknown protocol \"tlsv1.4\"; expected a \
         list of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, or all, secure, default, legacy (\"!\" \
         before an item excludes it)"
    );
    assert!(parse_protocols("x", "normal").is_err());
}

fn client_warnings(pki: &Pki, change: impl FnOnce(&mut GeneralSettings)) -> Vec<String> {
    let mut g = pki.client_side(TlsMode::Require);
    change(&mut g);
    match ClientTls::from_settings(&g) {
        Ok((_, warnings)) => warnings,
        Err(e) => panic!("{e}"),
    }
}

fn client_error(pki: &Pki, change: impl FnOnce(&mut GeneralSettings)) -> TlsError {
    let mut g = pki.client_side(TlsMode::Require);
    change(&mut g);
    match ClientTls::from_settings(&g) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn old_protocols_warn_when_mixed_and_fail_when_alone() {
    let pki = Pki::new();
    assert!(client_warnings(&pki, |_| {}).is_empty());

    let warnings = client_warnings(&pki, |g| g.client_tls_protocols = "all".to_string());
    assert_eq!(
        warnings,
        vec![
            "client_tls_protocols = \"all\": TLS 1.0 and TLS 1.1 not available with rustls; \
             using only TLS 1.3 and TLS 1.2"
        ]
    );
    let warnings = client_warnings(&pki, |g| {
        g.client_tls_protocols = "tlsv1.1,tlsv1.2".to_string()
    });
    assert!(
        warnings[0].contains("TLS 1.1 not available"),
        "{warnings:?}"
    );

    for value in ["tlsv1.0", "tlsv1.0,tlsv1.1", "all,!tlsv1.2,!tlsv1.3"] {
        let err = client_error(&pki, |g| g.client_tls_protocols = value.to_string());
        assert!(
            err.to_string().contains("which rustls does not implement"),
            "{value}: {err}"
        );
    }
    let err = client_error(&pki, |g| g.client_tls_protocols = "!all".to_string());
    assert!(
        err.to_string().contains("no protocol version is left"),
        "{err}"
    );

    let err = ServerTls::from_settings(&GeneralSettings {
        server_tls_protocols: "tlsv1.1".to_string(),
        ..GeneralSettings::default()
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid server_tls_protocols"),
        "{err}"
    );
}

#[test]
fn cipher_keywords_use_rustls_defaults() {
    for value in ["", "default", "secure", "fast", "normal", "DEFAULT"] {
        let (suites, warnings) = tls12_suites_for_test(value);
        assert_eq!(suites.len(), 6, "{value}");
        assert!(warnings.is_empty(), "{value}: {warnings:?}");
    }
    for value in ["all", "legacy", "compat", "insecure"] {
        let (suites, warnings) = tls12_suites_for_test(value);
        assert_eq!(suites.len(), 6, "{value}");
        assert!(
            warnings[0].contains("which is not weaker"),
            "{value}: {warnings:?}"
        );
    }
}

fn names(value: &str) -> (Vec<CipherSuite>, Vec<String>) {
    let (suites, warnings) = tls12_suites_for_test(value);
    (suites.iter().map(|s| s.suite()).collect(), warnings)
}

#[test]
fn openssl_cipher_strings_are_evaluated_over_rustls_suites() {
    let (suites, warnings) = names("HIGH:!aNULL:!MD5");
    assert_eq!(suites.len(), 6);
    assert!(warnings.is_empty(), "{warnings:?}");

    let (suites, warnings) = names("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_eq!(
        suites,
        vec![
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        ]
    );
    assert!(warnings.is_empty());

    let (suites, _) = names("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
    assert_eq!(
        suites,
        vec![CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256]
    );

    let (suites, warnings) = names("ECDHE+AESGCM:!ECDSA");
    assert_eq!(
        suites,
        vec![
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        ]
    );
    assert!(warnings.is_empty());

    // `!` is permanent, `-` is not, `+` moves to the end.
    let (suites, _) = names("CHACHA20:-aRSA:aRSA:!ECDSA");
    assert_eq!(
        suites,
        vec![
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        ]
    );
    let (suites, _) = names("!aRSA:CHACHA20:aRSA");
    assert_eq!(
        suites,
        vec![CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
    );
    let (suites, _) = names("!CHACHA20:ALL");
    assert_eq!(suites.len(), 4);
    let (suites, _) = names("AES256:CHACHA20:+AES256");
    assert_eq!(
        suites[..2],
        [
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        ]
    );
    let (_, warnings) = names("HIGH:@STRENGTH");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn cipher_strings_rustls_cannot_honour_warn_and_use_defaults() {
    // Only suites rustls does not have.
    let (suites, warnings) = names("AES128-SHA:DHE-RSA-AES256-GCM-SHA384");
    assert_eq!(suites.len(), 6);
    assert!(
        warnings[0].contains("selects no TLS 1.2 cipher suite that rustls implements"),
        "{warnings:?}"
    );
    // Something Sluice cannot interpret.
    let (suites, warnings) = names("HIGH:FROBNICATE");
    assert_eq!(suites.len(), 6);
    assert!(warnings[0].contains("is not honoured"), "{warnings:?}");
    assert!(warnings[0].contains("FROBNICATE"), "{warnings:?}");
    assert!(
        warnings[0].contains("using rustls's secure default"),
        "{warnings:?}"
    );
}

#[test]
fn tls13_ciphers() {
    let pki = Pki::new();
    let warnings = client_warnings(&pki, |g| {
        g.client_tls13_ciphers = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256".to_string()
    });
    assert!(warnings.is_empty(), "{warnings:?}");

    let warnings = client_warnings(&pki, |g| {
        g.client_tls13_ciphers = "TLS_AES_128_CCM_SHA256:TLS_AES_128_GCM_SHA256".to_string()
    });
    assert!(
        warnings[0].contains("rustls does not implement TLS_AES_128_CCM_SHA256; using only"),
        "{warnings:?}"
    );

    let warnings = client_warnings(&pki, |g| {
        g.client_tls13_ciphers = "TLS_AES_128_CCM_8_SHA256".to_string()
    });
    assert!(
        warnings[0].contains("so it is not honoured"),
        "{warnings:?}"
    );

    let err = client_error(&pki, |g| g.client_tls13_ciphers = "TLS_AES_512".to_string());
    assert!(
        err.to_string()
            .starts_with("invalid client_tls13_ciphers \"TLS_AES_512\""),
        "{err}"
    );
    let err = ServerTls::from_settings(&GeneralSettings {
        server_tls13_ciphers: "nope".to_string(),
        ..GeneralSettings::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("server_tls13_ciphers"), "{err}");
}

#[test]
fn ecdh_curves() {
    let pki = Pki::new();
    for value in [
        "auto",
        "",
        "prime256v1",
        "secp256r1",
        "P-256",
        "secp384r1",
        "X25519",
    ] {
        let warnings = client_warnings(&pki, |g| g.client_tls_ecdhcurve = value.to_string());
        assert!(warnings.is_empty(), "{value}: {warnings:?}");
    }
    let warnings = client_warnings(&pki, |g| g.client_tls_ecdhcurve = "none".to_string());
    assert!(
        warnings[0].contains("\"none\" is not honoured"),
        "{warnings:?}"
    );
    let warnings = client_warnings(&pki, |g| {
        g.client_tls_ecdhcurve = "secp521r1:prime256v1".to_string()
    });
    assert!(
        warnings[0].contains("does not implement secp521r1"),
        "{warnings:?}"
    );

    let err = client_error(&pki, |g| g.client_tls_ecdhcurve = "secp521r1".to_string());
    assert!(
        err.to_string().contains("does not implement secp521r1"),
        "{err}"
    );
    let err = client_error(&pki, |g| g.client_tls_ecdhcurve = "brainpool".to_string());
    assert!(
        err.to_string()
            .starts_with("invalid client_tls_ecdhcurve \"brainpool\": unknown curve"),
        "{err}"
    );
}

#[test]
fn dh_params() {
    let pki = Pki::new();
    for value in ["auto", "none", ""] {
        let warnings = client_warnings(&pki, |g| g.client_tls_dheparams = value.to_string());
        assert!(warnings.is_empty(), "{value}: {warnings:?}");
    }
    for value in ["legacy", "2048"] {
        let warnings = client_warnings(&pki, |g| g.client_tls_dheparams = value.to_string());
        assert_eq!(
            warnings,
            vec![format!(
                "client_tls_dheparams = \"{value}\" is ignored: rustls offers no finite-field \
                 DHE suites (only ECDHE), which is not weaker"
            )]
        );
    }
}

#[test]
fn server_side_warnings_name_server_settings() {
    let (_, warnings) = ServerTls::from_settings(&GeneralSettings {
        server_tls_protocols: "legacy".to_string(),
        server_tls_ciphers: "RC4".to_string(),
        ..GeneralSettings::default()
    })
    .unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("server_tls_protocols = \"legacy\""));
    assert!(warnings[1].starts_with("server_tls_ciphers = \"RC4\""));
}
