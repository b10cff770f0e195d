//! Named prepared statements in transaction mode: a client's statement
//! names map to server-side names derived from the query text and
//! parameter types, so the same statement can be prepared lazily on
//! whichever server the client's next transaction lands on, and two
//! clients may use one name for different queries.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use sha2::{Digest, Sha256};
use sluice_protocol::builders::put_message;

/// One client statement, as the server will know it.
#[derive(Debug)]
pub struct StmtDef {
    pub server_name: String,
    /// The Parse to send to a server that lacks it (server-side name).
    pub parse: Bytes,
}

#[derive(Debug, Default)]
pub struct ClientStatements {
    map: HashMap<String, Arc<StmtDef>>,
}

impl ClientStatements {
    /// Records a client Parse (`rest` = query text and parameter types).
    pub fn define(&mut self, name: &str, rest: &[u8]) -> Arc<StmtDef> {
        let server_name = server_name_for(rest);
        if let Some(d) = self.map.get(name) {
            if d.server_name == server_name {
                return d.clone();
            }
        }
        let mut parse = BytesMut::with_capacity(rest.len() + server_name.len() + 6);
        put_message(&mut parse, b'P', |b| {
            b.put_slice(server_name.as_bytes());
            b.put_u8(0);
            b.put_slice(rest);
        });
        let def = Arc::new(StmtDef {
            server_name,
            parse: parse.freeze(),
        });
        self.map.insert(name.to_string(), def.clone());
        def
    }

    pub fn get(&self, name: &str) -> Option<Arc<StmtDef>> {
        self.map.get(name).cloned()
    }

    pub fn remove(&mut self, name: &str) {
        self.map.remove(name);
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// `sluice_` + 128 bits of SHA-256 over query text and parameter types.
pub fn server_name_for(rest: &[u8]) -> String {
    let digest = Sha256::digest(rest);
    let mut s = String::with_capacity(7 + 32);
    s.push_str("sluice_");
    for b in &digest[..16] {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A Bind naming the server-side statement instead of the client's.
pub fn rewrite_bind(out: &mut BytesMut, portal: &str, server_name: &str, rest: &[u8]) {
    put_message(out, b'B', |b| {
        b.put_slice(portal.as_bytes());
        b.put_u8(0);
        b.put_slice(server_name.as_bytes());
        b.put_u8(0);
        b.put_slice(rest);
    });
}

/// A Describe or Close of statement `server_name`.
pub fn put_target(out: &mut BytesMut, tag: u8, server_name: &str) {
    put_message(out, tag, |b| {
        b.put_u8(b'S');
        b.put_slice(server_name.as_bytes());
        b.put_u8(0);
    });
}

/// Whether a simple query drops all prepared statements of the session
/// (Prisma's and psycopg's `DEALLOCATE ALL`, `DISCARD ALL`).
pub fn drops_all_statements(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .take(3)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    matches!(
        words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["DEALLOCATE", "ALL", ..] | ["DEALLOCATE", "PREPARE", "ALL"] | ["DISCARD", "ALL", ..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_and_types_share_a_server_name_and_names_differ_otherwise() {
        let mut a = ClientStatements::default();
        let mut b = ClientStatements::default();
        let x = a.define("s1", b"select 1\0\0\0");
        let y = b.define("other", b"select 1\0\0\0");
        let z = b.define("s1", b"select 2\0\0\0");
        assert_eq!(x.server_name, y.server_name);
        assert_ne!(x.server_name, z.server_name);
        assert!(x.server_name.len() < 63);
        assert_eq!(
            &x.parse[5..5 + x.server_name.len()],
            x.server_name.as_bytes()
        );
    }

    #[test]
    fn deallocate_all_and_discard_all_are_recognised() {
        assert!(drops_all_statements("DEALLOCATE ALL"));
        assert!(drops_all_statements("  deallocate all;"));
        assert!(drops_all_statements("DEALLOCATE PREPARE ALL"));
        assert!(drops_all_statements("discard all"));
        assert!(!drops_all_statements("DEALLOCATE s1"));
        assert!(!drops_all_statements("select 'discard all'"));
    }
}
