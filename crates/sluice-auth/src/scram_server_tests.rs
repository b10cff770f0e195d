//! Tests of the server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS.
use super::*;
use crate::scram_client::ScramClient;
use crate::test_vectors::{PG_UNICODE_PW, PG_X_PW};
use crate::verify_plain_password;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

fn exchange(client: &mut ScramClient, server: &mut ScramServer) -> Result<(), ScramError> {
    let first = client.client_first();
    let server_first = server.handle_client_first(&first)?;
    let client_final = client.handle_server_first(&server_first)?;
    let server_final = server.handle_client_final(&client_final)?;
    client.handle_server_final(&server_final)
}

fn pg_secret(s: &str) -> Secret {
    Secret::parse(s).expect("PostgreSQL verifier parses")
}

#[test]
fn round_trip_plain_secret() {
    let mut server = ScramServer::new(&Secret::Plain("s3cret".into())).expect("server");
    assert_eq!(server.secret().iterations, 4096);
    assert_eq!(server.secret().salt.len(), 16);
    let mut client = ScramClient::from_password("s3cret");
    exchange(&mut client, &mut server).expect("authenticates");
    assert!(server.is_done());
    assert!(server.client_key().is_some());
}

#[test]
fn round_trip_derived_scram_secret() {
    let secret = Secret::Scram(ScramSecret::from_password(
        "s3cret",
        b"0123456789abcdef",
        4096,
    ));
    let mut server = ScramServer::new(&secret).expect("server");
    let mut client = ScramClient::from_password("s3cret");
    exchange(&mut client, &mut server).expect("authenticates");
}

#[test]
fn wrong_password_fails() {
    for secret in [
        Secret::Plain("s3cret".into()),
        Secret::Scram(ScramSecret::from_password("s3cret", b"salt", 4096)),
        pg_secret(PG_X_PW),
    ] {
        let mut server = ScramServer::new(&secret).expect("server");
        let mut client = ScramClient::from_password("wrong");
        assert_eq!(
            exchange(&mut client, &mut server),
            Err(ScramError::InvalidProof)
        );
        assert_eq!(server.client_key(), None);
        // The exchange is over.
        assert_eq!(
            server.handle_client_final(b"c=biws,r=x,p=x"),
            Err(ScramError::OutOfOrder)
        );
    }
}

#[test]
fn postgres_verifier_round_trip() {
    let secret = pg_secret(PG_X_PW);
    assert!(verify_plain_password(&secret, "x", "pw"));
    let mut server = ScramServer::new(&secret).expect("server");
    let mut client = ScramClient::from_password("pw");
    exchange(&mut client, &mut server).expect("authenticates");

    // Non-ASCII password, SASLprep'd on both sides.
    let secret = pg_secret(PG_UNICODE_PW);
    let mut server = ScramServer::new(&secret).expect("server");
    let mut client = ScramClient::from_password("pässwörd \u{fb01}");
    exchange(&mut client, &mut server).expect("authenticates");
}

#[test]
fn postgres_protocol_client_interop() {
    let mut server = ScramServer::new(&pg_secret(PG_X_PW)).expect("server");
    let mut client = ScramSha256::new(b"pw", ChannelBinding::unsupported());
    let server_first = server
        .handle_client_first(client.message())
        .expect("client-first");
    client.update(&server_first).expect("server-first");
    let server_final = server
        .handle_client_final(client.message())
        .expect("client-final");
    client.finish(&server_final).expect("server-final");

    // "y,," when the client supports channel binding but we offer none.
    let mut server = ScramServer::new(&Secret::Plain("pw".into())).expect("server");
    let mut client = ScramSha256::new(b"pw", ChannelBinding::unrequested());
    assert!(client.message().starts_with(b"y,,"));
    let server_first = server
        .handle_client_first(client.message())
        .expect("client-first");
    client.update(&server_first).expect("server-first");
    let server_final = server
        .handle_client_final(client.message())
        .expect("client-final");
    client.finish(&server_final).expect("server-final");
}

#[test]
fn pass_through_client_key() {
    let secret = pg_secret(PG_X_PW);
    let Secret::Scram(scram_secret) = &secret else {
        unreachable!("PG_X_PW is a SCRAM verifier");
    };
    // A client logs in to the pooler with the password...
    let mut front = ScramServer::new(&secret).expect("server");
    let mut client = ScramClient::from_password("pw");
    exchange(&mut client, &mut front).expect("client authenticates");
    let client_key = front.client_key().expect("client key after success");
    // ...and the pooler logs in to a server with the same secret, no password.
    let mut back = ScramServer::new(&secret).expect("server");
    let mut pooler = ScramClient::from_client_key(client_key, front.secret());
    exchange(&mut pooler, &mut back).expect("pass-through authenticates");
    assert_eq!(front.secret(), scram_secret);
}

#[test]
fn first_message_grammar() {
    let plain = Secret::Plain("pw".into());
    let cases: &[(&[u8], ScramError)] = &[
        (
            b"p=tls-server-end-point,,n=,r=abc",
            ScramError::ChannelBindingUnsupported,
        ),
        (b"n,a=someone,n=,r=abc", ScramError::AuthzidUnsupported),
        (b"n,,m=ext,n=,r=abc", ScramError::UnsupportedExtension),
        (
            b"x,,n=,r=abc",
            ScramError::Malformed("unexpected channel-binding flag"),
        ),
        (
            b"",
            ScramError::Malformed("unexpected channel-binding flag"),
        ),
        (
            b"n",
            ScramError::Malformed("comma expected after channel-binding flag"),
        ),
        (
            b"n,",
            ScramError::Malformed("comma expected after GS2 header"),
        ),
        (b"n,,", ScramError::Malformed("expected username attribute")),
        (b"n,,n=", ScramError::Malformed("expected nonce attribute")),
        (
            b"n,,n=,r=",
            ScramError::Malformed("invalid characters in nonce"),
        ),
        (
            b"n,,n=,r=a\x01b",
            ScramError::Malformed("invalid characters in nonce"),
        ),
        (
            b"n,,r=abc,n=",
            ScramError::Malformed("expected username attribute"),
        ),
        (
            b"n,,n=,r=abc,junk",
            ScramError::Malformed("attribute expected"),
        ),
    ];
    for (msg, err) in cases {
        let mut server = ScramServer::new(&plain).expect("server");
        assert_eq!(
            server.handle_client_first(msg).as_ref(),
            Err(err),
            "{}",
            String::from_utf8_lossy(msg)
        );
        assert_eq!(
            server.handle_client_first(b"n,,n=,r=abc"),
            Err(ScramError::OutOfOrder)
        );
    }
    // Accepted: any (even non-UTF-8) user name, extensions after the nonce.
    let mut server = ScramServer::new(&plain).expect("server");
    let first = server
        .handle_client_first(b"n,,n=\xff=2C,r=abc,x=ext")
        .expect("accepted");
    assert!(first.starts_with(b"r=abc"));
    assert_eq!(
        first.len(),
        "r=abc".len() + 24 + ",s=".len() + 24 + ",i=4096".len()
    );
}

#[test]
fn final_message_checks() {
    let plain = Secret::Plain("pw".into());
    let start = |gs2: &str| {
        let mut server = ScramServer::new(&plain).expect("server");
        let first = server
            .handle_client_first(format!("{gs2}n=,r=abc").as_bytes())
            .expect("first");
        let nonce = String::from_utf8(
            first[2..first.iter().position(|&b| b == b',').unwrap_or(2)].to_vec(),
        )
        .expect("ascii nonce");
        (server, nonce)
    };
    let proof = scram::b64_encode(&[0u8; 32]);

    let (mut s, nonce) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=eSws,r={nonce},p={proof}").as_bytes()),
        Err(ScramError::ChannelBindingMismatch)
    );
    let (mut s, nonce) = start("y,,");
    assert_eq!(
        s.handle_client_final(format!("c=biws,r={nonce},p={proof}").as_bytes()),
        Err(ScramError::ChannelBindingMismatch)
    );
    let (mut s, nonce) = start("y,,");
    assert_eq!(
        s.handle_client_final(format!("c=eSws,r={nonce},p={proof}").as_bytes()),
        Err(ScramError::InvalidProof)
    );
    let (mut s, nonce) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=biws,r={nonce}x,p={proof}").as_bytes()),
        Err(ScramError::NonceMismatch)
    );
    let (mut s, _) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=biws,r=abc,p={proof}").as_bytes()),
        Err(ScramError::NonceMismatch)
    );
    let (mut s, nonce) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=biws,r={nonce},p=AAAA").as_bytes()),
        Err(ScramError::Malformed("proof is not a base64 32-byte value"))
    );
    let (mut s, nonce) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=biws,r={nonce}").as_bytes()),
        Err(ScramError::Malformed("client-final-message too short"))
    );
    let (mut s, nonce) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=biws,r={nonce},p={proof},x=1").as_bytes()),
        Err(ScramError::Malformed("expected proof attribute"))
    );
    let (mut s, nonce) = start("n,,");
    assert_eq!(
        s.handle_client_final(format!("c=!!,r={nonce},p={proof}").as_bytes()),
        Err(ScramError::Malformed(
            "channel-binding attribute is not base64"
        ))
    );
    let mut s = ScramServer::new(&plain).expect("server");
    assert_eq!(
        s.handle_client_final(b"c=biws,r=abc,p=x"),
        Err(ScramError::OutOfOrder)
    );
}

#[test]
fn md5_and_empty_secrets_cannot_do_scram() {
    assert_eq!(
        ScramServer::new(&Secret::Md5("md553f48b7c4b76a86ce72276c5755f217d".into())).err(),
        Some(ScramError::Md5Secret)
    );
    assert_eq!(
        ScramServer::new(&Secret::Plain(String::new())).err(),
        Some(ScramError::EmptyPassword)
    );
}

/// Stands in for the `tls-server-end-point` hash of our certificate.
fn end_point() -> Vec<u8> {
    scram::sha256(b"our certificate").to_vec()
}

fn tls_server(secret: &Secret, mechanism: &str) -> ScramServer {
    let mut server =
        ScramServer::with_channel_binding(secret, end_point()).expect("server over TLS");
    server.set_mechanism(mechanism).expect("mechanism offered");
    server
}

/// Builds a client-final-message by hand for `password`, echoing `cbind`
/// (already base64) in `c=`.
fn hand_final(password: &str, bare: &[u8], server_first: &[u8], cbind: &str) -> Vec<u8> {
    let text = std::str::from_utf8(server_first).expect("ascii server-first");
    let mut attrs = text.split(',');
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).expect("r=");
    let salt = attrs.next().and_then(|a| a.strip_prefix("s=")).expect("s=");
    let salt = scram::b64_decode(salt.as_bytes()).expect("salt");
    let iterations = attrs.next().and_then(|a| a.strip_prefix("i=")).expect("i=");
    let iterations: u32 = iterations.parse().expect("iterations");
    let salted = scram::salted_password(password, &salt, iterations);
    let client_key = scram::client_key(&salted);
    let without_proof = format!("c={cbind},r={nonce}");
    let auth_message: [&[u8]; 5] = [bare, b",", server_first, b",", without_proof.as_bytes()];
    let signature = scram::hmac_sha256(&scram::sha256(&client_key), &auth_message);
    let proof = scram::xor(&client_key, &signature);
    format!("{without_proof},p={}", scram::b64_encode(&proof)).into_bytes()
}

#[test]
fn mechanisms_offered() {
    let plain = Secret::Plain("pw".into());
    let server = ScramServer::new(&plain).expect("server");
    assert_eq!(server.mechanisms(), &[SCRAM_SHA_256]);
    assert!(!server.uses_channel_binding());
    let server = ScramServer::with_channel_binding(&plain, end_point()).expect("server");
    assert_eq!(server.mechanisms(), &[SCRAM_SHA_256_PLUS, SCRAM_SHA_256]);
    assert!(!server.uses_channel_binding());
    assert_eq!(SCRAM_SHA_256_PLUS, "SCRAM-SHA-256-PLUS");
}

#[test]
fn plus_round_trip() {
    for secret in [pg_secret(PG_X_PW), Secret::Plain("pw".into())] {
        let mut server = ScramServer::with_channel_binding(&secret, end_point()).expect("s");
        let mut client = ScramClient::from_password("pw").with_channel_binding(end_point());
        assert_eq!(client.mechanism(), SCRAM_SHA_256_PLUS);
        server
            .set_mechanism(client.mechanism())
            .expect("PLUS offered");
        assert!(server.uses_channel_binding());
        exchange(&mut client, &mut server).expect("authenticates with channel binding");
        assert!(server.is_done());
        assert!(client.is_done());
        assert!(server.client_key().is_some());
    }
}

#[test]
fn plus_hand_built_messages() {
    let secret = Secret::Scram(ScramSecret::from_password("pw", b"0123456789abcdef", 4096));
    let bare = b"n=,r=clientnonce";
    let first = [&b"p=tls-server-end-point,,"[..], bare].concat();
    // c= is base64 of the GS2 header followed by the certificate hash.
    let mut cbind_input = b"p=tls-server-end-point,,".to_vec();
    cbind_input.extend_from_slice(&end_point());
    let good = scram::b64_encode(&cbind_input);

    let mut server = tls_server(&secret, SCRAM_SHA_256_PLUS);
    let server_first = server.handle_client_first(&first).expect("first");
    let fin = hand_final("pw", bare, &server_first, &good);
    let server_final = server.handle_client_final(&fin).expect("final");
    assert!(server_final.starts_with(b"v="));
    assert!(server.is_done());

    // Right proof, wrong binding: hash of another certificate (a man in
    // the middle's), the header alone, the non-PLUS echoes, or the hash
    // with a trailing byte.
    let mut longer = cbind_input.clone();
    longer.push(0);
    let other = [
        &b"p=tls-server-end-point,,"[..],
        &scram::sha256(b"mitm certificate"),
    ]
    .concat();
    for cbind in [
        scram::b64_encode(&other),
        scram::b64_encode(b"p=tls-server-end-point,,"),
        "biws".to_owned(),
        "eSws".to_owned(),
        scram::b64_encode(&longer),
        scram::b64_encode(&cbind_input[..cbind_input.len() - 1]),
    ] {
        let mut server = tls_server(&secret, SCRAM_SHA_256_PLUS);
        let server_first = server.handle_client_first(&first).expect("first");
        let fin = hand_final("pw", bare, &server_first, &cbind);
        assert_eq!(
            server.handle_client_final(&fin),
            Err(ScramError::ChannelBindingMismatch),
            "{cbind}"
        );
        assert!(!server.is_done());
        assert_eq!(server.client_key(), None);
    }
}

#[test]
fn plus_wrong_binding_data_rejected() {
    // The client saw another certificate than ours (TLS terminated by
    // someone else): its binding data cannot match.
    let mut server = tls_server(&pg_secret(PG_X_PW), SCRAM_SHA_256_PLUS);
    let mut client = ScramClient::from_password("pw")
        .with_channel_binding(scram::sha256(b"mitm certificate").to_vec());
    assert_eq!(
        exchange(&mut client, &mut server),
        Err(ScramError::ChannelBindingMismatch)
    );
    assert!(!server.is_done());
    assert_eq!(
        server.handle_client_final(b"c=biws,r=x,p=x"),
        Err(ScramError::OutOfOrder)
    );
}

#[test]
fn plus_postgres_protocol_client_interop() {
    // tokio-postgres' SCRAM client with tls-server-end-point binding.
    let mut server = tls_server(&pg_secret(PG_X_PW), SCRAM_SHA_256_PLUS);
    let mut client = ScramSha256::new(b"pw", ChannelBinding::tls_server_end_point(end_point()));
    assert!(client
        .message()
        .starts_with(b"p=tls-server-end-point,,n=,r="));
    let server_first = server
        .handle_client_first(client.message())
        .expect("client-first");
    client.update(&server_first).expect("server-first");
    let server_final = server
        .handle_client_final(client.message())
        .expect("client-final");
    client.finish(&server_final).expect("server-final");

    // Same client, other certificate hash.
    let mut server = tls_server(&pg_secret(PG_X_PW), SCRAM_SHA_256_PLUS);
    let mut client = ScramSha256::new(
        b"pw",
        ChannelBinding::tls_server_end_point(scram::sha256(b"other").to_vec()),
    );
    let server_first = server
        .handle_client_first(client.message())
        .expect("client-first");
    client.update(&server_first).expect("server-first");
    assert_eq!(
        server.handle_client_final(client.message()),
        Err(ScramError::ChannelBindingMismatch)
    );
}

#[test]
fn y_flag_rejected_when_plus_offered() {
    let secret = pg_secret(PG_X_PW);
    // Client picked plain SCRAM-SHA-256 but says it supports binding and
    // believes we do not: PLUS was stripped from our offer on the way.
    let mut server = tls_server(&secret, SCRAM_SHA_256);
    let client = ScramSha256::new(b"pw", ChannelBinding::unrequested());
    assert!(client.message().starts_with(b"y,,"));
    assert_eq!(
        server.handle_client_first(client.message()),
        Err(ScramError::ChannelBindingNegotiation)
    );
    assert_eq!(
        server.handle_client_final(b"c=eSws,r=x,p=x"),
        Err(ScramError::OutOfOrder)
    );
    // Also when set_mechanism was never called (plain is the default).
    let mut server = ScramServer::with_channel_binding(&secret, end_point()).expect("s");
    assert_eq!(
        server.handle_client_first(b"y,,n=,r=abc"),
        Err(ScramError::ChannelBindingNegotiation)
    );
    // `y` or `n` with PLUS selected: no binding data, malformed.
    for msg in [&b"y,,n=,r=abc"[..], b"n,,n=,r=abc"] {
        let mut server = tls_server(&secret, SCRAM_SHA_256_PLUS);
        assert_eq!(
            server.handle_client_first(msg),
            Err(ScramError::Malformed(
                "SCRAM-SHA-256-PLUS selected, but the message has no channel-binding data"
            ))
        );
    }
    // Without TLS, `y` is fine (covered by postgres_protocol_client_interop);
    // over TLS, `n` is fine.
    let mut server = tls_server(&secret, SCRAM_SHA_256);
    let mut client = ScramClient::from_password("pw");
    assert_eq!(client.mechanism(), SCRAM_SHA_256);
    exchange(&mut client, &mut server).expect("n,, over TLS");
    let mut server = tls_server(&secret, SCRAM_SHA_256);
    let mut client = ScramSha256::new(b"pw", ChannelBinding::unsupported());
    let server_first = server
        .handle_client_first(client.message())
        .expect("client-first");
    client.update(&server_first).expect("server-first");
    let server_final = server
        .handle_client_final(client.message())
        .expect("client-final");
    client.finish(&server_final).expect("server-final");
}

#[test]
fn channel_binding_type_and_header_checks() {
    let plain = Secret::Plain("pw".into());
    let cases: &[(&[u8], ScramError)] = &[
        (
            b"p=tls-unique,,n=,r=abc",
            ScramError::UnsupportedChannelBindingType,
        ),
        (
            b"p=tls-exporter,,n=,r=abc",
            ScramError::UnsupportedChannelBindingType,
        ),
        (
            b"p=tls-server-end-pointx,,n=,r=abc",
            ScramError::UnsupportedChannelBindingType,
        ),
        (b"p=,,n=,r=abc", ScramError::UnsupportedChannelBindingType),
        (
            b"p,,n=,r=abc",
            ScramError::Malformed("expected channel-binding type"),
        ),
        (
            b"p=tls-server-end-point",
            ScramError::Malformed("comma expected after channel-binding flag"),
        ),
        (
            b"p=tls-server-end-point,",
            ScramError::Malformed("comma expected after GS2 header"),
        ),
        (
            b"p=tls-server-end-point,a=bob,n=,r=abc",
            ScramError::AuthzidUnsupported,
        ),
        (
            b"p=tls-server-end-point,,m=x,n=,r=abc",
            ScramError::UnsupportedExtension,
        ),
        (
            b"p=tls-server-end-point,,n=,r=",
            ScramError::Malformed("invalid characters in nonce"),
        ),
    ];
    for (msg, err) in cases {
        let mut server = tls_server(&plain, SCRAM_SHA_256_PLUS);
        assert_eq!(
            server.handle_client_first(msg).as_ref(),
            Err(err),
            "{}",
            String::from_utf8_lossy(msg)
        );
    }
    // Binding data with plain SCRAM-SHA-256 over TLS...
    let mut server = tls_server(&plain, SCRAM_SHA_256);
    assert_eq!(
        server.handle_client_first(b"p=tls-server-end-point,,n=,r=abc"),
        Err(ScramError::Malformed(
            "SCRAM-SHA-256 selected, but the message includes channel-binding data"
        ))
    );
    // ...and without TLS.
    let mut server = ScramServer::new(&plain).expect("server");
    server.set_mechanism(SCRAM_SHA_256).expect("plain offered");
    assert_eq!(
        server.handle_client_first(b"p=tls-server-end-point,,n=,r=abc"),
        Err(ScramError::ChannelBindingUnsupported)
    );
    // The GS2 header (with the cb-name) is kept whole for the echo.
    let mut server = tls_server(&plain, SCRAM_SHA_256_PLUS);
    let first = server
        .handle_client_first(b"p=tls-server-end-point,,n=,r=abc,x=ext")
        .expect("accepted");
    assert!(first.starts_with(b"r=abc"));
}

#[test]
fn mechanism_selection() {
    let plain = Secret::Plain("pw".into());
    // PLUS is not offered without TLS.
    let mut server = ScramServer::new(&plain).expect("server");
    assert_eq!(
        server.set_mechanism(SCRAM_SHA_256_PLUS),
        Err(ScramError::InvalidMechanism)
    );
    assert_eq!(
        server.handle_client_first(b"n,,n=,r=abc"),
        Err(ScramError::OutOfOrder)
    );
    for mech in ["SCRAM-SHA-1", "scram-sha-256", "", "SCRAM-SHA-256-PLUS "] {
        let mut server = ScramServer::with_channel_binding(&plain, end_point()).expect("s");
        assert_eq!(
            server.set_mechanism(mech),
            Err(ScramError::InvalidMechanism),
            "{mech:?}"
        );
    }
    // Too late once the exchange started.
    let mut server = tls_server(&plain, SCRAM_SHA_256);
    server
        .handle_client_first(b"n,,n=,r=abc")
        .expect("client-first");
    assert_eq!(
        server.set_mechanism(SCRAM_SHA_256_PLUS),
        Err(ScramError::OutOfOrder)
    );
    // The last choice before the exchange counts.
    let mut server = tls_server(&plain, SCRAM_SHA_256_PLUS);
    server.set_mechanism(SCRAM_SHA_256).expect("plain");
    assert!(!server.uses_channel_binding());
    // Constructor checks.
    assert_eq!(
        ScramServer::with_channel_binding(&plain, Vec::new()).err(),
        Some(ScramError::NoChannelBindingData)
    );
    assert_eq!(
        ScramServer::with_channel_binding(
            &Secret::Md5("md553f48b7c4b76a86ce72276c5755f217d".into()),
            end_point()
        )
        .err(),
        Some(ScramError::Md5Secret)
    );
    let debug = format!("{:?}", tls_server(&plain, SCRAM_SHA_256_PLUS));
    assert!(debug.contains("plus_offered: true"), "{debug}");
    assert!(debug.contains("channel_binding: true"), "{debug}");
}

#[test]
fn with_iterations_applies_to_plain_only() {
    let s = ScramServer::with_iterations(&Secret::Plain("pw".into()), 10).expect("server");
    assert_eq!(s.secret().iterations, 10);
    let s = ScramServer::with_iterations(&pg_secret(PG_X_PW), 10).expect("server");
    assert_eq!(s.secret().iterations, 4096);
}
