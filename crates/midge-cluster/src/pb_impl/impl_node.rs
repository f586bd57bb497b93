//! [`NodeInfo`] <-> `pb::Node`.

use crate::{pb, NodeInfo};

impl From<&NodeInfo> for pb::Node {
    fn from(n: &NodeInfo) -> pb::Node {
        pb::Node {
            raft_addr: n.raft_addr.clone(),
            mqtt_addr: n.mqtt_addr.clone(),
        }
    }
}

impl From<pb::Node> for NodeInfo {
    fn from(n: pb::Node) -> NodeInfo {
        NodeInfo {
            raft_addr: n.raft_addr,
            mqtt_addr: n.mqtt_addr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let node = NodeInfo {
            raft_addr: "10.0.0.1:7000".into(),
            mqtt_addr: "10.0.0.1:1883".into(),
        };
        assert_eq!(NodeInfo::from(pb::Node::from(&node)), node);
    }
}
