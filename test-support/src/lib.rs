//! What the test suites and the bench share: a private `redis-server` on a free port (never
//! the system Redis on 6379) or a private Redis Cluster, daemons killed with their process group when dropped, the panel and runner binaries, and
//! the TLS provider their HTTP clients need, and certificates for a TLS Redis.

mod binaries;
mod certs;
mod daemon;
mod ports;
mod redis_cluster;
mod redis_server;
#[cfg(feature = "sse")]
pub mod sse;
mod tls;

pub use binaries::Binaries;
pub use certs::{CertError, TestCerts};
pub use daemon::Daemon;
pub use ports::free_port;
pub use redis_cluster::RedisCluster;
pub use redis_server::{Persistence, RedisServer, StartError};
pub use tls::install_tls_provider;
