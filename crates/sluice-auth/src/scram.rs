//! SCRAM-SHA-256 building blocks shared by the server and client sides: the error type, key derivation, and attribute parsing.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Everything that can go wrong in a SCRAM exchange, on either side.
///
/// Variants carry no peer-supplied text except [`ScramError::ServerError`],
/// whose text is sanitised (printable ASCII, bounded length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The message does not follow the SCRAM grammar; the detail says where.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding (`p=...`), which we do not advertise.
    #[error("client requires SCRAM channel binding, but SCRAM-SHA-256-PLUS is not offered")]
    ChannelBindingUnsupported,
    /// The client asked for a channel-binding type other than `tls-server-end-point`.
    #[error("unsupported SCRAM channel-binding type")]
    UnsupportedChannelBindingType,
    /// The client sent the `y` flag (it supports channel binding but thinks the
    /// server does not) although SCRAM-SHA-256-PLUS was offered: a possible
    /// downgrade attack (PostgreSQL's rule).
    #[error(
        "SCRAM channel binding negotiation error: the client supports SCRAM channel binding \
         but thinks the server does not, while this server does"
    )]
    ChannelBindingNegotiation,
    /// The client selected a SASL mechanism we did not offer.
    #[error("client selected an invalid SASL authentication mechanism")]
    InvalidMechanism,
    /// Channel binding was asked for with empty `tls-server-end-point` data.
    #[error("no certificate hash for SCRAM channel binding")]
    NoChannelBindingData,
    /// The client sent an authorization identity (`a=...`).
    #[error("client uses authorization identity, but it is not supported")]
    AuthzidUnsupported,
    /// The message starts with a mandatory extension (`m=...`).
    #[error("SCRAM message requires an unsupported extension")]
    UnsupportedExtension,
    /// The channel-binding echo in client-final-message does not match the GS2
    /// header (and, with SCRAM-SHA-256-PLUS, the server certificate's hash).
    #[error("SCRAM channel binding check failed: unexpected channel-binding attribute in client-final-message")]
    ChannelBindingMismatch,
    /// The nonce does not continue the exchange's nonce.
    #[error("SCRAM nonce mismatch")]
    NonceMismatch,
    /// The client's proof does not match the stored key: wrong password.
    #[error("SCRAM authentication failed: invalid client proof")]
    InvalidProof,
    /// The server's signature does not match: the server does not know the secret.
    #[error("SCRAM authentication failed: invalid server signature")]
    InvalidServerSignature,
    /// The server answered with `e=<reason>` in server-final-message.
    #[error("server rejected SCRAM authentication: {0}")]
    ServerError(String),
    /// SCRAM was asked for with a stored MD5 secret, which cannot produce SCRAM keys.
    #[error("an MD5 secret cannot be used for SCRAM authentication")]
    Md5Secret,
    /// The stored plaintext password is empty.
    #[error("empty password")]
    EmptyPassword,
    /// Pass-through: the server's salt or iteration count differ from the stored secret.
    #[error("server's SCRAM salt or iteration count do not match the stored secret")]
    SecretMismatch,
    /// Pass-through: the ClientKey does not hash to the secret's StoredKey.
    #[error("client key does not match the stored SCRAM secret")]
    ClientKeyMismatch,
    /// A message arrived in a state that does not expect it (or after a failure).
    #[error("SCRAM message out of order")]
    OutOfOrder,
}

pub(crate) type Key = [u8; 32];

/// SASLprep the password; if that fails use it as is (PostgreSQL's rule).
pub(crate) fn saslprep_password(password: &str) -> Cow<'_, str> {
    stringprep::saslprep(password).unwrap_or(Cow::Borrowed(password))
}

pub(crate) fn sha256(data: &[u8]) -> Key {
    Sha256::digest(data).into()
}

/// HMAC-SHA-256 keyed with a 32-byte key, over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &Key, parts: &[&[u8]]) -> Key {
    // HMAC zero-pads keys shorter than the 64-byte block, so padding here gives
    // the identical MAC while using the infallible fixed-size constructor.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Hi(password, salt, i) of RFC 5802 (PBKDF2-HMAC-SHA-256). `password` must already be SASLprep'd.
pub(crate) fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Key {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations.max(1), &mut out);
    out
}

pub(crate) fn client_key(salted: &Key) -> Key {
    hmac_sha256(salted, &[b"Client Key"])
}

pub(crate) fn server_key(salted: &Key) -> Key {
    hmac_sha256(salted, &[b"Server Key"])
}

pub(crate) fn xor(a: &Key, b: &Key) -> Key {
    let mut out = [0u8; 32];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b.iter())) {
        *o = x ^ y;
    }
    out
}

/// Constant-time equality (lengths are not secret).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

pub(crate) fn b64_encode(data: &[u8]) -> String {
    B64.encode(data)
}

pub(crate) fn b64_decode(data: &[u8]) -> Option<Vec<u8>> {
    B64.decode(data).ok()
}

/// 18 random bytes, base64: the nonce length PostgreSQL and libpq use.
pub(crate) fn random_nonce() -> String {
    let mut raw = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut raw);
    b64_encode(&raw)
}

/// `printable` of RFC 5802: %x21-2B / %x2D-7E (no comma).
pub(crate) fn is_printable_nonce(nonce: &[u8]) -> bool {
    !nonce.is_empty()
        && nonce
            .iter()
            .all(|&c| (0x21..=0x7e).contains(&c) && c != b',')
}

/// The value of attribute `name` (`name=value`), or a `Malformed` error saying `what`.
pub(crate) fn attr<'a>(
    part: &'a [u8],
    name: u8,
    what: &'static str,
) -> Result<&'a [u8], ScramError> {
    match part {
        [n, b'=', value @ ..] if *n == name => Ok(value),
        _ => Err(ScramError::Malformed(what)),
    }
}

/// Checks that `part` looks like any attribute (`<letter>=...`), as extensions must.
pub(crate) fn any_attr(part: &[u8]) -> Result<(), ScramError> {
    match part {
        [n, b'=', ..] if n.is_ascii_alphabetic() => Ok(()),
        _ => Err(ScramError::Malformed("attribute expected")),
    }
}

/// Decodes a base64 32-byte key (proof or signature).
pub(crate) fn decode_key(value: &[u8], what: &'static str) -> Result<Key, ScramError> {
    b64_decode(value)
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .ok_or(ScramError::Malformed(what))
}

/// Text the server sent in `e=`, reduced to printable ASCII and bounded.
pub(crate) fn sanitize(text: &[u8]) -> String {
    text.iter()
        .take(200)
        .map(|&c| {
            if (0x20..=0x7e).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_style_vector() {
        // The zero-padded 64-byte key block must give the same MAC as the
        // ordinary variable-length constructor.
        let key = [0x0bu8; 32];
        let mac = hmac_sha256(&key, &[b"Hi ", b"There"]);
        let expected = hmac::Hmac::<Sha256>::new_from_slice(&key)
            .map(|m| m.chain_update(b"Hi There").finalize().into_bytes());
        assert_eq!(
            Some(mac.as_slice()),
            expected.as_ref().ok().map(|e| e.as_slice())
        );
        // And the literal, from Python's hmac module.
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
        );
    }

    #[test]
    fn nonce_printable_rules() {
        assert!(is_printable_nonce(b"abc+/=~!"));
        assert!(!is_printable_nonce(b""));
        assert!(!is_printable_nonce(b"a,b"));
        assert!(!is_printable_nonce(b"a b"));
        assert!(!is_printable_nonce(b"a\x7f"));
        assert_eq!(random_nonce().len(), 24);
    }

    #[test]
    fn sanitize_strips_controls() {
        assert_eq!(sanitize(b"other-error\n\x1b[1m"), "other-error??[1m");
    }
}
