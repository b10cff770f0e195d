//! Pools of PostgreSQL server connections, one per (database, user): login
//! to servers, limits, a FIFO wait queue, lifetimes and idle timeouts, the
//! reserve pool. Knows nothing of clients.

mod cancel_gate;
pub mod error;
pub mod events;
pub mod info;
mod lend;
pub mod limits;
pub mod login;
pub mod pool;
pub mod prepared;
mod retire;
pub mod server;
mod status;
pub mod stream;

pub use cancel_gate::{CancelGate, CancelInFlight};
pub use error::PoolError;
pub use info::{ServerInfo, ServerState};
pub use limits::Limit;
pub use pool::{Pool, PoolKey, PoolSettings, PoolStatus, PooledConn};
pub use prepared::PreparedSet;
pub use server::{ServerConn, ServerSecret};
pub use stream::{ServerAddr, ServerStream};
