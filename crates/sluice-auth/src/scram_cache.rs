//! SCRAM verifiers for users whose auth_file entry is a plaintext password,
//! derived once and kept, so that every login after a user's first costs a
//! few HMACs instead of 4096 PBKDF2 rounds (what makes connection churn
//! with SCRAM expensive). The check is as strict as ever: the client still
//! proves knowledge of the password against the same kind of verifier
//! PostgreSQL itself stores, with one salt per password as PostgreSQL has.
//! Users without a usable secret get a mock verifier whose salt depends
//! only on the user name, so the exchange looks the same for them on every
//! try and costs no derivation.

use std::collections::HashMap;
use std::sync::Mutex;

use rand::RngCore;

use crate::scram::{hmac_sha256, Key};
use crate::userlist::ScramSecret;

/// Derived verifiers kept at most; the cache starts over beyond that.
const MAX_ENTRIES: usize = 10_000;

pub struct ScramVerifiers {
    /// Keys the map by an HMAC of the password, never the password.
    map_key: Key,
    /// Makes the mock salts unpredictable from outside.
    mock_key: Key,
    map: Mutex<HashMap<Key, ScramSecret>>,
}

impl Default for ScramVerifiers {
    fn default() -> Self {
        let mut map_key = [0u8; 32];
        let mut mock_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut map_key);
        rand::thread_rng().fill_bytes(&mut mock_key);
        ScramVerifiers {
            map_key,
            mock_key,
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl ScramVerifiers {
    fn key(&self, password: &str, iterations: u32) -> Key {
        hmac_sha256(
            &self.map_key,
            &[password.as_bytes(), &iterations.to_be_bytes()],
        )
    }

    /// The verifier for `password`, if already derived.
    pub fn cached(&self, password: &str, iterations: u32) -> Option<ScramSecret> {
        let k = self.key(password, iterations);
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
            .cloned()
    }

    /// The verifier for `password`: cached, or derived now (PBKDF2, a few
    /// milliseconds: call off the async workers) with a fresh random salt.
    pub fn derive(&self, password: &str, iterations: u32) -> ScramSecret {
        if let Some(s) = self.cached(password, iterations) {
            return s;
        }
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let secret = ScramSecret::from_password(password, &salt, iterations);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.entry(self.key(password, iterations))
            .or_insert(secret)
            .clone()
    }

    /// A verifier no password matches, with a salt fixed per user name.
    pub fn mock_for(&self, user: &str, iterations: u32) -> ScramSecret {
        let salt = hmac_sha256(&self.mock_key, &[user.as_bytes()]);
        let mut stored_key = [0u8; 32];
        let mut server_key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut stored_key);
        rand::thread_rng().fill_bytes(&mut server_key);
        ScramSecret {
            iterations,
            salt: salt[..16].to_vec(),
            stored_key,
            server_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ScramClient, ScramServer, Secret};

    fn login(secret: &ScramSecret, password: &str) -> bool {
        let mut server = ScramServer::new(&Secret::Scram(secret.clone())).unwrap();
        let mut client = ScramClient::from_password(password);
        let first = server.handle_client_first(&client.client_first()).unwrap();
        let Ok(fin) = client.handle_server_first(&first) else {
            return false;
        };
        server.handle_client_final(&fin).is_ok()
    }

    #[test]
    fn a_password_is_derived_once_and_still_checked_every_time() {
        let v = ScramVerifiers::default();
        assert!(v.cached("pw", 4096).is_none());
        let a = v.derive("pw", 4096);
        let b = v.cached("pw", 4096).expect("kept");
        assert_eq!(a, b, "the same verifier (and salt) on the next login");
        assert!(login(&b, "pw"));
        assert!(!login(&b, "wrong"));
        let other = v.derive("other", 4096);
        assert_ne!(other.salt, a.salt);
    }

    #[test]
    fn mock_verifiers_keep_a_salt_per_user_and_match_no_password() {
        let v = ScramVerifiers::default();
        let a = v.mock_for("ghost", 4096);
        let b = v.mock_for("ghost", 4096);
        assert_eq!(a.salt, b.salt);
        assert_ne!(a.salt, v.mock_for("other", 4096).salt);
        assert!(!login(&a, ""));
        assert!(!login(&a, "ghost"));
    }
}
