//! An agent's own Redis user (`agent add --redis-user`): confined by ACL to the agent's keys
//! and channels (`AgentRedisKeys::acl_rules`), with a password derived from the agent's key
//! (`keys::redis_password`), so a rotation changes it and nothing stores it. The panel's
//! own Redis user needs the `ACL` command for this.

use outfitter_contract::keys::redis_password;
use outfitter_contract::redis_keys::{AgentRedisKeys, agent_acl_user};
use outfitter_redis::RedisConn;

use outfitter_contract::keys::PanelSecret;

use super::error::{CAS_TRIES, Error, Result};
use super::keys::{self, GenerationKeys};
use super::{Registration, registration_raw, replace_registration};

/// Gives a registered agent its own Redis user (again, if it had one: reset to its rules)
/// and returns its keys, whose runner configuration then carries the user.
pub async fn enable(
    conn: &mut RedisConn,
    secret: &PanelSecret,
    agent_id: &str,
) -> Result<GenerationKeys> {
    for _ in 0..CAS_TRIES {
        let (json, reg) = registration_raw(conn, agent_id)
            .await?
            .ok_or_else(|| keys::not_registered(agent_id))?;
        if !reg.redis_user {
            let updated = Registration {
                redis_user: true,
                ..reg
            };
            if !replace_registration(conn, agent_id, &json, Some(&updated)).await? {
                continue;
            }
        }
        let keys = keys::load(conn, secret, agent_id).await?;
        apply(conn, &keys).await?;
        return Ok(keys);
    }
    Err(Error::Contended(agent_id.to_owned()))
}

/// The user and password `keys` give the agent's runner.
pub fn credentials(keys: &GenerationKeys) -> (String, String) {
    (
        agent_acl_user(&keys.agent_id),
        redis_password(&keys.agent_key),
    )
}

/// Creates the agent's user, or resets it to exactly its rules and the password of `keys`.
pub async fn apply(conn: &mut RedisConn, keys: &GenerationKeys) -> redis::RedisResult<()> {
    let (user, password) = credentials(keys);
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(&user).arg("reset");
    for rule in AgentRedisKeys::new(&keys.agent_id).acl_rules(&password) {
        cmd.arg(rule);
    }
    // ACL users are not replicated: on a cluster every node needs the user.
    conn.on_every_node(cmd).await?;
    save(conn).await;
    Ok(())
}

/// Deletes the agent's user (nothing when there is none).
pub async fn delete(conn: &mut RedisConn, agent_id: &str) -> redis::RedisResult<()> {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("DELUSER").arg(agent_acl_user(agent_id));
    conn.on_every_node(cmd).await?;
    save(conn).await;
    Ok(())
}

/// Writes the users to Redis's ACL file when it has one (`aclfile`; on a cluster, each node
/// its own), so they survive a restart; without one they live until Redis restarts, and the
/// log says so.
async fn save(conn: &mut RedisConn) {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SAVE");
    let saved = conn.on_every_node(cmd).await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "ACL SAVE failed: agent Redis users last until Redis restarts unless Redis has an aclfile");
    }
}

/// `redis_url` with `user:password@` in place of any credentials it carried.
pub fn url_with(redis_url: &str, user: &str, password: &str) -> String {
    let Some((scheme, rest)) = redis_url.split_once("://") else {
        return redis_url.to_owned();
    };
    if scheme.contains("unix") {
        let sep = if rest.contains('?') { '&' } else { '?' };
        return format!("{redis_url}{sep}user={user}&pass={password}");
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_replace_those_of_the_panel() {
        assert_eq!(
            url_with("redis://10.0.0.5:6379/", "agent-web-1", "ab12"),
            "redis://agent-web-1:ab12@10.0.0.5:6379/"
        );
        assert_eq!(
            url_with(
                "rediss://outfitter-panel:secret@redis.internal/0",
                "agent-a",
                "p"
            ),
            "rediss://agent-a:p@redis.internal/0"
        );
        assert_eq!(
            url_with("redis://:pw@[::1]:7000", "agent-a", "p"),
            "redis://agent-a:p@[::1]:7000"
        );
        assert_eq!(
            url_with("redis+unix:///run/redis.sock?db=1", "agent-a", "p"),
            "redis+unix:///run/redis.sock?db=1&user=agent-a&pass=p"
        );
    }
}
