//! API tokens: 32 random bytes shown once, stored only as their SHA-256 (a token has full
//! entropy, so a fast hash is right; there is nothing to brute-force).

use std::collections::HashMap;
use std::sync::LazyLock;

use outfitter_contract::redis_keys;
use redis::{AsyncCommands, Script};
use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::Role;

/// Every token starts with this, so a leaked one is easy to find in logs and repositories.
pub const TOKEN_PREFIX: &str = "oft_";
/// Token names: lowercase, digits, `.`, `_`, `-`; they appear in audit entries and Redis keys.
pub const TOKEN_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,62}$";

static NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(TOKEN_NAME_PATTERN).expect("static pattern"));

/// Check-and-write in one step, so two creations of one name cannot both succeed.
/// KEYS[1] the tokens hash; ARGV[1] name, ARGV[2] token hash, ARGV[3] record JSON.
/// Returns 1 when written, 0 when the name is taken.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for _, json in ipairs(redis.call('HVALS', KEYS[1])) do
  local ok, rec = pcall(cjson.decode, json)
  if ok and type(rec) == 'table' and rec.name == ARGV[1] then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
"#,
    )
});

/// Removes EVERY record of a name (duplicates written before creation was atomic included).
/// KEYS[1] the tokens hash; ARGV[1] name. Returns how many were removed.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local ok, rec = pcall(cjson.decode, all[i + 1])
  if ok and type(rec) == 'table' and rec.name == ARGV[1] then
    n = n + redis.call('HDEL', KEYS[1], all[i])
  end
end
return n
"#,
    )
});

/// What the panel keeps about a token (under the hash of the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Who created it (`cli:<user>` or a token name).
    pub created_by: String,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name {0:?} must match {TOKEN_NAME_PATTERN}")]
    BadName(String),
    #[error("a token named {0:?} already exists")]
    Exists(String),
    #[error("no randomness available: {0}")]
    Random(String),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// Checks a token name.
pub fn validate_name(name: &str) -> Result<(), TokenError> {
    if NAME_RE.is_match(name) {
        Ok(())
    } else {
        Err(TokenError::BadName(name.chars().take(80).collect()))
    }
}

/// The stored form of a token: lowercase hex SHA-256.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// 32 random bytes, hex, with the prefix.
pub fn random_secret(prefix: &str) -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// Creates a token and returns it; it is never readable again.
pub async fn create<C: AsyncCommands>(
    conn: &mut C,
    name: &str,
    role: Role,
    created_by: &str,
    now_ms: i64,
) -> Result<String, TokenError> {
    validate_name(name)?;
    let token = random_secret(TOKEN_PREFIX)?;
    let record = TokenRecord {
        name: name.to_owned(),
        role,
        created_at: now_ms,
        created_by: created_by.to_owned(),
    };
    let json = serde_json::to_string(&record).expect("token records serialize");
    let written: u32 = CREATE
        .key(redis_keys::TOKENS)
        .arg(name)
        .arg(hash_token(&token))
        .arg(json)
        .invoke_async(conn)
        .await?;
    if written == 0 {
        return Err(TokenError::Exists(name.to_owned()));
    }
    Ok(token)
}

/// The record of a presented token, if it is valid.
pub async fn lookup<C: AsyncCommands>(
    conn: &mut C,
    token: &str,
) -> redis::RedisResult<Option<TokenRecord>> {
    // Cheap shape check first: garbage never reaches Redis.
    if !token.starts_with(TOKEN_PREFIX) || token.len() != TOKEN_PREFIX.len() + 64 {
        return Ok(None);
    }
    lookup_hash(conn, &hash_token(token)).await
}

/// The record stored under a token hash.
pub async fn lookup_hash<C: AsyncCommands>(
    conn: &mut C,
    hash: &str,
) -> redis::RedisResult<Option<TokenRecord>> {
    let json: Option<String> = conn.hget(redis_keys::TOKENS, hash).await?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Every token's record, by name.
pub async fn list<C: AsyncCommands>(conn: &mut C) -> redis::RedisResult<Vec<TokenRecord>> {
    let all: HashMap<String, String> = conn.hgetall(redis_keys::TOKENS).await?;
    let mut out: Vec<TokenRecord> = all
        .values()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Deletes every token with this name; false if there was none.
pub async fn delete<C: AsyncCommands>(conn: &mut C, name: &str) -> redis::RedisResult<bool> {
    let n: u32 = DELETE
        .key(redis_keys::TOKENS)
        .arg(name)
        .invoke_async(conn)
        .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_are_restricted() {
        assert!(validate_name("ci-bot").is_ok());
        assert!(validate_name("admin.1_x").is_ok());
        for bad in ["", "Admin", "a*", "a{b}", "a:b", "-a"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_long_random_and_hash_deterministically() {
        let a = random_secret(TOKEN_PREFIX).unwrap();
        let b = random_secret(TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), a);
    }
}
