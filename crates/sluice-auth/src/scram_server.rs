//! Server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802/7677, with
//! `tls-server-end-point` channel binding of RFC 5929, as PostgreSQL does it),
//! used to authenticate clients of the pooler.

use std::fmt;

use rand::RngCore;

use crate::scram::{self, Key, ScramError};
use crate::userlist::{ScramSecret, Secret};

/// The SASL mechanism name to offer in AuthenticationSASL.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// The channel-binding variant, offered (first) to clients over TLS.
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// The only channel-binding type supported, as in PostgreSQL.
const CBIND_TYPE: &[u8] = b"tls-server-end-point";

/// Iterations used when a SCRAM verifier is derived from a plaintext password
/// (PgBouncer's `scram_iterations` default).
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;

/// One SCRAM-SHA-256 exchange with one client.
///
/// Offer [`mechanisms`] in AuthenticationSASL, pass the mechanism the client
/// chose in SASLInitialResponse to [`set_mechanism`], feed it the
/// SASLInitialResponse data ([`handle_client_first`]) and then the
/// SASLResponse data ([`handle_client_final`]); send back what they return in
/// AuthenticationSASLContinue and AuthenticationSASLFinal. Any error ends the
/// exchange: later calls fail with [`ScramError::OutOfOrder`].
///
/// Over TLS, create it with [`with_channel_binding`]: SCRAM-SHA-256-PLUS is
/// then offered, and a client that picks plain SCRAM-SHA-256 while claiming
/// channel-binding support (gs2 flag `y`) is refused, as PostgreSQL does.
///
/// [`mechanisms`]: ScramServer::mechanisms
/// [`set_mechanism`]: ScramServer::set_mechanism
/// [`handle_client_first`]: ScramServer::handle_client_first
/// [`handle_client_final`]: ScramServer::handle_client_final
/// [`with_channel_binding`]: ScramServer::with_channel_binding
pub struct ScramServer {
    secret: ScramSecret,
    /// The `tls-server-end-point` hash of our certificate: the connection is
    /// TLS and SCRAM-SHA-256-PLUS is offered.
    end_point: Option<Vec<u8>>,
    /// The client selected SCRAM-SHA-256-PLUS.
    channel_binding: bool,
    state: State,
}

enum State {
    Initial,
    FirstSent {
        /// What the client must echo (base64) in `c=`: the GS2 header, plus
        /// the certificate hash with channel binding.
        cbind_input: Vec<u8>,
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
            end_point: None,
            channel_binding: false,
            state: State::Initial,
        })
    }

    /// Like [`ScramServer::new`], for a client connected over TLS:
    /// `end_point` is the `tls-server-end-point` hash (RFC 5929) of the
    /// certificate we presented. SCRAM-SHA-256-PLUS is then offered
    /// ([`ScramServer::mechanisms`]), and the client may select it
    /// ([`ScramServer::set_mechanism`]). An empty `end_point` is
    /// [`ScramError::NoChannelBindingData`].
    pub fn with_channel_binding(secret: &Secret, end_point: Vec<u8>) -> Result<Self, ScramError> {
        if end_point.is_empty() {
            return Err(ScramError::NoChannelBindingData);
        }
        let mut server = Self::new(secret)?;
        server.end_point = Some(end_point);
        Ok(server)
    }

    /// The SASL mechanisms to offer in AuthenticationSASL, in PostgreSQL's
    /// order: `SCRAM-SHA-256-PLUS` first when channel binding is possible.
    pub fn mechanisms(&self) -> &'static [&'static str] {
        if self.end_point.is_some() {
            &[SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
        } else {
            &[SCRAM_SHA_256]
        }
    }

    /// Tells the exchange which mechanism the client selected in
    /// SASLInitialResponse; call it before [`ScramServer::handle_client_first`].
    /// Without a call, plain SCRAM-SHA-256 is assumed. A mechanism that was
    /// not offered (SCRAM-SHA-256-PLUS without TLS, or any other name) is
    /// [`ScramError::InvalidMechanism`] and ends the exchange.
    pub fn set_mechanism(&mut self, mechanism: &str) -> Result<(), ScramError> {
        if !matches!(self.state, State::Initial) {
            self.state = State::Failed;
            return Err(ScramError::OutOfOrder);
        }
        match mechanism {
            SCRAM_SHA_256 => self.channel_binding = false,
            SCRAM_SHA_256_PLUS if self.end_point.is_some() => self.channel_binding = true,
            _ => {
                self.state = State::Failed;
                return Err(ScramError::InvalidMechanism);
            }
        }
        Ok(())
    }

    /// Whether the client selected SCRAM-SHA-256-PLUS (its successful login
    /// is then bound to this TLS connection).
    pub fn uses_channel_binding(&self) -> bool {
        self.channel_binding
    }

    /// The verifier this exchange checks against (for Plain secrets, the one
    /// derived in [`ScramServer::new`]).
    pub fn secret(&self) -> &ScramSecret {
        &self.secret
    }

    /// Takes the client-first-message (the SASLInitialResponse data) and
    /// returns the server-first-message. The user name in the message is
    /// ignored, as PostgreSQL ignores it.
    ///
    /// The GS2 header must fit the mechanism: with SCRAM-SHA-256-PLUS it is
    /// `p=tls-server-end-point` (another type is
    /// [`ScramError::UnsupportedChannelBindingType`]); with SCRAM-SHA-256 it
    /// is `n`, or `y` only when PLUS was not offered
    /// ([`ScramError::ChannelBindingNegotiation`] otherwise).
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
        } = parse_client_first(msg, self.end_point.is_some(), self.channel_binding)?;

        let mut nonce = client_nonce.to_vec();
        nonce.extend_from_slice(scram::random_nonce().as_bytes());
        let mut server_first = Vec::with_capacity(nonce.len() + 64);
        server_first.extend_from_slice(b"r=");
        server_first.extend_from_slice(&nonce);
        server_first.extend_from_slice(b",s=");
        server_first.extend_from_slice(scram::b64_encode(&self.secret.salt).as_bytes());
        server_first.extend_from_slice(format!(",i={}", self.secret.iterations).as_bytes());

        let mut cbind_input = gs2_header.to_vec();
        if self.channel_binding {
            if let Some(end_point) = &self.end_point {
                cbind_input.extend_from_slice(end_point);
            }
        }
        self.state = State::FirstSent {
            cbind_input,
            client_first_bare: bare.to_vec(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(server_first)
    }

    /// Takes the client-final-message, checks the channel-binding echo, the
    /// nonce and the proof, and returns the server-final-message (`v=...`).
    /// A wrong password is [`ScramError::InvalidProof`]; with
    /// SCRAM-SHA-256-PLUS, `c=` must be base64 of the GS2 header followed by
    /// our certificate hash, else [`ScramError::ChannelBindingMismatch`].
    pub fn handle_client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::FirstSent {
            cbind_input,
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
        // STANDARD base64 decoding is canonical (padding and trailing bits
        // checked), so comparing bytes is comparing the exact base64 text.
        if cbind != cbind_input {
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
            .field("plus_offered", &self.end_point.is_some())
            .field("channel_binding", &self.channel_binding)
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

/// Splits and checks a client-first-message. `plus_offered`: the connection
/// is TLS and SCRAM-SHA-256-PLUS was offered; `binding`: the client selected it.
fn parse_client_first(
    msg: &[u8],
    plus_offered: bool,
    binding: bool,
) -> Result<ClientFirst<'_>, ScramError> {
    // gs2-cbind-flag, checked in PostgreSQL's order.
    let after_flag = match msg.first() {
        Some(b'n' | b'y') if binding => {
            return Err(ScramError::Malformed(
                "SCRAM-SHA-256-PLUS selected, but the message has no channel-binding data",
            ))
        }
        // The client supports channel binding and thinks the server does not:
        // someone may have removed PLUS from our offer.
        Some(b'y') if plus_offered => return Err(ScramError::ChannelBindingNegotiation),
        Some(b'n' | b'y') => {
            if msg.get(1) != Some(&b',') {
                return Err(ScramError::Malformed(
                    "comma expected after channel-binding flag",
                ));
            }
            &msg[2..]
        }
        Some(b'p') if !plus_offered => return Err(ScramError::ChannelBindingUnsupported),
        Some(b'p') if !binding => {
            return Err(ScramError::Malformed(
                "SCRAM-SHA-256 selected, but the message includes channel-binding data",
            ))
        }
        Some(b'p') => {
            let end = msg
                .iter()
                .position(|&b| b == b',')
                .ok_or(ScramError::Malformed(
                    "comma expected after channel-binding flag",
                ))?;
            let cb_name = scram::attr(&msg[..end], b'p', "expected channel-binding type")?;
            if cb_name != CBIND_TYPE {
                return Err(ScramError::UnsupportedChannelBindingType);
            }
            &msg[end + 1..]
        }
        _ => return Err(ScramError::Malformed("unexpected channel-binding flag")),
    };
    // authzid
    match after_flag.first() {
        Some(b',') => {}
        Some(b'a') => return Err(ScramError::AuthzidUnsupported),
        _ => return Err(ScramError::Malformed("comma expected after GS2 header")),
    }
    let (gs2_header, bare) = msg.split_at(msg.len() - after_flag.len() + 1);
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
}
