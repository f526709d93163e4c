//! What the test suites and the bench share: a private `redis-server` on a free port (never
//! the system Redis on 6379), daemons killed with their process group when dropped, and the panel and runner binaries.

mod binaries;
mod daemon;
mod ports;
mod redis_server;

pub use binaries::Binaries;
pub use daemon::Daemon;
pub use ports::free_port;
pub use redis_server::{Persistence, RedisServer, StartError};
