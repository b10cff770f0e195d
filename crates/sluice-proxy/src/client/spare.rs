//! Buffers kept for reuse. An idle client gives its buffers back (so idle
//! clients hold none), and the next client with something to do takes
//! them, instead of mallocs and frees on every transaction. A few per
//! worker thread; beyond that they are freed.

use std::cell::RefCell;

use bytes::BytesMut;

/// The room a client's buffer starts with.
pub const READ_BUF: usize = 16 * 1024;

/// Buffers kept per thread, and the largest kept: at most 2 MiB a thread.
/// A buffer that grew for a big result is freed, not kept.
const KEEP: usize = 64;
const MAX_KEPT: usize = 32 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least [`READ_BUF`] bytes.
pub fn take() -> BytesMut {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(READ_BUF))
}

/// Gives `buf` back for reuse, if nothing else still points into it.
pub fn give(mut buf: BytesMut) {
    buf.clear();
    if !buf.try_reclaim(READ_BUF) || buf.capacity() > MAX_KEPT {
        return;
    }
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < KEEP {
            s.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_comes_back_empty_with_its_room() {
        let mut b = take();
        b.extend_from_slice(b"some bytes");
        let head = b.split_to(4);
        drop(head);
        let ptr = b.as_ptr() as usize;
        give(b);
        let again = take();
        assert!(again.is_empty());
        assert!(again.capacity() >= READ_BUF);
        // The same allocation, moved back to its start.
        assert_eq!(again.as_ptr() as usize, ptr - 4);
    }

    #[test]
    fn a_buffer_grown_for_a_big_result_is_not_kept() {
        let mut big = BytesMut::with_capacity(4 << 20);
        big.extend_from_slice(&[1; 100]);
        let ptr = big.as_ptr();
        give(big);
        let next = take();
        assert_ne!(next.as_ptr(), ptr);
        assert!(next.capacity() <= MAX_KEPT);
    }

    #[test]
    fn a_buffer_still_shared_is_not_kept() {
        let mut b = take();
        b.extend_from_slice(b"message");
        let msg = b.split_to(7).freeze();
        give(b);
        let other = take();
        assert_ne!(other.as_ptr(), msg.as_ptr());
        drop(msg);
    }
}
