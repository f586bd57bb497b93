//! The receiving end of a peer's `ExchangeStream`: the replies, as a stream that applies the
//! peer's batches as it reads them.
//!
//! No task of its own: the HTTP/2 server polls the replies, and each poll reads whatever
//! batches have arrived, applies them in order (under the broker's lock, as `Exchange` does)
//! and answers them in the same order as they become durable. Several batches may wait for
//! durability at once; the sender's window bounds how many.

use crate::link_service::{Answer, LinkService};
use crate::pb;
use futures_util::stream::{FuturesOrdered, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::{Status, Streaming};

/// Batches applied and not yet answered beyond which no more are read (senders keep fewer
/// in flight; this bounds a misbehaving one).
const MAX_PENDING: usize = 64;

/// The replies to one peer's stream of batches.
pub(crate) struct ReplyStream {
    service: LinkService,
    batches: Streaming<pb::ExchangeRpc>,
    pending: FuturesOrdered<Answer>,
    /// No more batches will be read: the peer ended its stream, or one was refused.
    ended: bool,
    /// A refusal to send once the batches before it are answered.
    refused: Option<Status>,
}

impl ReplyStream {
    pub(crate) fn new(service: LinkService, batches: Streaming<pb::ExchangeRpc>) -> Self {
        ReplyStream {
            service,
            batches,
            pending: FuturesOrdered::new(),
            ended: false,
            refused: None,
        }
    }

    /// Reads and applies every batch that has arrived (while fewer than `MAX_PENDING` wait).
    fn read(&mut self, cx: &mut Context<'_>) {
        while !self.ended && self.pending.len() < MAX_PENDING {
            match Pin::new(&mut self.batches).poll_next(cx) {
                Poll::Ready(Some(Ok(rpc))) => match self.service.accept(rpc) {
                    Ok(answer) => self.pending.push_back(answer),
                    Err(status) => {
                        // Nothing after a refused batch is applied: the sender fails every
                        // batch from it on and starts over.
                        self.ended = true;
                        self.refused = Some(status);
                    }
                },
                Poll::Ready(Some(Err(status))) => {
                    tracing::debug!(%status, "a peer's link stream broke");
                    self.ended = true;
                }
                Poll::Ready(None) => self.ended = true,
                Poll::Pending => break,
            }
        }
    }
}

impl Stream for ReplyStream {
    type Item = Result<pb::ExchangeReply, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.read(cx);
        match Pin::new(&mut this.pending).poll_next(cx) {
            Poll::Ready(Some(reply)) => Poll::Ready(Some(Ok(reply))),
            Poll::Pending => Poll::Pending,
            // Every batch read so far is answered.
            Poll::Ready(None) if this.ended => Poll::Ready(this.refused.take().map(Err)),
            Poll::Ready(None) => Poll::Pending,
        }
    }
}
