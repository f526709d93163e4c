//! The e2e support itself: the private Redis and the binaries the suites rely on.

use outfitter_tests::binaries::binaries;
use outfitter_tests::redis::{Persistence, RedisServer};

#[test]
fn private_redis_restarts_on_the_same_port_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start_in(dir.path(), Persistence::None).unwrap();
    assert_ne!(redis.port(), 6379, "never the system Redis");
    assert!(redis.answers_ping());
    let url = redis.url();
    redis.kill();
    assert!(!redis.answers_ping(), "a stopped server must not answer");
    redis.restart().unwrap();
    assert!(redis.answers_ping());
    assert_eq!(redis.url(), url);
}

#[test]
fn panel_and_runner_binaries_are_built_and_run() {
    for bin in [&binaries().panel, &binaries().runner] {
        let out = std::process::Command::new(bin)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{} --help: {out:?}", bin.display());
    }
}
