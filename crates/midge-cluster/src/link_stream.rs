//! The sending end of a link's connection to one peer: a long-lived `ExchangeStream` (batches
//! go out as they are ready, replies come back in order), or, with a peer that does not serve
//! it (a node from before it existed), one `Exchange` request per batch.

use crate::pb;
use crate::peer_channels::PeerChannels;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Code, Streaming};

/// How a link reaches its peer.
pub(crate) enum Opened {
    Stream(Box<LinkStream>),
    /// The peer has no `ExchangeStream`: one `Exchange` at a time.
    Unary,
}

/// An open `ExchangeStream` to a peer.
pub(crate) struct LinkStream {
    batches: mpsc::UnboundedSender<pb::ExchangeRpc>,
    replies: Streaming<pb::ExchangeReply>,
}

impl LinkStream {
    /// Opens a stream to the peer at `addr`, within `deadline`.
    pub(crate) async fn open(
        channels: &PeerChannels,
        addr: &str,
        deadline: Duration,
    ) -> Result<Opened, String> {
        let mut client = channels.link_client(addr).map_err(|e| e.to_string())?;
        let (batches, rx) = mpsc::unbounded_channel();
        let outbound = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|rpc| (rpc, rx))
        });
        match tokio::time::timeout(deadline, client.exchange_stream(outbound)).await {
            Ok(Ok(response)) => Ok(Opened::Stream(Box::new(LinkStream {
                batches,
                replies: response.into_inner(),
            }))),
            Ok(Err(status)) if status.code() == Code::Unimplemented => Ok(Opened::Unary),
            Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
            Err(_) => Err("timed out".to_string()),
        }
    }

    /// Sends a batch (it goes out behind the ones sent before).
    pub(crate) fn send(&self, rpc: pb::ExchangeRpc) -> Result<(), String> {
        self.batches
            .send(rpc)
            .map_err(|_| "the stream is closed".to_string())
    }

    /// The reply to the oldest batch not yet answered.
    pub(crate) async fn reply(&mut self) -> Result<pb::ExchangeReply, String> {
        match self.replies.message().await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err("the peer ended the stream".to_string()),
            Err(status) => Err(format!("{}: {}", status.code(), status.message())),
        }
    }
}

/// One `Exchange` request to the peer at `addr`, within `deadline`.
pub(crate) async fn exchange_once(
    channels: &PeerChannels,
    addr: &str,
    rpc: pb::ExchangeRpc,
    deadline: Duration,
) -> Result<pb::ExchangeReply, String> {
    let mut client = channels.link_client(addr).map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(rpc);
    request.set_timeout(deadline);
    match tokio::time::timeout(deadline, client.exchange(request)).await {
        Ok(Ok(reply)) => Ok(reply.into_inner()),
        Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
        Err(_) => Err("timed out".to_string()),
    }
}
