//! PostgreSQL wire protocol for Sluice: framing of startup and regular
//! messages, read-only views of the messages the pooler must understand, and
//! builders for the messages it writes itself. No I/O, no tokio.

pub mod backend;
pub mod builders;
pub mod error;
pub mod framing;
pub mod frontend;
pub mod startup;

pub use error::ProtocolError;
pub use framing::{take_message, Message};
pub use startup::{take_startup, StartupPacket};

/// Upper bound for a startup packet, as PostgreSQL (MAX_STARTUP_PACKET_LENGTH).
pub const MAX_STARTUP_PACKET: usize = 10_000;
