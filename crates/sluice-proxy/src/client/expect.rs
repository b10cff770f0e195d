//! The replies a server owes for what was sent to it, in order (PgDog's
//! lesson): which server messages end which request, which replies belong
//! to messages Sluice sent on its own (swallowed), and which replies Sluice
//! gives itself (a ParseComplete for a statement the server already has, a
//! CloseComplete for a client Close answered locally).

use std::collections::VecDeque;

use bytes::BytesMut;
use sluice_protocol::backend;

/// What a request's replies end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Parse,
    Bind,
    Close,
    DescribeStatement,
    DescribePortal,
    Execute,
    Sync,
    Query,
    FunctionCall,
}

impl Reply {
    /// Whether a server message with `tag` is the last reply to this request.
    fn ends_with(self, tag: u8) -> bool {
        match self {
            Reply::Parse => tag == backend::PARSE_COMPLETE,
            Reply::Bind => tag == backend::BIND_COMPLETE,
            Reply::Close => tag == backend::CLOSE_COMPLETE,
            Reply::DescribeStatement | Reply::DescribePortal => tag == b'T' || tag == b'n',
            Reply::Execute => matches!(tag, b'C' | b'I' | b's'),
            Reply::Sync | Reply::Query | Reply::FunctionCall => tag == backend::READY_FOR_QUERY,
        }
    }

    /// Part of the extended protocol (skipped by the server after an error
    /// until the next Sync).
    fn is_extended(self) -> bool {
        !matches!(self, Reply::Sync | Reply::Query | Reply::FunctionCall)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Forward(Reply),
    Swallow(Reply),
    /// A whole message Sluice writes to the client when this reaches the
    /// front of the queue.
    Synthetic(&'static [u8]),
}

pub const PARSE_COMPLETE: &[u8] = b"1\0\0\0\x04";
pub const CLOSE_COMPLETE: &[u8] = b"3\0\0\0\x04";

/// Messages that may come at any time and answer nothing.
pub fn is_async(tag: u8) -> bool {
    matches!(
        tag,
        backend::NOTICE_RESPONSE | backend::NOTIFICATION_RESPONSE | backend::PARAMETER_STATUS
    )
}

#[derive(Debug, Default)]
pub struct ExpectQueue {
    q: VecDeque<Expect>,
}

impl ExpectQueue {
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn clear(&mut self) {
        self.q.clear();
    }

    /// Adds an expectation; a Synthetic with nothing owed before it is
    /// written out at once.
    pub fn push(&mut self, e: Expect, out: &mut BytesMut) {
        self.q.push_back(e);
        self.drain_synthetic(out);
    }

    /// Whether the message with `tag` ends the request at the front.
    pub fn completes(&self, tag: u8) -> bool {
        if is_async(tag) {
            return false;
        }
        match self.q.front() {
            // An error ends an extended-protocol request; a Query or Sync
            // still ends with ReadyForQuery after it.
            Some(Expect::Forward(r)) | Some(Expect::Swallow(r)) => {
                if tag == backend::ERROR_RESPONSE {
                    r.is_extended()
                } else {
                    r.ends_with(tag)
                }
            }
            _ => false,
        }
    }

    /// Whether the current server message belongs to something Sluice sent
    /// on its own. Errors are always passed on.
    pub fn swallows(&self, tag: u8) -> bool {
        !is_async(tag)
            && tag != backend::ERROR_RESPONSE
            && matches!(self.q.front(), Some(Expect::Swallow(_)))
    }

    /// The front request got its last reply (`tag`).
    pub fn complete(&mut self, tag: u8, out: &mut BytesMut) {
        let front = self.q.pop_front();
        if tag == backend::ERROR_RESPONSE {
            if let Some(Expect::Forward(r) | Expect::Swallow(r)) = front {
                if r.is_extended() {
                    // The server now skips everything up to the next Sync.
                    while let Some(e) = self.q.front() {
                        if matches!(
                            e,
                            Expect::Forward(Reply::Sync) | Expect::Swallow(Reply::Sync)
                        ) {
                            break;
                        }
                        self.q.pop_front();
                    }
                }
            }
        }
        self.drain_synthetic(out);
    }

    /// Drops `n` Sync expectations queued behind the front (Syncs that
    /// reached the server in copy-in mode, which it ignores).
    pub fn drop_syncs_after_front(&mut self, mut n: usize) {
        let mut i = 1;
        while n > 0 && i < self.q.len() {
            if self.q[i] == Expect::Forward(Reply::Sync) {
                self.q.remove(i);
                n -= 1;
            } else {
                i += 1;
            }
        }
    }

    fn drain_synthetic(&mut self, out: &mut BytesMut) {
        while let Some(Expect::Synthetic(bytes)) = self.q.front() {
            out.extend_from_slice(bytes);
            self.q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_replies_come_out_in_order() {
        let mut q = ExpectQueue::default();
        let mut out = BytesMut::new();
        q.push(Expect::Synthetic(PARSE_COMPLETE), &mut out);
        assert_eq!(&out[..], PARSE_COMPLETE);
        out.clear();
        q.push(Expect::Forward(Reply::Bind), &mut out);
        q.push(Expect::Synthetic(CLOSE_COMPLETE), &mut out);
        q.push(Expect::Forward(Reply::Sync), &mut out);
        assert!(out.is_empty());
        assert!(q.completes(b'2'));
        q.complete(b'2', &mut out);
        assert_eq!(&out[..], CLOSE_COMPLETE);
        assert!(!q.completes(b'N'));
        assert!(
            !q.completes(b'E'),
            "an error inside a Sync/Query is followed by ReadyForQuery"
        );
        assert!(q.completes(b'Z'));
    }

    #[test]
    fn an_error_skips_to_the_next_sync() {
        let mut q = ExpectQueue::default();
        let mut out = BytesMut::new();
        for e in [
            Expect::Swallow(Reply::Parse),
            Expect::Forward(Reply::Bind),
            Expect::Synthetic(PARSE_COMPLETE),
            Expect::Forward(Reply::Execute),
            Expect::Forward(Reply::Sync),
        ] {
            q.push(e, &mut out);
        }
        assert!(q.swallows(b'1'));
        assert!(!q.swallows(b'E'));
        assert!(q.completes(b'E'));
        q.complete(b'E', &mut out);
        assert!(
            out.is_empty(),
            "synthetic replies after an error are not sent"
        );
        assert!(q.completes(b'Z'));
        q.complete(b'Z', &mut out);
        assert!(q.is_empty());
    }
}
