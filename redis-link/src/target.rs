//! What to connect to: `redis_url` (one URL, or with `redis_cluster` the seed nodes of a
//! cluster, separated by commas) and the TLS files, checked once.

use std::sync::Arc;
use std::time::Duration;

use outfitter_contract::redis_tls::{RedisTls, RedisTlsError, RedisTlsPem, redact_url};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{AsyncConnectionConfig, ClientTlsConfig, RedisResult, TlsCertificates};

use crate::RedisConn;

/// Why `redis_url` (with `redis_cluster` and the TLS files) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("redis_url is empty")]
    Empty,
    #[error(
        "redis_url lists {0} URLs: that is a cluster's seed nodes, so set redis_cluster (or give one URL)"
    )]
    SeveralWithoutCluster(usize),
    #[error("redis_url {url:?}: {message}")]
    Url { url: String, message: String },
    #[error(transparent)]
    Tls(#[from] RedisTlsError),
}

/// How long connecting and each reply may take; a reply without limit (`None`) is for a
/// connection that blocks by design (`BLMOVE`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub response: Option<Duration>,
}

/// One Redis server or one cluster, with its TLS files read.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    urls: Vec<String>,
    cluster: bool,
    tls: Option<RedisTlsPem>,
}

/// A cluster connection has no "no timeout": a blocking call gets this much.
const CLUSTER_BLOCKING_LIMIT: Duration = Duration::from_secs(24 * 3600);

impl RedisTarget {
    /// `redis_url` is one URL, or with `cluster` one or more seed nodes separated by commas
    /// (any reachable one is enough to find the others); `tls` applies to every one of them.
    pub fn new(redis_url: &str, cluster: bool, tls: &RedisTls) -> Result<Self, TargetError> {
        let urls: Vec<String> = redis_url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        let Some(first) = urls.first() else {
            return Err(TargetError::Empty);
        };
        if urls.len() > 1 && !cluster {
            return Err(TargetError::SeveralWithoutCluster(urls.len()));
        }
        for url in &urls {
            tls.check(url)?;
            redis::parse_redis_url(url).ok_or_else(|| TargetError::Url {
                url: redact_url(url),
                message: "not a redis://, rediss:// or unix URL".to_owned(),
            })?;
        }
        let tls = tls.load(first)?;
        Ok(Self { urls, cluster, tls })
    }

    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The URLs as given (one, or the seed nodes).
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URLs without their passwords, for messages.
    pub fn shown(&self) -> String {
        self.urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A client of the node at `url` (one of [`Self::urls`]), with the TLS files.
    pub fn node_client(&self, url: &str) -> RedisResult<redis::Client> {
        match &self.tls {
            None => redis::Client::open(url),
            Some(pem) => {
                install_ring();
                redis::Client::build_with_tls(url, certificates(pem))
            }
        }
    }

    /// One client per URL. On a cluster, classic pubsub reaches every node (a `PUBLISH`
    /// anywhere is delivered to subscribers everywhere), so a subscriber needs one reachable
    /// node and takes the next when it fails.
    pub fn node_clients(&self) -> RedisResult<Vec<redis::Client>> {
        self.urls.iter().map(|u| self.node_client(u)).collect()
    }

    fn cluster_client(&self, timeouts: Timeouts, retries: u32) -> RedisResult<ClusterClient> {
        let mut builder = ClusterClientBuilder::new(self.urls.clone())
            .connection_timeout(timeouts.connect)
            .response_timeout(timeouts.response.unwrap_or(CLUSTER_BLOCKING_LIMIT))
            .retries(retries);
        if let Some(pem) = &self.tls {
            install_ring();
            builder = builder.certs(certificates(pem));
        }
        builder.build()
    }

    fn dialer(&self, timeouts: Timeouts) -> NodeDialer {
        NodeDialer {
            target: self.clone(),
            timeouts,
        }
    }

    /// A connection that reconnects by itself (the panel's): a connection manager to the one
    /// server, or a cluster connection (which reconnects and follows failovers).
    pub async fn connect_managed(
        &self,
        timeouts: Timeouts,
        retries: usize,
    ) -> RedisResult<RedisConn> {
        if self.cluster {
            let client = self.cluster_client(timeouts, retries as u32)?;
            let dialer = Arc::new(self.dialer(timeouts));
            return Ok(RedisConn::Cluster(
                client.get_async_connection().await?,
                dialer,
            ));
        }
        let client = self.node_client(&self.urls[0])?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(timeouts.response)
            .set_number_of_retries(retries);
        Ok(RedisConn::Managed(
            ConnectionManager::new_with_config(client, config).await?,
        ))
    }

    /// A plain connection whose caller reconnects after a failure (the runner's): multiplexed
    /// to the one server, or a cluster connection. A cluster connection retries a command a
    /// few times itself while the cluster fails over.
    pub async fn connect_plain(&self, timeouts: Timeouts) -> RedisResult<RedisConn> {
        if self.cluster {
            let client = self.cluster_client(timeouts, 4)?;
            let dialer = Arc::new(self.dialer(timeouts));
            return Ok(RedisConn::Cluster(
                client.get_async_connection().await?,
                dialer,
            ));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(timeouts.response);
        let client = self.node_client(&self.urls[0])?;
        Ok(RedisConn::Multiplexed(
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await?,
        ))
    }
}

/// How to open a connection of its own to one node of a cluster: the first seed's URL
/// (scheme, credentials, database) with that node's host and port, and the TLS files.
#[derive(Debug)]
pub struct NodeDialer {
    target: RedisTarget,
    timeouts: Timeouts,
}

impl NodeDialer {
    /// A connection to the node at `host:port`.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> RedisResult<MultiplexedConnection> {
        let seed = &self.target.urls[0];
        let mut url = redis::parse_redis_url(seed).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "redis_url"))
        })?;
        let bad =
            |_| redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "node address"));
        url.set_host(Some(host)).map_err(bad)?;
        url.set_port(Some(port)).map_err(|()| {
            redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "node port"))
        })?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(self.timeouts.response);
        self.target
            .node_client(url.as_str())?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// ring is the one rustls provider built in (no C build of aws-lc); installing it twice is a
/// no-op.
fn install_ring() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn certificates(pem: &RedisTlsPem) -> TlsCertificates {
    TlsCertificates {
        client_tls: pem
            .client
            .clone()
            .map(|(client_cert, client_key)| ClientTlsConfig {
                client_cert,
                client_key,
            }),
        root_cert: pem.root_cert.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_or_a_cluster_of_seeds() {
        let tls = RedisTls::default();
        let one = RedisTarget::new("redis://127.0.0.1:6379/", false, &tls).unwrap();
        assert_eq!(one.urls(), ["redis://127.0.0.1:6379/"]);
        assert!(!one.is_cluster());
        let seeds = RedisTarget::new(" redis://a:1, redis://:pw@b:2 ,", true, &tls).unwrap();
        assert_eq!(seeds.urls().len(), 2);
        assert_eq!(seeds.shown(), "redis://a:1,redis://:***@b:2");
    }

    #[test]
    fn bad_targets_are_refused_naming_the_setting() {
        let tls = RedisTls::default();
        let e = RedisTarget::new("redis://a:1,redis://b:2", false, &tls).unwrap_err();
        assert!(e.to_string().contains("set redis_cluster"), "{e}");
        let e = RedisTarget::new(" , ", true, &tls).unwrap_err();
        assert!(e.to_string().contains("redis_url is empty"), "{e}");
        let e = RedisTarget::new("http://a:1", false, &tls).unwrap_err();
        assert!(e.to_string().contains("redis_url \"http://a:1\""), "{e}");
        let with_ca = RedisTls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..RedisTls::default()
        };
        let e = RedisTarget::new("rediss://a:1,redis://b:2", true, &with_ca).unwrap_err();
        assert!(e.to_string().contains("redis_ca_file"), "{e}");
    }
}
