//! The gRPC `BrokerLink` service: batches from peers' links, checked for route continuity,
//! decoded, and handed to the broker ([`crate::LinkHandler`]).

use crate::forwarded_batch::decode_forwarded;
use crate::link_handler::{Inbound, RouteUpdate};
use crate::links::Links;
use crate::pb;
use crate::pb::broker_link_server::{BrokerLink, BrokerLinkServer};
use crate::pb_impl::command_from_op;
use crate::peer_channels::MAX_MESSAGE_BYTES;
use crate::WallClock;
use tonic::{Request, Response, Status};

/// Serves one node's `BrokerLink`.
pub(crate) struct LinkService {
    links: Links,
}

impl LinkService {
    /// The tonic service of `links`' node.
    pub(crate) fn service(links: Links) -> BrokerLinkServer<LinkService> {
        BrokerLinkServer::new(LinkService { links })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl BrokerLink for LinkService {
    async fn exchange(
        &self,
        request: Request<pb::ExchangeRpc>,
    ) -> Result<Response<pb::ExchangeReply>, Status> {
        let Some(handler) = self.links.handler().cloned() else {
            return Err(Status::unavailable("the broker is still starting"));
        };
        let mut rpc = request.into_inner();
        // A batch that does not decode is refused whole, before anything in it is applied:
        // the sender's publishers are then not acknowledged, and it resends its routes.
        let packets = std::mem::take(&mut rpc.publish_packets);
        let groups = std::mem::take(&mut rpc.groups);
        let publishes = decode_forwarded(packets, groups).map_err(|e| {
            tracing::warn!(peer = rpc.from_node, error = %e, "refusing a batch of forwarded publishes");
            Status::invalid_argument(format!("a forwarded publish does not decode: {e}"))
        })?;
        let (apply, resync) = self.links.accept_routes(&rpc);
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
        let handed = handler.exchange(rpc.from_node, batch).await;
        let clock = WallClock::now();
        let sessions = handed
            .into_iter()
            .map(|(client_id, ops)| pb::HandedOff {
                client_id: client_id.to_string(),
                ops: ops.iter().map(|op| command_from_op(op, &clock)).collect(),
            })
            .collect();
        Ok(Response::new(pb::ExchangeReply {
            resync_routes: resync,
            sessions,
        }))
    }
}
