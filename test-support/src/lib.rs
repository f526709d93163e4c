//! What the test suites and the bench share: a private `redis-server` on a free port, never
//! the system Redis on 6379.

mod ports;
mod redis_server;

pub use ports::free_port;
pub use redis_server::{Persistence, RedisServer, StartError};
