//! The openraft type configuration.

use crate::pb;
use crate::NodeInfo;

openraft::declare_raft_types!(
    /// Midge's Raft types: node ids are `u64`, log entries carry a batch of commands
    /// ([`pb::Request`]), and snapshots are files streamed from and to disk.
    pub TypeConfig:
        D = pb::Request,
        R = pb::Response,
        NodeId = u64,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);
