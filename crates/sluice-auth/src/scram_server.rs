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
#[path = "scram_server_tests.rs"]
mod tests;
