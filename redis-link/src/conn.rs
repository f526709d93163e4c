//! One connection type for every kind of Redis the programs reach.

use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::target::NodeDialer;

/// A connection to one server (reconnecting by itself, or plain multiplexed) or to a cluster
/// (which routes each command to the node of its key's slot and follows failovers). Cheap to
/// clone: clones share the connection.
#[derive(Clone)]
pub enum RedisConn {
    /// One server; reconnects by itself.
    Managed(ConnectionManager),
    /// One server; the caller reconnects.
    Multiplexed(MultiplexedConnection),
    /// A Redis Cluster, and how to reach one of its nodes directly (for what every node must
    /// get: the cluster client holds connections only to the nodes it routes to).
    Cluster(ClusterConnection, Arc<NodeDialer>),
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Managed(_) => "RedisConn::Managed",
            Self::Multiplexed(_) => "RedisConn::Multiplexed",
            Self::Cluster(..) => "RedisConn::Cluster",
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
        matches!(self, Self::Cluster(..))
    }

    /// Runs `cmd` on every node: on a cluster each primary and replica that `CLUSTER NODES`
    /// lists as reachable gets it over a connection of its own (what is not replicated, such
    /// as `ACL SETUSER` and `ACL SAVE`, must reach them all), one after another, and it fails
    /// when one node refuses it; on one server, there. Not the client's all-nodes routing: it
    /// reaches only the nodes it holds connections to, which leaves out replicas.
    pub async fn on_every_node(&mut self, cmd: Cmd) -> RedisResult<Value> {
        match self {
            Self::Cluster(c, dialer) => {
                let listing: String = redis::cmd("CLUSTER").arg("NODES").query_async(c).await?;
                let mut last = Value::Nil;
                for (host, port) in reachable_nodes(&listing) {
                    let mut node = dialer.connect(&host, port).await?;
                    last = cmd.query_async(&mut node).await?;
                }
                Ok(last)
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
            Self::Cluster(c, _) => c.req_packed_command(cmd),
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
            Self::Cluster(c, _) => Box::pin(crate::split::send(c, pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Multiplexed(c) => c.get_db(),
            Self::Cluster(c, _) => c.get_db(),
        }
    }
}

/// The host and port of every node of a `CLUSTER NODES` listing that is neither failed nor
/// without an address (`<id> <host:port@bus[,hostname]> <flags> …`).
fn reachable_nodes(listing: &str) -> Vec<(String, u16)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, address, flags) = (fields.next()?, fields.next()?, fields.next()?);
            if flags
                .split(',')
                .any(|f| matches!(f, "fail" | "fail?" | "noaddr" | "handshake"))
            {
                return None;
            }
            let host_port = address.split(['@', ',']).next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reachable_primary_and_replica_is_listed() {
        let listing = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001,node-b master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 slave a1 0 0 1 connected
d4 127.0.0.1:7004@17004 slave,fail b2 0 0 2 disconnected
e5 :0@0 master,noaddr - 0 0 3 disconnected
f6 [::1]:7005@17005 slave b2 0 0 2 connected
";
        assert_eq!(
            reachable_nodes(listing),
            [
                ("127.0.0.1".to_owned(), 7000),
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7003),
                ("::1".to_owned(), 7005),
            ]
        );
    }
}
