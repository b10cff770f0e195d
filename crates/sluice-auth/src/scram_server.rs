//! Server side of SCRAM-SHA-256 (RFC 5802/7677 as PostgreSQL does it), used to authenticate clients of the pooler.

use std::fmt;

use rand::RngCore;

use crate::scram::{self, Key, ScramError};
use crate::userlist::{ScramSecret, Secret};

/// The SASL mechanism name to offer in AuthenticationSASL.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Iterations used when a SCRAM verifier is derived from a plaintext password
/// (PgBouncer's `scram_iterations` default).
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// One SCRAM-SHA-256 exchange with one client.
///
/// Feed it the SASLInitialResponse data ([`handle_client_first`]) and then the
/// SASLResponse data ([`handle_client_final`]); send back what they return in
/// AuthenticationSASLContinue and AuthenticationSASLFinal. Any error ends the
/// exchange: later calls fail with [`ScramError::OutOfOrder`].
///
/// [`handle_client_first`]: ScramServer::handle_client_first
/// [`handle_client_final`]: ScramServer::handle_client_final
pub struct ScramServer {
    secret: ScramSecret,
    state: State,
}

enum State {
    Initial,
    FirstSent {
        gs2_header: Vec<u8>,
        client_first_bare: Vec<u8>,
        server_first: Vec<u8>,
        nonce: Vec<u8>,
    },
    Done {
        client_key: Key,
    },
    Failed,
}

impl ScramServer {
    /// Starts an exchange for a user with this stored secret.
    ///
    /// A Plain password gets a verifier derived with a random 16-byte salt and
    /// 4096 iterations (as PgBouncer does); an Md5 secret cannot do SCRAM
    /// ([`ScramError::Md5Secret`]); an empty password is refused.
    pub fn new(secret: &Secret) -> Result<Self, ScramError> {
        Self::with_iterations(secret, DEFAULT_SCRAM_ITERATIONS)
    }

    /// Like [`ScramServer::new`], with the iteration count used for Plain
    /// secrets (PgBouncer's `scram_iterations`). Scram secrets keep their own.
    pub fn with_iterations(secret: &Secret, iterations: u32) -> Result<Self, ScramError> {
        let secret = match secret {
            Secret::Scram(s) => s.clone(),
            Secret::Plain(p) if p.is_empty() => return Err(ScramError::EmptyPassword),
            Secret::Plain(p) => {
                let mut salt = [0u8; 16];
                rand::thread_rng().fill_bytes(&mut salt);
                ScramSecret::from_password(p, &salt, iterations)
            }
            Secret::Md5(_) => return Err(ScramError::Md5Secret),
        };
        Ok(ScramServer {
            secret,
            state: State::Initial,
        })
    }

    /// The verifier this exchange checks against (for Plain secrets, the one
    /// derived in [`ScramServer::new`]).
    pub fn secret(&self) -> &ScramSecret {
        &self.secret
    }

    /// Takes the client-first-message (the SASLInitialResponse data) and
    /// returns the server-first-message. The user name in the message is
    /// ignored, as PostgreSQL ignores it.
    pub fn handle_client_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::Initial) {
            self.state = State::Failed;
            return Err(ScramError::OutOfOrder);
        }
        self.state = State::Failed;
        let ClientFirst {
            gs2_header,
            bare,
            nonce: client_nonce,
        } = parse_client_first(msg)?;

        let mut nonce = client_nonce.to_vec();
        nonce.extend_from_slice(scram::random_nonce().as_bytes());
        let mut server_first = Vec::with_capacity(nonce.len() + 64);
        server_first.extend_from_slice(b"r=");
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(b",s=");
        server_first.extend_from_slice(scram::b64_encode(&self.secret.salt).as_bytes());
        server_first.extend_from_slice(format!(",i={}", self.secret.iterations).as_bytes());

        self.state = State::FirstSent {
            gs2_header: gs2_header.to_vec(),
            client_first_bare: bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first)
    }

    /// Takes the client-final-message, checks the channel-binding echo, the
    /// nonce and the proof, and returns the server-final-message (`v=...`).
    /// A wrong password is [`ScramError::InvalidProof`].
    pub fn handle_client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::FirstSent {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
        } = std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(ScramError::OutOfOrder);
        };

        let parts: Vec<&[u8]> = msg.split(|&b| b == b',').collect();
        if parts.len() < 3 {
            return Err(ScramError::Malformed("client-final-message too short"));
        }
        let cbind = scram::attr(parts[0], b'c', "expected channel-binding attribute")?;
        let cbind = scram::b64_decode(cbind).ok_or(ScramError::Malformed(
            "channel-binding attribute is not base64",
        ))?;
        if cbind != gs2_header {
            return Err(ScramError::ChannelBindingMismatch);
        }
        let client_nonce = scram::attr(parts[1], b'r', "expected nonce attribute")?;
        if client_nonce != nonce.as_slice() {
            return Err(ScramError::NonceMismatch);
        }
        let last = parts.len() - 1;
        for ext in &parts[2..last] {
            scram::any_attr(ext)?;
        }
        let proof = scram::attr(parts[last], b'p', "expected proof attribute")?;
        let proof = scram::decode_key(proof, "proof is not a base64 32-byte value")?;
        let without_proof = &msg[..msg.len() - parts[last].len() - 1];

        let auth_message: [&[u8]; 5] =
            [&client_first_bare, b",", &server_first, b",", without_proof];
        let client_signature = scram::hmac_sha256(&self.secret.stored_key, &auth_message);
        let client_key = scram::xor(&proof, &client_signature);
        if !self.secret.stored_key_matches(&scram::sha256(&client_key)) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = scram::hmac_sha256(&self.secret.server_key, &auth_message);
        self.state = State::Done { client_key };
        Ok(format!("v={}", scram::b64_encode(&server_signature)).into_bytes())
    }

    /// After a successful exchange, the ClientKey recovered from the proof
    /// (ClientProof XOR ClientSignature). With [`ScramServer::secret`] it lets
    /// the pooler log in to a server that stores the same SCRAM secret
    /// (PgBouncer's SCRAM pass-through), see
    /// [`ScramClient::from_client_key`](crate::ScramClient::from_client_key).
    /// Only useful when the user's secret was a Scram one: for a Plain secret
    /// the salt here is random and no server will share it.
    pub fn client_key(&self) -> Option<[u8; 32]> {
        match self.state {
            State::Done { client_key } => Some(client_key),
            _ => None,
        }
    }

    /// Whether the exchange completed successfully.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Initial => "Initial",
            State::FirstSent { .. } => "FirstSent",
            State::Done { .. } => "Done",
            State::Failed => "Failed",
        };
        f.debug_struct("ScramServer")
            .field("secret", &self.secret)
            .field("state", &state)
            .finish()
    }
}

/// The parts of a client-first-message that the exchange needs.
struct ClientFirst<'a> {
    gs2_header: &'a [u8],
    bare: &'a [u8],
    nonce: &'a [u8],
}

/// Splits and checks a client-first-message.
fn parse_client_first(msg: &[u8]) -> Result<ClientFirst<'_>, ScramError> {
    // gs2-cbind-flag
    match msg.first() {
        Some(b'n' | b'y') => {}
        Some(b'p') => return Err(ScramError::ChannelBindingUnsupported),
        _ => return Err(ScramError::Malformed("unexpected channel-binding flag")),
    }
    if msg.get(1) != Some(&b',') {
        return Err(ScramError::Malformed(
            "comma expected after channel-binding flag",
        ));
    }
    // authzid
    match msg.get(2) {
        Some(b',') => {}
        Some(b'a') => return Err(ScramError::AuthzidUnsupported),
        _ => return Err(ScramError::Malformed("comma expected after GS2 header")),
    }
    let (gs2_header, bare) = msg.split_at(3);
    if bare.starts_with(b"m=") {
        return Err(ScramError::UnsupportedExtension);
    }
    let mut parts = bare.split(|&b| b == b',');
    // The user name is ignored: the startup packet's user counts.
    scram::attr(
        parts.next().unwrap_or_default(),
        b'n',
        "expected username attribute",
    )?;
    let nonce = scram::attr(
        parts.next().unwrap_or_default(),
        b'r',
        "expected nonce attribute",
    )?;
    if !scram::is_printable_nonce(nonce) {
        return Err(ScramError::Malformed("invalid characters in nonce"));
    }
    for ext in parts {
        scram::any_attr(ext)?;
    }
    Ok(ClientFirst {
        gs2_header,
        bare,
        nonce,
    })
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn with_iterations_applies_to_plain_only() {
        let s = ScramServer::with_iterations(&Secret::Plain("pw".into()), 10).expect("server");
        assert_eq!(s.secret().iterations, 10);
        let s = ScramServer::with_iterations(&pg_secret(PG_X_PW), 10).expect("server");
        assert_eq!(s.secret().iterations, 4096);
    }
}
