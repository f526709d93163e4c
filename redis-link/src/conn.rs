//! One connection type for every kind of Redis the programs reach.

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A connection to one server (reconnecting by itself, or plain multiplexed) or to a cluster
/// (which routes each command to the node of its key's slot and follows failovers). Cheap to
/// clone: clones share the connection.
#[derive(Clone)]
pub enum RedisConn {
    /// One server; reconnects by itself.
    Managed(ConnectionManager),
    /// One server; the caller reconnects.
    Multiplexed(MultiplexedConnection),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Managed(_) => "RedisConn::Managed",
            Self::Multiplexed(_) => "RedisConn::Multiplexed",
            Self::Cluster(_) => "RedisConn::Cluster",
        })
    }
}

impl From<ConnectionManager> for RedisConn {
    fn from(conn: ConnectionManager) -> Self {
        Self::Managed(conn)
    }
}

impl From<MultiplexedConnection> for RedisConn {
    fn from(conn: MultiplexedConnection) -> Self {
        Self::Multiplexed(conn)
    }
}

impl RedisConn {
    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// Runs `cmd` on every node: on a cluster each primary and replica gets it (what is not
    /// replicated, such as `ACL SETUSER` and `ACL SAVE`, must reach them all), and it fails
    /// when one node refuses it; on one server, there.
    pub async fn on_every_node(&mut self, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Self::Cluster(c) => {
                let routing = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllNodes,
                    Some(ResponsePolicy::AllSucceeded),
                ));
                c.route_command(cmd, routing).await
            }
            other => cmd.query_async(other).await,
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(c) => c.req_packed_command(cmd),
            Self::Multiplexed(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => Box::pin(crate::split::send(c, pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Multiplexed(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
