//! What the Raft group knows about one member.

use std::fmt;

/// A member of the Raft group: where its peers reach it. Stored in every membership entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node's cluster (gRPC) endpoint, `host:port`.
    pub raft_addr: String,
    /// The node's MQTT listener, `host:port` (for redirecting clients).
    pub mqtt_addr: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} mqtt={}", self.raft_addr, self.mqtt_addr)
    }
}
