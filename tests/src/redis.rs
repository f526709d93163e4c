//! A private `redis-server` per test (the one launcher of `outfitter-test-support`): its own
//! port and directory, stoppable and restartable on the same port to play outages.

pub use outfitter_test_support::{Persistence, RedisCluster, RedisServer, StartError, TestCerts};
