//! The gRPC `BrokerLink` service: batches from peers' links, checked for route continuity,
//! decoded, and handed to the broker ([`crate::LinkHandler`]).

use crate::link_handler::{Inbound, RouteUpdate};
use crate::links::Links;
use crate::pb;
use crate::pb::broker_link_server::{BrokerLink, BrokerLinkServer};
use crate::pb_impl::{command_from_op, forwarded_from_pb};
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
        let (apply, resync) = self.links.accept_routes(&rpc);
        let routes = apply.then(|| RouteUpdate {
            full: rpc.routes_full,
            add: std::mem::take(&mut rpc.routes_add),
            remove: std::mem::take(&mut rpc.routes_remove),
        });
        let mut publishes = Vec::with_capacity(rpc.publishes.len());
        for forwarded in rpc.publishes {
            match forwarded_from_pb(forwarded) {
                Ok(p) => publishes.push(p),
                Err(e) => {
                    tracing::warn!(peer = rpc.from_node, error = %e, "dropping a bad forwarded publish")
                }
            }
        }
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
