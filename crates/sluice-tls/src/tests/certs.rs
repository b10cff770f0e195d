//! Certificate facts and file errors.

use ring::digest;
use sluice_config::GeneralSettings;

use super::{client_tls, Ca, Pki, TempDir};
use crate::{peer_common_name, tls_server_end_point, ClientTls, ServerTls, TlsError, TlsMode};

#[test]
fn peer_common_name_reads_the_first_cn() {
    let ca = Ca::new("Sluice Test CA");
    let alice = ca.issue("alice", &[], false);
    assert_eq!(
        peer_common_name(alice.cert.der().as_ref()).as_deref(),
        Some("alice")
    );
    assert_eq!(peer_common_name(b"not a certificate"), None);

    // A certificate without a CN.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Org");
    let cert = params.self_signed(&key).unwrap();
    assert_eq!(peer_common_name(cert.der().as_ref()), None);
}

#[test]
fn tls_server_end_point_hashes_with_the_signature_hash() {
    // rcgen's default: ECDSA P-256 with SHA-256.
    let ca = Ca::new("CA");
    let leaf = ca.issue("db", &["db"], true);
    let der = leaf.cert.der().as_ref();
    assert_eq!(
        tls_server_end_point(der),
        Some(digest::digest(&digest::SHA256, der).as_ref().to_vec())
    );

    // ECDSA P-384 with SHA-384.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["db".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = cert.der().as_ref();
    let hash = tls_server_end_point(der).unwrap();
    assert_eq!(hash.len(), 48);
    assert_eq!(hash, digest::digest(&digest::SHA384, der).as_ref());

    // Ed25519 has no hash of its own: undefined in RFC 5929.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["db".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert_eq!(tls_server_end_point(cert.der().as_ref()), None);
    assert_eq!(tls_server_end_point(b"garbage"), None);
}

#[test]
fn client_tls_exposes_the_end_point_of_its_certificate() {
    let pki = Pki::new();
    let client = client_tls(&pki.client_side(TlsMode::Require));
    assert_eq!(
        client.server_end_point(),
        tls_server_end_point(&pki.server_cert_der).as_deref()
    );
    assert_eq!(ClientTls::disabled().server_end_point(), None);
}

#[test]
fn a_missing_key_file_is_an_error_naming_setting_and_file() {
    let pki = Pki::new();
    let missing = pki.dir.path().join("missing.key");
    let err = ClientTls::from_settings(&GeneralSettings {
        client_tls_key_file: Some(missing.clone()),
        ..pki.client_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(matches!(
        err,
        TlsError::Io {
            setting: "client_tls_key_file",
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "client_tls_key_file {}: could not read file",
            missing.display()
        )),
        "{text}"
    );

    let err = ServerTls::from_settings(&GeneralSettings {
        server_tls_key_file: Some(missing.clone()),
        server_tls_cert_file: Some(pki.client_cert.clone()),
        ..pki.server_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(err
        .to_string()
        .contains(&format!("server_tls_key_file {}", missing.display())));

    let err = ServerTls::from_settings(&GeneralSettings {
        server_tls_ca_file: Some(pki.dir.path().join("nope.crt")),
        ..pki.server_side(TlsMode::VerifyFull)
    })
    .unwrap_err();
    assert!(err.to_string().contains("server_tls_ca_file"), "{err}");
    assert!(err.to_string().contains("nope.crt"), "{err}");
}

#[test]
fn key_and_certificate_files_must_hold_what_they_should() {
    let pki = Pki::new();
    let dir = TempDir::new();
    let junk = dir.write("junk.pem", "hello\n");
    let encrypted = dir.write(
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );

    let err = ClientTls::from_settings(&GeneralSettings {
        client_tls_key_file: Some(junk.clone()),
        ..pki.client_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(err.to_string().contains("no private key found"), "{err}");
    assert!(err.to_string().contains("junk.pem"), "{err}");

    let err = ClientTls::from_settings(&GeneralSettings {
        client_tls_key_file: Some(encrypted),
        ..pki.client_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(err.to_string().contains("encrypted"), "{err}");

    let err = ClientTls::from_settings(&GeneralSettings {
        client_tls_cert_file: Some(junk.clone()),
        ..pki.client_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(err.to_string().contains("client_tls_cert_file"), "{err}");
    assert!(err.to_string().contains("no certificate found"), "{err}");

    // The other CA's key with our certificate.
    let err = ClientTls::from_settings(&GeneralSettings {
        client_tls_key_file: Some(pki.other_server_key.clone()),
        ..pki.client_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("does not match the certificate"),
        "{err}"
    );

    let err = ServerTls::from_settings(&GeneralSettings {
        server_tls_key_file: Some(pki.other_client_key.clone()),
        server_tls_cert_file: Some(pki.client_cert.clone()),
        ..pki.server_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
}

#[test]
fn required_files_and_modes() {
    let pki = Pki::new();
    // Disabled: nothing is read.
    let (tls, warnings) = ClientTls::from_settings(&GeneralSettings::default()).unwrap();
    assert!(tls.acceptor.is_none() && tls.mode == TlsMode::Disable && warnings.is_empty());
    let (tls, _) = ServerTls::from_settings(&GeneralSettings {
        server_tls_sslmode: TlsMode::Disable,
        server_tls_ca_file: Some(pki.dir.path().join("missing")),
        ..GeneralSettings::default()
    })
    .unwrap();
    assert!(tls.connector.is_none());

    // The default server mode (prefer) builds without any file.
    let (tls, warnings) = ServerTls::from_settings(&GeneralSettings::default()).unwrap();
    assert!(tls.connector.is_some() && tls.mode == TlsMode::Prefer);
    assert!(warnings.is_empty(), "{warnings:?}");

    for mode in [TlsMode::Allow, TlsMode::Prefer, TlsMode::Require] {
        let err = ClientTls::from_settings(&GeneralSettings {
            client_tls_sslmode: mode,
            client_tls_cert_file: Some(pki.server_cert.clone()),
            ..GeneralSettings::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("needs client_tls_key_file and client_tls_cert_file"),
            "{err}"
        );
    }
    let err = ClientTls::from_settings(&pki.client_side(TlsMode::VerifyFull)).unwrap_err();
    assert!(
        err.to_string()
            .contains("verify-full requires client_tls_ca_file"),
        "{err}"
    );

    let err = ServerTls::from_settings(&GeneralSettings {
        server_tls_cert_file: Some(pki.client_cert.clone()),
        ..pki.server_side(TlsMode::Require)
    })
    .unwrap_err();
    assert!(err.to_string().contains("must be set together"), "{err}");
}
