//! Real handshakes: server verification per server_tls_sslmode, client
//! certificates per client_tls_sslmode, ALPN, and the protocol/cipher/curve
//! settings taking effect on the wire.

use std::sync::Arc;

use rustls::{CipherSuite, NamedGroup, ProtocolVersion};
use sluice_config::{AuthType, GeneralSettings};

use super::{client_tls, handshake, handshake_with, server_tls, Ca, Pki, TempDir};
use crate::{ClientTls, ServerName, ServerTls, TlsConnector, TlsMode, ALPN_POSTGRESQL};

// --- Sluice as the TLS client (server_tls_sslmode) ---------------------------

#[tokio::test]
async fn verify_full_succeeds_with_the_right_host_name_and_ip() {
    let pki = Pki::new();
    let client = client_tls(&pki.client_side(TlsMode::Require));
    let server = server_tls(&pki.server_side(TlsMode::VerifyFull));
    for host in ["localhost", "127.0.0.1"] {
        let outcome = handshake(&client, &server, host).await;
        assert!(outcome.ok(), "{host}: {outcome:?}");
    }
}

#[tokio::test]
async fn verify_full_fails_with_a_wrong_host_name_or_ip() {
    let pki = Pki::new();
    let client = client_tls(&pki.client_side(TlsMode::Require));
    let server = server_tls(&pki.server_side(TlsMode::VerifyFull));
    for host in ["db.example.com", "127.0.0.2"] {
        let outcome = handshake(&client, &server, host).await;
        let err = outcome.connected.expect_err(host);
        assert!(
            err.contains("certificate not valid for name"),
            "{host}: {err}"
        );
        assert!(outcome.accepted.is_err());
    }
}

#[tokio::test]
async fn verify_ca_passes_with_a_wrong_host_name() {
    let pki = Pki::new();
    let client = client_tls(&pki.client_side(TlsMode::Require));
    let server = server_tls(&pki.server_side(TlsMode::VerifyCa));
    let outcome = handshake(&client, &server, "db.example.com").await;
    assert!(outcome.ok(), "{outcome:?}");
}

#[tokio::test]
async fn verify_ca_and_verify_full_reject_a_certificate_from_another_ca() {
    let pki = Pki::new();
    let client = client_tls(&GeneralSettings {
        client_tls_key_file: Some(pki.other_server_key.clone()),
        client_tls_cert_file: Some(pki.other_server_cert.clone()),
        ..pki.client_side(TlsMode::Require)
    });
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
        let server = server_tls(&pki.server_side(mode));
        let outcome = handshake(&client, &server, "localhost").await;
        let err = outcome.connected.expect_err(mode.as_str());
        assert!(err.contains("UnknownIssuer"), "{mode:?}: {err}");
    }
}

#[tokio::test]
async fn require_prefer_and_allow_without_a_ca_accept_any_certificate() {
    let pki = Pki::new();
    let client = client_tls(&GeneralSettings {
        client_tls_key_file: Some(pki.other_server_key.clone()),
        client_tls_cert_file: Some(pki.other_server_cert.clone()),
        ..pki.client_side(TlsMode::Require)
    });
    for mode in [TlsMode::Require, TlsMode::Prefer, TlsMode::Allow] {
        let server = server_tls(&GeneralSettings {
            server_tls_sslmode: mode,
            ..GeneralSettings::default()
        });
        let outcome = handshake(&client, &server, "db.example.com").await;
        assert!(outcome.ok(), "{mode:?}: {outcome:?}");
    }
}

#[tokio::test]
async fn require_with_a_ca_file_verifies_the_chain_but_not_the_name_like_libpq() {
    let pki = Pki::new();
    let right = client_tls(&pki.client_side(TlsMode::Require));
    let wrong = client_tls(&GeneralSettings {
        client_tls_key_file: Some(pki.other_server_key.clone()),
        client_tls_cert_file: Some(pki.other_server_cert.clone()),
        ..pki.client_side(TlsMode::Require)
    });
    let server = server_tls(&pki.server_side(TlsMode::Require));
    let outcome = handshake(&right, &server, "db.example.com").await;
    assert!(outcome.ok(), "{outcome:?}");
    let outcome = handshake(&wrong, &server, "localhost").await;
    assert!(outcome.connected.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn prefer_with_a_ca_file_warns_that_it_is_not_used_and_does_not_verify() {
    let pki = Pki::new();
    let (server, warnings) = ServerTls::from_settings(&pki.server_side(TlsMode::Prefer)).unwrap();
    assert!(
        warnings[0].contains("server_tls_ca_file is set but server_tls_sslmode = prefer"),
        "{warnings:?}"
    );
    let wrong = client_tls(&GeneralSettings {
        client_tls_key_file: Some(pki.other_server_key.clone()),
        client_tls_cert_file: Some(pki.other_server_cert.clone()),
        ..pki.client_side(TlsMode::Require)
    });
    assert!(handshake(&wrong, &server, "localhost").await.ok());
}

#[tokio::test]
async fn verify_ca_without_a_ca_file_uses_the_system_bundle() {
    let pki = Pki::new();
    let g = GeneralSettings {
        server_tls_sslmode: TlsMode::VerifyCa,
        ..GeneralSettings::default()
    };
    match ServerTls::from_settings(&g) {
        Ok((server, _)) => {
            // Our throwaway CA is not in the system bundle.
            let client = client_tls(&pki.client_side(TlsMode::Require));
            let outcome = handshake(&client, &server, "localhost").await;
            assert!(outcome.connected.is_err(), "{outcome:?}");
        }
        Err(e) => {
            assert!(crate::files::system_ca_bundle().is_none(), "{e}");
            assert!(e.to_string().contains("no system CA bundle"), "{e}");
        }
    }
}

// --- Sluice as the TLS server (client_tls_sslmode) ---------------------------

/// Sluice-as-client settings that present the `alice` client certificate.
fn presenting(pki: &Pki, cert: &std::path::Path, key: &std::path::Path) -> ServerTls {
    server_tls(&GeneralSettings {
        server_tls_key_file: Some(key.to_path_buf()),
        server_tls_cert_file: Some(cert.to_path_buf()),
        ..pki.server_side(TlsMode::VerifyFull)
    })
}

#[tokio::test]
async fn client_certificate_is_required_verified_and_its_cn_read() {
    let pki = Pki::new();
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
        let client = client_tls(&GeneralSettings {
            client_tls_ca_file: Some(pki.ca.clone()),
            ..pki.client_side(mode)
        });
        assert!(client.request_client_cert);

        let alice = presenting(&pki, &pki.client_cert, &pki.client_key);
        let outcome = handshake(&client, &alice, "localhost").await;
        let accepted = outcome.accepted.expect("accepted");
        assert_eq!(accepted.peer_cn.as_deref(), Some("alice"));

        let nobody = server_tls(&pki.server_side(TlsMode::VerifyFull));
        let outcome = handshake(&client, &nobody, "localhost").await;
        let err = outcome.accepted.expect_err("no client certificate");
        assert!(err.contains("peer sent no certificates"), "{mode:?}: {err}");

        let stranger = presenting(&pki, &pki.other_client_cert, &pki.other_client_key);
        let outcome = handshake(&client, &stranger, "localhost").await;
        let err = outcome.accepted.expect_err("foreign client certificate");
        assert!(err.contains("UnknownIssuer"), "{mode:?}: {err}");
    }
}

#[tokio::test]
async fn with_a_ca_file_require_makes_client_certificates_optional_but_verified() {
    let pki = Pki::new();
    let client = client_tls(&GeneralSettings {
        client_tls_ca_file: Some(pki.ca.clone()),
        ..pki.client_side(TlsMode::Require)
    });
    assert!(client.request_client_cert);

    let nobody = server_tls(&pki.server_side(TlsMode::VerifyFull));
    let outcome = handshake(&client, &nobody, "localhost").await;
    assert_eq!(outcome.accepted.expect("accepted").peer_cn, None);

    let alice = presenting(&pki, &pki.client_cert, &pki.client_key);
    let outcome = handshake(&client, &alice, "localhost").await;
    assert_eq!(
        outcome.accepted.expect("accepted").peer_cn.as_deref(),
        Some("alice")
    );

    let stranger = presenting(&pki, &pki.other_client_cert, &pki.other_client_key);
    let outcome = handshake(&client, &stranger, "localhost").await;
    assert!(outcome.accepted.is_err(), "{outcome:?}");
}

#[tokio::test]
async fn without_a_ca_file_no_client_certificate_is_requested() {
    let pki = Pki::new();
    let client = client_tls(&pki.client_side(TlsMode::Require));
    assert!(!client.request_client_cert);
    let alice = presenting(&pki, &pki.client_cert, &pki.client_key);
    let outcome = handshake(&client, &alice, "localhost").await;
    assert_eq!(outcome.accepted.expect("accepted").peer_cn, None);
}

#[tokio::test]
async fn alpn_postgresql_is_negotiated_and_no_alpn_is_accepted() {
    let pki = Pki::new();
    let client = client_tls(&pki.client_side(TlsMode::Require));
    let server = server_tls(&pki.server_side(TlsMode::VerifyFull));
    let outcome = handshake(&client, &server, "localhost").await;
    assert_eq!(
        outcome.accepted.expect("accepted").alpn.as_deref(),
        Some(ALPN_POSTGRESQL)
    );

    // A libpq < 17 style client: no ALPN at all.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::verify::NoVerification::new(provider)))
        .with_no_client_auth();
    assert!(config.alpn_protocols.is_empty());
    let outcome = handshake_with(
        client.acceptor.clone().unwrap(),
        TlsConnector::from(Arc::new(config)),
        ServerName::try_from("localhost").unwrap(),
    )
    .await;
    assert_eq!(outcome.accepted.expect("accepted").alpn, None);
}

#[tokio::test]
async fn protocols_take_effect_on_the_wire() {
    let pki = Pki::new();
    let server = server_tls(&pki.server_side(TlsMode::VerifyFull));

    let default = client_tls(&pki.client_side(TlsMode::Require));
    let outcome = handshake(&default, &server, "localhost").await;
    assert_eq!(
        outcome.accepted.expect("accepted").version,
        Some(ProtocolVersion::TLSv1_3)
    );

    let tls12 = client_tls(&GeneralSettings {
        client_tls_protocols: "tlsv1.2".to_string(),
        ..pki.client_side(TlsMode::Require)
    });
    let outcome = handshake(&tls12, &server, "localhost").await;
    assert_eq!(
        outcome.accepted.expect("accepted").version,
        Some(ProtocolVersion::TLSv1_2)
    );

    let only13 = server_tls(&GeneralSettings {
        server_tls_protocols: "tlsv1.3".to_string(),
        ..pki.server_side(TlsMode::VerifyFull)
    });
    let outcome = handshake(&tls12, &only13, "localhost").await;
    assert!(!outcome.ok(), "{outcome:?}");
}

#[tokio::test]
async fn ciphers_and_curves_take_effect_on_the_wire() {
    let pki = Pki::new();
    let server = server_tls(&pki.server_side(TlsMode::VerifyFull));

    let client = client_tls(&GeneralSettings {
        client_tls_protocols: "tlsv1.2".to_string(),
        client_tls_ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305".to_string(),
        client_tls_ecdhcurve: "secp384r1".to_string(),
        ..pki.client_side(TlsMode::Require)
    });
    let accepted = handshake(&client, &server, "localhost")
        .await
        .accepted
        .expect("accepted");
    assert_eq!(
        accepted.suite,
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
    );
    assert_eq!(accepted.kx_group, Some(NamedGroup::secp384r1));

    let client = client_tls(&GeneralSettings {
        client_tls13_ciphers: "TLS_AES_128_GCM_SHA256".to_string(),
        client_tls_ecdhcurve: "prime256v1".to_string(),
        ..pki.client_side(TlsMode::Require)
    });
    let accepted = handshake(&client, &server, "localhost")
        .await
        .accepted
        .expect("accepted");
    assert_eq!(accepted.suite, Some(CipherSuite::TLS13_AES_128_GCM_SHA256));
    assert_eq!(accepted.kx_group, Some(NamedGroup::secp256r1));

    // Both sides restricted to disjoint TLS 1.2 suites: no handshake.
    let rsa_only = server_tls(&GeneralSettings {
        server_tls_protocols: "tlsv1.2".to_string(),
        server_tls_ciphers: "ECDHE+aRSA".to_string(),
        ..pki.server_side(TlsMode::VerifyFull)
    });
    let ecdsa = client_tls(&pki.client_side(TlsMode::Require));
    assert!(!handshake(&ecdsa, &rsa_only, "localhost").await.ok());
}

#[tokio::test]
async fn a_certificate_chain_file_with_an_intermediate_verifies() {
    let dir = TempDir::new();
    let root = Ca::new("Root");
    // An intermediate CA signed by the root.
    let inter_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Intermediate");
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let inter_cert = params.signed_by(&inter_key, &root.cert, &root.key).unwrap();
    let inter = Ca {
        cert: inter_cert,
        key: inter_key,
    };
    let leaf = inter.issue("db", &["db.internal"], true);
    let chain = format!("{}{}", leaf.cert.pem(), inter.pem());
    let g = GeneralSettings {
        client_tls_sslmode: TlsMode::Require,
        client_tls_cert_file: Some(dir.write("chain.crt", &chain)),
        client_tls_key_file: Some(dir.write("leaf.key", &leaf.key.serialize_pem())),
        ..GeneralSettings::default()
    };
    let client = client_tls(&g);
    let server = server_tls(&GeneralSettings {
        server_tls_sslmode: TlsMode::VerifyFull,
        server_tls_ca_file: Some(dir.write("root.crt", &root.pem())),
        ..GeneralSettings::default()
    });
    assert!(handshake(&client, &server, "db.internal").await.ok());
}

#[test]
fn auth_type_cert_needs_verify_full_and_a_ca_file_as_in_pgbouncer() {
    let pki = Pki::new();
    let with_ca = |mode| GeneralSettings {
        auth_type: AuthType::Cert,
        client_tls_ca_file: Some(pki.ca.clone()),
        ..pki.client_side(mode)
    };
    for mode in [TlsMode::Disable, TlsMode::Require, TlsMode::VerifyCa] {
        let err = ClientTls::from_settings(&with_ca(mode)).unwrap_err();
        assert!(
            err.to_string()
                .contains("auth_type = cert requires client_tls_sslmode = verify-full"),
            "{err}"
        );
    }
    assert!(ClientTls::from_settings(&with_ca(TlsMode::VerifyFull)).is_ok());
    let err = ClientTls::from_settings(&GeneralSettings {
        client_tls_ca_file: None,
        ..with_ca(TlsMode::VerifyFull)
    })
    .unwrap_err();
    assert!(err.to_string().contains("client_tls_ca_file"), "{err}");
}
