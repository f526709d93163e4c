//! Rollouts stored before their keys carried a hash tag are renamed once, at the driver's
//! first round, so that an upgraded panel still finds them (and their history and lease).

use outfitter_contract::redis_keys;
use outfitter_panel::rollouts::store;
use outfitter_redis::RedisConn;
use outfitter_test_support::RedisServer;
use redis::AsyncCommands;

#[actix_web::test]
async fn untagged_rollout_keys_are_renamed_once_and_new_ones_are_left_alone() {
    let redis = RedisServer::start();
    let mut conn: RedisConn =
        redis::aio::ConnectionManager::new(redis::Client::open(redis.url()).unwrap())
            .await
            .unwrap()
            .into();
    let (old_id, new_id) = (
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
    );
    let [record, history, lease] = redis_keys::rollout_untagged(old_id);
    let _: () = redis::pipe()
        .hset(&record, "data", "{\"old\":true}")
        .rpush(&history, "{\"entry\":1}")
        .set(&lease, "panel-a")
        .zadd(redis_keys::ROLLOUTS_INDEX, old_id, 1)
        .hset(redis_keys::rollout(new_id), "data", "{\"new\":true}")
        .zadd(redis_keys::ROLLOUTS_INDEX, new_id, 2)
        .query_async(&mut conn)
        .await
        .unwrap();

    assert_eq!(store::migrate_untagged(&mut conn).await.unwrap(), 3);
    let data: String = conn
        .hget(redis_keys::rollout(old_id), "data")
        .await
        .unwrap();
    assert_eq!(data, "{\"old\":true}");
    let entries: Vec<String> = conn
        .lrange(redis_keys::rollout_history(old_id), 0, -1)
        .await
        .unwrap();
    assert_eq!(entries, ["{\"entry\":1}"]);
    let holder: String = conn.get(redis_keys::rollout_lease(old_id)).await.unwrap();
    assert_eq!(holder, "panel-a");
    for old in [&record, &history, &lease] {
        let left: bool = conn.exists(old).await.unwrap();
        assert!(!left, "{old} is gone");
    }
    let data: String = conn
        .hget(redis_keys::rollout(new_id), "data")
        .await
        .unwrap();
    assert_eq!(data, "{\"new\":true}", "a tagged rollout is untouched");
    assert_eq!(store::migrate_untagged(&mut conn).await.unwrap(), 0, "once");
}
