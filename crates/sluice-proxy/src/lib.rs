//! The pooler proper: listeners, the client session state machine
//! (startup, authentication, transaction/session/statement pooling),
//! parameter sync, cancel routing, reload and shutdown.

pub mod admin;
pub mod cancel;
pub mod client;
pub mod clients;
pub mod errors;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod pause;
pub mod pools;
pub mod reload;
pub mod shared;
pub mod stats;

pub use listener::run;
pub use shared::{load_hba, Shared, ShutdownMode, TlsState};
