//! One long-lived gRPC channel per peer address, shared by Raft replication, forwarded
//! proposals and membership requests.

use crate::pb::broker_link_client::BrokerLinkClient;
use crate::pb::raft_service_client::RaftServiceClient;
use crate::ClusterError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// Largest gRPC message accepted or sent (a batch of appended entries can be large).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// How long connecting to a peer may take before the RPC counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// HTTP/2 pings keep idle channels open and detect a dead peer on a silent connection.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// The channels to every peer this node talks to, created lazily on first use. A tonic channel
/// connects on its first request and reconnects by itself after the connection drops, so a
/// channel lives as long as its peer's address stays the same; openraft backs off between
/// attempts at an unreachable peer (see `GrpcPeer::backoff`).
#[derive(Debug, Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl PeerChannels {
    /// A client for the node listening on `addr` (`host:port`), reusing its channel.
    pub(crate) fn client(&self, addr: &str) -> Result<RaftServiceClient<Channel>, ClusterError> {
        Ok(RaftServiceClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// A broker-link client for the node listening on `addr`, on the same channel.
    pub(crate) fn link_client(
        &self,
        addr: &str,
    ) -> Result<BrokerLinkClient<Channel>, ClusterError> {
        Ok(BrokerLinkClient::new(self.channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn channel(&self, addr: &str) -> Result<Channel, ClusterError> {
        let channel = {
            let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
            match channels.get(addr) {
                Some(channel) => channel.clone(),
                None => {
                    let channel = endpoint(addr)?.connect_lazy();
                    channels.insert(addr.to_string(), channel.clone());
                    channel
                }
            }
        };
        Ok(channel)
    }
}

fn endpoint(addr: &str) -> Result<Endpoint, ClusterError> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| ClusterError::Config(format!("peer address {addr:?}: {e}")))?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(KEEPALIVE)
        .keep_alive_timeout(KEEPALIVE)
        .keep_alive_while_idle(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_channel_per_address_and_bad_addresses_fail() {
        let channels = PeerChannels::default();
        channels.client("127.0.0.1:1").unwrap();
        channels.client("127.0.0.1:1").unwrap();
        channels.client("127.0.0.1:2").unwrap();
        assert_eq!(channels.channels.lock().unwrap().len(), 2);
        assert!(channels.client("not an address").is_err());
    }
}
