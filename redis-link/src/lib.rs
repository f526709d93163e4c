//! How the panel and the runner reach Redis: one server, or a Redis Cluster through its seed
//! nodes; plain, or over TLS with the files of `contract::redis_tls`. Both programs build
//! their connections here, so a cluster, TLS and the commands every node must see (ACL
//! users are not replicated) are written once.

mod conn;
mod split;
mod target;

pub use conn::RedisConn;
pub use target::{RedisTarget, TargetError, Timeouts};
