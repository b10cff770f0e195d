//! Client side of SCRAM-SHA-256 (and SCRAM-SHA-256-PLUS with `tls-server-end-point` channel binding), used by the pooler to log in to PostgreSQL servers with a password or a passed-through ClientKey.

use std::fmt;

use crate::scram::{self, Key, ScramError};
use crate::userlist::ScramSecret;

/// GS2 header we send without channel binding: "n,,", no authzid.
const GS2_HEADER: &[u8] = b"n,,";
/// GS2 header we send with channel binding, no authzid.
const GS2_HEADER_PLUS: &[u8] = b"p=tls-server-end-point,,";

/// One SCRAM-SHA-256 login to a server.
///
/// Send [`client_first`] in SASLInitialResponse (mechanism
/// [`SCRAM_SHA_256`](crate::SCRAM_SHA_256)), pass AuthenticationSASLContinue
/// data to [`handle_server_first`] and send its result in SASLResponse, then
/// check AuthenticationSASLFinal data with [`handle_server_final`]. Only
/// after that succeeds has the server proven it knows the secret.
///
/// [`client_first`]: ScramClient::client_first
/// [`handle_server_first`]: ScramClient::handle_server_first
/// [`handle_server_final`]: ScramClient::handle_server_final
pub struct ScramClient {
    keys: KeySource,
    /// The server certificate's `tls-server-end-point` hash, with channel binding.
    end_point: Option<Vec<u8>>,
    client_nonce: String,
    client_first_bare: String,
    state: State,
}

enum KeySource {
    /// SASLprep'd password.
    Password(String),
    /// Pass-through: a ClientKey and the verifier it belongs to.
    ClientKey {
        client_key: Key,
        secret: ScramSecret,
    },
}

enum State {
    Initial,
    FirstSent,
    FinalSent { server_signature: Key },
    Done,
    Failed,
}

impl ScramClient {
    fn new(keys: KeySource) -> Self {
        let client_nonce = scram::random_nonce();
        ScramClient {
            keys,
            end_point: None,
            // The user name is left empty, as libpq does: the server takes it
            // from the startup packet.
            client_first_bare: format!("n=,r={client_nonce}"),
            client_nonce,
            state: State::Initial,
        }
    }

    /// Logs in with a plaintext password (SASLprep'd; the raw text is used if
    /// SASLprep fails, as PostgreSQL does).
    pub fn from_password(password: &str) -> Self {
        Self::new(KeySource::Password(
            scram::saslprep_password(password).into_owned(),
        ))
    }

    /// Pass-through login without a plaintext password: `client_key` was
    /// recovered by [`ScramServer::client_key`](crate::ScramServer::client_key)
    /// from a client's proof, `secret` is the user's stored SCRAM verifier. The
    /// server must store the same verifier (same salt and iterations).
    pub fn from_client_key(client_key: [u8; 32], secret: &ScramSecret) -> Self {
        Self::new(KeySource::ClientKey {
            client_key,
            secret: secret.clone(),
        })
    }

    /// Uses SCRAM-SHA-256-PLUS with `tls-server-end-point` channel binding:
    /// `end_point` is the hash of the certificate the server presented on
    /// this TLS connection (RFC 5929). Select [`ScramClient::mechanism`] in
    /// SASLInitialResponse.
    pub fn with_channel_binding(mut self, end_point: Vec<u8>) -> Self {
        self.end_point = Some(end_point);
        self
    }

    /// The SASL mechanism to select in SASLInitialResponse:
    /// [`SCRAM_SHA_256_PLUS`](crate::SCRAM_SHA_256_PLUS) with channel binding,
    /// else [`SCRAM_SHA_256`](crate::SCRAM_SHA_256).
    pub fn mechanism(&self) -> &'static str {
        if self.end_point.is_some() {
            crate::scram_server::SCRAM_SHA_256_PLUS
        } else {
            crate::scram_server::SCRAM_SHA_256
        }
    }

    fn gs2_header(&self) -> &'static [u8] {
        if self.end_point.is_some() {
            GS2_HEADER_PLUS
        } else {
            GS2_HEADER
        }
    }

    /// The client-first-message: data for SASLInitialResponse.
    pub fn client_first(&mut self) -> Vec<u8> {
        self.state = State::FirstSent;
        let mut msg = self.gs2_header().to_vec();
        msg.extend_from_slice(self.client_first_bare.as_bytes());
        msg
    }

    /// Takes the server-first-message (AuthenticationSASLContinue data) and
    /// returns the client-final-message for SASLResponse. For a pass-through
    /// client, the server's salt and iteration count must match the stored
    /// secret ([`ScramError::SecretMismatch`] otherwise).
    pub fn handle_server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, ScramError> {
        if !matches!(
            std::mem::replace(&mut self.state, State::Failed),
            State::FirstSent
        ) {
            return Err(ScramError::OutOfOrder);
        }
        if data.starts_with(b"m=") {
            return Err(ScramError::UnsupportedExtension);
        }
        let mut parts = data.split(|&b| b == b',');
        let nonce = scram::attr(
            parts.next().unwrap_or_default(),
            b'r',
            "expected nonce attribute",
        )?;
        let salt = scram::attr(
            parts.next().unwrap_or_default(),
            b's',
            "expected salt attribute",
        )?;
        let iterations = scram::attr(
            parts.next().unwrap_or_default(),
            b'i',
            "expected iteration count attribute",
        )?;
        for ext in parts {
            scram::any_attr(ext)?;
        }

        let client_nonce = self.client_nonce.as_bytes();
        if !scram::is_printable_nonce(nonce) {
            return Err(ScramError::Malformed("invalid characters in nonce"));
        }
        if nonce.len() <= client_nonce.len() || !nonce.starts_with(client_nonce) {
            return Err(ScramError::NonceMismatch);
        }
        let salt = scram::b64_decode(salt).ok_or(ScramError::Malformed("salt is not base64"))?;
        let iterations = parse_iterations(iterations)?;

        let (client_key, stored_key, server_key) = match &self.keys {
            KeySource::Password(password) => {
                let salted = scram::salted_password(password, &salt, iterations);
                let client_key = scram::client_key(&salted);
                (
                    client_key,
                    scram::sha256(&client_key),
                    scram::server_key(&salted),
                )
            }
            KeySource::ClientKey { client_key, secret } => {
                if secret.iterations != iterations || !scram::ct_eq(&secret.salt, &salt) {
                    return Err(ScramError::SecretMismatch);
                }
                if !secret.stored_key_matches(&scram::sha256(client_key)) {
                    return Err(ScramError::ClientKeyMismatch);
                }
                (*client_key, secret.stored_key, secret.server_key)
            }
        };

        let mut cbind_input = self.gs2_header().to_vec();
        if let Some(end_point) = &self.end_point {
            cbind_input.extend_from_slice(end_point);
        }
        let mut client_final = format!("c={},r=", scram::b64_encode(&cbind_input)).into_bytes();
        client_final.extend_from_slice(nonce);
        let auth_message: [&[u8]; 5] = [
            self.client_first_bare.as_bytes(),
            b",",
            data,
            b",",
            &client_final,
        ];
        let client_signature = scram::hmac_sha256(&stored_key, &auth_message);
        let server_signature = scram::hmac_sha256(&server_key, &auth_message);
        let proof = scram::xor(&client_key, &client_signature);
        client_final.extend_from_slice(b",p=");
        client_final.extend_from_slice(scram::b64_encode(&proof).as_bytes());

        self.state = State::FinalSent { server_signature };
        Ok(client_final)
    }

    /// Checks the server-final-message (AuthenticationSASLFinal data): the
    /// server's signature must match, else [`ScramError::InvalidServerSignature`];
    /// `e=...` is [`ScramError::ServerError`].
    pub fn handle_server_final(&mut self, data: &[u8]) -> Result<(), ScramError> {
        let State::FinalSent { server_signature } =
            std::mem::replace(&mut self.state, State::Failed)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let first = data.split(|&b| b == b',').next().unwrap_or_default();
        if let Ok(reason) = scram::attr(first, b'e', "") {
            return Err(ScramError::ServerError(scram::sanitize(reason)));
        }
        let verifier = scram::attr(first, b'v', "expected verifier attribute")?;
        let verifier = scram::decode_key(verifier, "verifier is not a base64 32-byte value")?;
        if !scram::ct_eq(&verifier, &server_signature) {
            return Err(ScramError::InvalidServerSignature);
        }
        self.state = State::Done;
        Ok(())
    }

    /// Whether the server has been verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

fn parse_iterations(value: &[u8]) -> Result<u32, ScramError> {
    const BAD: ScramError = ScramError::Malformed("invalid iteration count");
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(BAD);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|&i| i > 0)
        .ok_or(BAD)
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match self.keys {
            KeySource::Password(_) => "Password(<redacted>)",
            KeySource::ClientKey { .. } => "ClientKey(<redacted>)",
        };
        let state = match self.state {
            State::Initial => "Initial",
            State::FirstSent => "FirstSent",
            State::FinalSent { .. } => "FinalSent",
            State::Done => "Done",
            State::Failed => "Failed",
        };
        f.debug_struct("ScramClient")
            .field("keys", &keys)
            .field("channel_binding", &self.end_point.is_some())
            .field("state", &state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scram_server::ScramServer;
    use crate::test_vectors::PG_X_PW;
    use crate::userlist::Secret;

    fn nonce_of(first: &[u8]) -> String {
        String::from_utf8_lossy(&first[b"n,,n=,r=".len()..]).into_owned()
    }

    #[test]
    fn client_first_shape() {
        let mut c = ScramClient::from_password("pw");
        let first = c.client_first();
        assert!(first.starts_with(b"n,,n=,r="));
        assert_eq!(nonce_of(&first).len(), 24);
        assert!(scram::is_printable_nonce(nonce_of(&first).as_bytes()));
    }

    /// RFC 7677 section 3 test vector (user "user", password "pencil"), with
    /// our random nonce replaced by the RFC's.
    #[test]
    fn rfc7677_vector() {
        let mut c = ScramClient::from_password("pencil");
        c.client_nonce = "rOprNGfwEbeRWgbNEkqO".into();
        c.client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO".into();
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = c
            .handle_server_first(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .expect("server-first");
        assert_eq!(
            client_final,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".to_vec()
        );
        c.handle_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .expect("server signature");
        assert!(c.is_done());
    }

    #[test]
    fn bad_server_first() {
        let cases: &[(&str, ScramError)] = &[
            ("m=x,r=abc,s=c2FsdA==,i=1", ScramError::UnsupportedExtension),
            (
                "s=c2FsdA==,i=1",
                ScramError::Malformed("expected nonce attribute"),
            ),
            ("r={n}X", ScramError::Malformed("expected salt attribute")),
            (
                "r={n}X,s=c2FsdA==",
                ScramError::Malformed("expected iteration count attribute"),
            ),
            (
                "r={n}X,s=c2FsdA==,i=0",
                ScramError::Malformed("invalid iteration count"),
            ),
            (
                "r={n}X,s=c2FsdA==,i=-1",
                ScramError::Malformed("invalid iteration count"),
            ),
            (
                "r={n}X,s=c2FsdA==,i=99999999999",
                ScramError::Malformed("invalid iteration count"),
            ),
            (
                "r={n}X,s=!!,i=1",
                ScramError::Malformed("salt is not base64"),
            ),
            ("r={n},s=c2FsdA==,i=1", ScramError::NonceMismatch),
            ("r=other{n},s=c2FsdA==,i=1", ScramError::NonceMismatch),
            (
                "r={n}X\x7f,s=c2FsdA==,i=1",
                ScramError::Malformed("invalid characters in nonce"),
            ),
            (
                "r={n}X,s=c2FsdA==,i=1,junk",
                ScramError::Malformed("attribute expected"),
            ),
        ];
        for (template, err) in cases {
            let mut c = ScramClient::from_password("pw");
            let n = nonce_of(&c.client_first());
            let msg = template.replace("{n}", &n);
            assert_eq!(
                c.handle_server_first(msg.as_bytes()).as_ref(),
                Err(err),
                "{msg}"
            );
            assert_eq!(
                c.handle_server_first(msg.as_bytes()),
                Err(ScramError::OutOfOrder)
            );
        }
        let mut c = ScramClient::from_password("pw");
        assert_eq!(
            c.handle_server_first(b"r=a,s=,i=1"),
            Err(ScramError::OutOfOrder)
        );
    }

    #[test]
    fn bad_server_final() {
        let start = || {
            let mut server = ScramServer::new(&Secret::Plain("pw".into())).expect("server");
            let mut c = ScramClient::from_password("pw");
            let sf = server
                .handle_client_first(&c.client_first())
                .expect("first");
            c.handle_server_first(&sf).expect("server-first");
            c
        };
        let sig = scram::b64_encode(&[7u8; 32]);
        let mut c = start();
        assert_eq!(
            c.handle_server_final(format!("v={sig}").as_bytes()),
            Err(ScramError::InvalidServerSignature)
        );
        let mut c = start();
        assert_eq!(
            c.handle_server_final(b"e=invalid-proof\n"),
            Err(ScramError::ServerError("invalid-proof?".into()))
        );
        let mut c = start();
        assert_eq!(
            c.handle_server_final(b"v=AAAA"),
            Err(ScramError::Malformed(
                "verifier is not a base64 32-byte value"
            ))
        );
        let mut c = start();
        assert_eq!(
            c.handle_server_final(b""),
            Err(ScramError::Malformed("expected verifier attribute"))
        );
        assert_eq!(c.handle_server_final(b""), Err(ScramError::OutOfOrder));
        let mut c = ScramClient::from_password("pw");
        assert_eq!(c.handle_server_final(b"v=x"), Err(ScramError::OutOfOrder));
    }

    #[test]
    fn wrong_password_detected_by_client_too() {
        // A server that does not know the password cannot forge v=.
        let mut server = ScramServer::new(&Secret::Plain("other".into())).expect("server");
        let mut c = ScramClient::from_password("pw");
        let sf = server
            .handle_client_first(&c.client_first())
            .expect("first");
        let cf = c.handle_server_first(&sf).expect("server-first");
        assert_eq!(
            server.handle_client_final(&cf),
            Err(ScramError::InvalidProof)
        );
    }

    #[test]
    fn pass_through_checks_salt_iterations_and_key() {
        let Some(secret) = ScramSecret::parse(PG_X_PW) else {
            unreachable!("PG_X_PW parses");
        };
        let other = ScramSecret::from_password("pw", b"another salt", 4096);
        // Server with a different salt.
        let mut server = ScramServer::new(&Secret::Scram(other.clone())).expect("server");
        let mut front = ScramServer::new(&Secret::Scram(secret.clone())).expect("server");
        let mut user = ScramClient::from_password("pw");
        let sf = front
            .handle_client_first(&user.client_first())
            .expect("first");
        let cf = user.handle_server_first(&sf).expect("server-first");
        let fin = front.handle_client_final(&cf).expect("final");
        user.handle_server_final(&fin).expect("verified");
        let key = front.client_key().expect("client key");

        let mut c = ScramClient::from_client_key(key, &secret);
        let sf = server
            .handle_client_first(&c.client_first())
            .expect("first");
        assert_eq!(c.handle_server_first(&sf), Err(ScramError::SecretMismatch));

        // Same salt, other iteration count.
        let more = ScramSecret::from_password("pw", &secret.salt, 4097);
        let mut server = ScramServer::new(&Secret::Scram(more)).expect("server");
        let mut c = ScramClient::from_client_key(key, &secret);
        let sf = server
            .handle_client_first(&c.client_first())
            .expect("first");
        assert_eq!(c.handle_server_first(&sf), Err(ScramError::SecretMismatch));

        // A ClientKey that does not belong to the secret.
        let mut server = ScramServer::new(&Secret::Scram(secret.clone())).expect("server");
        let mut c = ScramClient::from_client_key([1u8; 32], &secret);
        let sf = server
            .handle_client_first(&c.client_first())
            .expect("first");
        assert_eq!(
            c.handle_server_first(&sf),
            Err(ScramError::ClientKeyMismatch)
        );
    }

    #[test]
    fn channel_binding_messages() {
        let end_point = scram::sha256(b"server certificate").to_vec();
        let mut c = ScramClient::from_password("pw").with_channel_binding(end_point.clone());
        assert_eq!(c.mechanism(), crate::SCRAM_SHA_256_PLUS);
        let first = c.client_first();
        assert!(first.starts_with(b"p=tls-server-end-point,,n=,r="));
        let nonce =
            String::from_utf8_lossy(&first[b"p=tls-server-end-point,,n=,r=".len()..]).into_owned();
        let cf = c
            .handle_server_first(format!("r={nonce}X,s=c2FsdA==,i=1").as_bytes())
            .expect("server-first");
        let mut cbind_input = b"p=tls-server-end-point,,".to_vec();
        cbind_input.extend_from_slice(&end_point);
        let expected = format!("c={},r={nonce}X,p=", scram::b64_encode(&cbind_input));
        assert!(cf.starts_with(expected.as_bytes()));
        assert!(format!("{c:?}").contains("channel_binding: true"));
    }

    #[test]
    fn debug_redacts() {
        let c = ScramClient::from_password("hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
