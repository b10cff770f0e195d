//! Checks a cleartext password (from AuthenticationCleartextPassword, or an admin check) against any stored secret kind.

use crate::md5::md5_secret;
use crate::scram::ct_eq;
use crate::userlist::{ScramSecret, Secret};

/// Whether `password` is the password behind `secret`, compared in constant time.
///
/// - Plain: the strings are equal.
/// - Md5: `md5_secret(user, password)` equals the stored secret.
/// - Scram: the verifier derived from `password` with the secret's salt and
///   iteration count has the same StoredKey and ServerKey (this costs one
///   PBKDF2 run of `iterations` rounds).
///
/// An empty password never matches (PostgreSQL refuses empty passwords).
pub fn verify_plain_password(secret: &Secret, user: &str, password: &str) -> bool {
    if password.is_empty() {
        return false;
    }
    match secret {
        Secret::Plain(stored) => ct_eq(stored.as_bytes(), password.as_bytes()),
        Secret::Md5(stored) => ct_eq(stored.as_bytes(), md5_secret(user, password).as_bytes()),
        Secret::Scram(stored) => {
            let derived = ScramSecret::from_password(password, &stored.salt, stored.iterations);
            // Evaluate both comparisons: no early exit on the first.
            let stored_ok = ct_eq(&derived.stored_key, &stored.stored_key);
            let server_ok = ct_eq(&derived.server_key, &stored.server_key);
            stored_ok & server_ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vectors::{PG_UNICODE_PW, PG_X_PW};

    #[test]
    fn plain_and_md5() {
        let plain = Secret::Plain("secret".into());
        assert!(verify_plain_password(&plain, "postgres", "secret"));
        assert!(!verify_plain_password(&plain, "postgres", "Secret"));
        assert!(!verify_plain_password(&plain, "postgres", "secret "));
        let md5 = Secret::Md5("md553f48b7c4b76a86ce72276c5755f217d".into());
        assert!(verify_plain_password(&md5, "postgres", "secret"));
        assert!(!verify_plain_password(&md5, "postgre", "secret"));
        assert!(!verify_plain_password(&md5, "postgres", "secreT"));
        let empty = Secret::Plain(String::new());
        assert!(!verify_plain_password(&empty, "postgres", ""));
    }

    #[test]
    fn postgres_scram_verifier() {
        let x = Secret::parse(PG_X_PW).expect("parses");
        assert!(verify_plain_password(&x, "x", "pw"));
        assert!(verify_plain_password(&x, "anyone", "pw"));
        assert!(!verify_plain_password(&x, "x", "pW"));
        assert!(!verify_plain_password(&x, "x", ""));
    }

    #[test]
    fn postgres_scram_verifier_saslprep() {
        // PostgreSQL SASLprep'd 'pässwörd ﬁ' (with the U+FB01 ligature) before
        // deriving; NFKC maps the ligature to "fi", so both spellings match.
        let u = Secret::parse(PG_UNICODE_PW).expect("parses");
        assert!(verify_plain_password(&u, "ünï", "pässwörd \u{fb01}"));
        assert!(verify_plain_password(&u, "ünï", "pässwörd fi"));
        assert!(!verify_plain_password(&u, "ünï", "passwörd fi"));
        // Decomposed ä/ö (a + U+0308) normalize to the same string too.
        assert!(verify_plain_password(
            &u,
            "ünï",
            "pa\u{308}sswo\u{308}rd fi"
        ));
    }
}
