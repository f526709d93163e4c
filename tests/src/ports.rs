//! Free TCP ports on 127.0.0.1 for the processes a test starts.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// A port that was free a moment ago and has not been handed out before in this process.
///
/// The kernel may give the same ephemeral port to two binds in a row once the first listener
/// is closed; remembering what was handed out keeps two servers of one test process apart.
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
            .expect("port registry poisoned")
            .insert(port)
        {
            return port;
        }
    }
}
