//! Free TCP ports on 127.0.0.1 for the processes a test starts.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// A port that was free a moment ago and has not been handed out before in this process.
///
/// The kernel may give the same ephemeral port to two binds in a row once the first listener
/// is closed; remembering what was handed out keeps two servers of one test process apart.
///
/// # Panics
/// When 127.0.0.1 cannot be bound at all: no test that needs a port can run then.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(Default::default);
    loop {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .expect("binding 127.0.0.1:0 must work on a test machine")
            .port();
        if handed_out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(port)
        {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }
}
