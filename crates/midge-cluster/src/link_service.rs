//! The gRPC `BrokerLink` service: batches from peers' links, checked for route continuity,
//! decoded, and handed to the broker ([`crate::LinkHandler`]).

use crate::forwarded_batch::decode_forwarded;
use crate::link_handler::{Inbound, RouteUpdate};
use crate::links::Links;
use crate::pb;
use crate::pb::broker_link_server::{BrokerLink, BrokerLinkServer};
use crate::pb_impl::command_from_op;
use crate::peer_channels::MAX_MESSAGE_BYTES;
use crate::reply_stream::ReplyStream;
use crate::WallClock;
use std::future::Future;
use std::pin::Pin;
use tonic::{Request, Response, Status, Streaming};

/// The answer to one batch, ready once the batch is durable.
pub(crate) type Answer = Pin<Box<dyn Future<Output = pb::ExchangeReply> + Send>>;

/// Serves one node's `BrokerLink`.
#[derive(Clone)]
pub(crate) struct LinkService {
    links: Links,
}

impl LinkService {
    /// Serves what peers send to `links`' node.
    pub(crate) fn new(links: Links) -> Self {
        LinkService { links }
    }

    /// The tonic service of `links`' node.
    pub(crate) fn service(links: Links) -> BrokerLinkServer<LinkService> {
        BrokerLinkServer::new(LinkService::new(links))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Applies one batch now; the answer is ready once what it queued is durable.
    pub(crate) fn accept(&self, mut rpc: pb::ExchangeRpc) -> Result<Answer, Status> {
        let Some(handler) = self.links.handler().cloned() else {
            return Err(Status::unavailable("the broker is still starting"));
        };
        // A batch that does not decode is refused whole, before anything in it is applied:
        // the sender's publishers are then not acknowledged, and it resends its routes.
        let packets = std::mem::take(&mut rpc.publish_packets);
        let groups = std::mem::take(&mut rpc.groups);
        let publishes = decode_forwarded(packets, groups).map_err(|e| {
            tracing::warn!(peer = rpc.from_node, error = %e, "refusing a batch of forwarded publishes");
            Status::invalid_argument(format!("a forwarded publish does not decode: {e}"))
        })?;
        let (apply, resync_routes) = self.links.accept_routes(&rpc);
        let routes = apply.then(|| RouteUpdate {
            full: rpc.routes_full,
            add: std::mem::take(&mut rpc.routes_add),
            remove: std::mem::take(&mut rpc.routes_remove),
        });
        let batch = Inbound {
            routes,
            claims: rpc.claims,
            publishes,
        };
        let applied = handler.exchange(rpc.from_node, batch);
        Ok(Box::pin(async move {
            let handed = applied.await;
            let clock = WallClock::now();
            let sessions = handed
                .into_iter()
                .map(|(client_id, ops)| pb::HandedOff {
                    client_id: client_id.to_string(),
                    ops: ops.iter().map(|op| command_from_op(op, &clock)).collect(),
                })
                .collect();
            pb::ExchangeReply {
                resync_routes,
                sessions,
            }
        }))
    }
}

#[tonic::async_trait]
impl BrokerLink for LinkService {
    async fn exchange(
        &self,
        request: Request<pb::ExchangeRpc>,
    ) -> Result<Response<pb::ExchangeReply>, Status> {
        let answer = self.accept(request.into_inner())?;
        Ok(Response::new(answer.await))
    }

    type ExchangeStreamStream = ReplyStream;

    async fn exchange_stream(
        &self,
        request: Request<Streaming<pb::ExchangeRpc>>,
    ) -> Result<Response<ReplyStream>, Status> {
        Ok(Response::new(ReplyStream::new(
            self.clone(),
            request.into_inner(),
        )))
    }
}
