//! The pooler proper: listeners, the client session state machine
//! (startup, authentication, transaction/session/statement pooling),
//! parameter sync, cancel routing, reload and shutdown.

pub mod cancel;
pub mod client;
pub mod errors;
pub mod listener;
pub mod pools;
pub mod shared;

pub use listener::run;
pub use shared::{load_hba, Shared, TlsState};
