//! SUBSCRIBE and UNSUBSCRIBE (MQTT 3.8 - 3.11), with retained messages for new subscriptions.

use crate::event::ConnId;
use crate::guards::FilterVerdict;
use crate::router::{SubEntry, SubKey};
use crate::session::Subscription;
use crate::session_store::SessionIdx;
use crate::{Action, Broker, DurableOp};
use midge_codec::topic::{is_valid_topic_filter, split_shared};
use midge_codec::{
    Packet, QoS, ReasonCode, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use std::time::Instant;

/// The SUBACK reason for a granted QoS.
fn granted_reason(qos: QoS) -> ReasonCode {
    match qos {
        QoS::AtMostOnce => ReasonCode::Success,
        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
    }
}

impl Broker {
    /// A SUBSCRIBE: one reason per filter in the SUBACK, then the matching retained messages.
    pub(crate) fn on_subscribe(
        &mut self,
        now: Instant,
        conn_id: ConnId,
        subscribe: Subscribe,
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let idx = conn.session;
        let identifier = subscribe.properties.subscription_identifier;
        if identifier.is_some() && !self.config.subscription_identifiers_available {
            return self.close_with(
                now,
                conn_id,
                ReasonCode::SubscriptionIdentifiersNotSupported,
                out,
            );
        }
        // No Local on a shared subscription is a Protocol Error (MQTT-3.8.3-4).
        if subscribe
            .filters
            .iter()
            .any(|f| f.options.no_local && split_shared(&f.filter).is_some())
        {
            return self.close_with(now, conn_id, ReasonCode::ProtocolError, out);
        }

        let Some(session) = self.sessions.get(idx) else {
            return;
        };
        let persistent = session.is_persistent();
        let persist_as = (self.config.durable && persistent).then(|| session.client_id.clone());
        let mut reasons = Vec::with_capacity(subscribe.filters.len());
        let mut retained_for = Vec::new();
        for f in subscribe.filters {
            if !is_valid_topic_filter(&f.filter) {
                reasons.push(ReasonCode::TopicFilterInvalid);
                continue;
            }
            let shared = split_shared(&f.filter);
            if shared.is_some() && !self.config.shared_subscription_available {
                reasons.push(ReasonCode::SharedSubscriptionsNotSupported);
                continue;
            }
            let inner = shared.map_or(f.filter.as_str(), |(_, inner)| inner);
            if !self.config.wildcard_subscription_available && inner.contains(['+', '#']) {
                reasons.push(ReasonCode::WildcardSubscriptionsNotSupported);
                continue;
            }
            // 0x87 Not authorized; the codec sends 0x80 to v3 clients.
            if !self.may_subscribe(conn_id, inner) {
                reasons.push(ReasonCode::NotAuthorized);
                continue;
            }
            let (held, existing) = self.held_subscriptions(conn_id, &f.filter);
            let verdict = self.guard_subscribe(inner, held, !existing);
            if let FilterVerdict::Refuse(reason) = verdict {
                reasons.push(reason);
                continue;
            }
            let granted = f.options.qos.min(self.config.maximum_qos);
            let mut options = f.options;
            options.qos = granted;
            let subscription = Subscription {
                options,
                identifier,
            };
            // A subscription to an existing filter replaces it (MQTT-3.8.4-3).
            let Some(existed) = self.add_subscription(idx, &f.filter, subscription) else {
                return;
            };
            if let Some(client_id) = &persist_as {
                let op = DurableOp::SubscriptionPut {
                    client_id: client_id.clone(),
                    filter: f.filter.clone(),
                    subscription,
                };
                self.persist(op, out);
            }
            if shared.is_none() {
                // Retain Handling 0: always send; 1: only for a new subscription; 2: never
                // (MQTT-3.3.1-9, -10, -11). Shared subscriptions get none.
                let send = match f.options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !existed,
                    RetainHandling::DoNotSend => false,
                };
                let replay = verdict != FilterVerdict::GrantWithoutRetained;
                if send && replay && self.config.retain_available {
                    retained_for.push((f.filter, granted));
                }
            }
            reasons.push(granted_reason(granted));
        }
        let suback = Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reasons,
            properties: Default::default(),
        });
        // The new routes go to peers first: the SUBACK waits for them.
        self.flush_routes(out);
        out.push(self.ack_action(conn_id, suback, persistent));

        if !retained_for.is_empty() {
            if let Some(session) = self.sessions.get_mut(idx) {
                for (filter, granted) in retained_for {
                    session.replay.push(&filter, granted, identifier);
                }
            }
            self.pump_replay(now, idx, out);
        }
    }

    /// Adds (or replaces) subscription `filter` (exactly as subscribed) of the session in
    /// slot `idx`: in the session, and in the subscription tree or its `$share` group.
    /// Returns whether it replaced one, or `None` if there is no such session.
    pub(crate) fn add_subscription(
        &mut self,
        idx: SessionIdx,
        filter: &str,
        subscription: Subscription,
    ) -> Option<bool> {
        let session = self.sessions.get_mut(idx)?;
        let existed = session
            .subscriptions
            .make_mut()
            .insert(filter.to_string(), subscription)
            .is_some();
        if !existed {
            self.subscription_count += 1;
            self.routes.add(filter);
        }
        let entry = SubEntry {
            qos: subscription.options.qos,
            no_local: subscription.options.no_local,
            retain_as_published: subscription.options.retain_as_published,
            identifier: subscription.identifier,
        };
        match split_shared(filter) {
            Some((_, inner)) => {
                let name = &filter["$share/".len()..];
                self.shared.join(&mut self.subs, name, inner, idx, entry);
            }
            None => {
                self.subs.insert(filter, SubKey::Direct(idx), entry);
            }
        }
        Some(existed)
    }

    /// An UNSUBSCRIBE: remove each filter, then UNSUBACK.
    pub(crate) fn on_unsubscribe(
        &mut self,
        conn_id: ConnId,
        unsubscribe: Unsubscribe,
        out: &mut Vec<Action>,
    ) {
        let Some(conn) = self.conns.get(&conn_id) else {
            return;
        };
        let idx = conn.session;
        let Some(session) = self.sessions.get(idx) else {
            return;
        };
        let persistent = session.is_persistent();
        let persist_as = (self.config.durable && persistent).then(|| session.client_id.clone());
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            let existed = self
                .sessions
                .get_mut(idx)
                .and_then(|s| s.subscriptions.get_mut()?.remove(&filter))
                .is_some();
            if existed {
                self.drop_subscription(idx, &filter);
                self.subscription_count -= 1;
                if let Some(client_id) = &persist_as {
                    let op = DurableOp::SubscriptionDelete {
                        client_id: client_id.clone(),
                        filter,
                    };
                    self.persist(op, out);
                }
                reasons.push(ReasonCode::Success);
            } else {
                reasons.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        // UNSUBACK even when nothing matched (MQTT-3.10.4-5).
        let unsuback = Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            reasons,
            properties: Default::default(),
        });
        out.push(self.ack_action(conn_id, unsuback, persistent));
    }
}
