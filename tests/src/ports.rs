//! Free TCP ports on 127.0.0.1 for the processes a test starts.

pub use outfitter_test_support::free_port;
