//! The one place the panel turns an agent id into its keys: the registration names the
//! current key generation, the panel secret derives it. Signing, sealing and the printed
//! runner configuration all go through [`load`], so after a rotation nothing in the panel
//! keeps using the old key.

use outfitter_contract::keys::{AgentCrypto, Key, PanelSecret};
use outfitter_redis::RedisConn;

use super::error::{Error, Result};

/// One agent's keys at one generation.
#[derive(Debug, Clone)]
pub struct GenerationKeys {
    pub agent_id: String,
    pub generation: u32,
    /// What the runner's configuration holds (`agent_key`).
    pub agent_key: Key,
    /// Signing and sealing keys derived from it.
    pub working: AgentCrypto,
    /// Whether the agent has its own Redis user (its configuration then carries it).
    pub redis_user: bool,
}

impl GenerationKeys {
    /// Derives an agent's keys at a generation.
    pub fn derive(secret: &PanelSecret, agent_id: &str, generation: u32) -> Self {
        let agent_key = secret.agent_key_gen(agent_id, generation);
        Self {
            agent_id: agent_id.to_owned(),
            generation,
            working: AgentCrypto::from_agent_key(&agent_key),
            agent_key,
            redis_user: false,
        }
    }

    /// The same keys, for an agent with (or without) its own Redis user.
    pub fn with_redis_user(self, redis_user: bool) -> Self {
        Self { redis_user, ..self }
    }

    /// The generations before this one, newest first: only for reading what the panel or the
    /// runner signed before a rotation, never for signing anything new.
    pub fn earlier<'a>(&'a self, secret: &'a PanelSecret) -> impl Iterator<Item = Self> + 'a {
        (0..self.generation)
            .rev()
            .map(|g| Self::derive(secret, &self.agent_id, g))
    }

    /// The runner's configuration file (TOML) with this key, and the panel's `redis_url`
    /// (each seed node of a cluster) with the agent's own Redis user in it when it has one.
    pub fn runner_config(&self, redis_url: &str, cluster: bool) -> String {
        let url = if self.redis_user {
            let (user, password) = super::redis_user::credentials(self);
            redis_url
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(|u| super::redis_user::url_with(u, &user, &password))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            redis_url.to_owned()
        };
        super::runner_config(&self.agent_id, &self.agent_key.to_hex(), &url, cluster)
    }
}

/// The error for an id with no registration.
pub fn not_registered(agent_id: &str) -> Error {
    Error::NotRegistered(agent_id.to_owned())
}

/// The current keys of a registered agent; `agent_not_found` for any other id.
pub async fn load(
    conn: &mut RedisConn,
    secret: &PanelSecret,
    agent_id: &str,
) -> Result<GenerationKeys> {
    let reg = super::registration(conn, agent_id)
        .await?
        .ok_or_else(|| not_registered(agent_id))?;
    Ok(
        GenerationKeys::derive(secret, agent_id, reg.key_generation)
            .with_redis_user(reg.redis_user),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_generations_come_newest_first_and_exclude_the_current_one() {
        let s = PanelSecret::from_bytes(vec![3; 32]).unwrap();
        let now = GenerationKeys::derive(&s, "web-1", 3);
        let gens: Vec<u32> = now.earlier(&s).map(|k| k.generation).collect();
        assert_eq!(gens, [2, 1, 0]);
        assert_eq!(
            now.earlier(&s).last().unwrap().agent_key,
            s.agent_key("web-1")
        );
        assert_eq!(
            GenerationKeys::derive(&s, "web-1", 0).earlier(&s).count(),
            0
        );
    }

    #[test]
    fn runner_config_carries_the_generation_key() {
        let s = PanelSecret::from_bytes(vec![3; 32]).unwrap();
        let k = GenerationKeys::derive(&s, "web-1", 2);
        let t: toml::Table = toml::from_str(&k.runner_config("redis://r/", false)).unwrap();
        assert_eq!(
            t["agent_key"].as_str().unwrap(),
            s.agent_key_gen("web-1", 2).to_hex()
        );
    }
}
