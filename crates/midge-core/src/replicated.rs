//! Durable changes decided by another node's broker, applied here once the cluster committed
//! them (`Broker::apply_replicated`).

use crate::{Broker, DurableOp, Message};
use bytes::Bytes;
use midge_codec::{Publish, QoS};

impl Broker {
    /// Applies `op`, decided by another node's broker and committed by the cluster, to this
    /// broker's shared state: retained messages are set or cleared exactly as committed (the
    /// limits were checked where the publish arrived). Session ops belong to the node their
    /// client is connected to and are ignored. Emits nothing: no subscriber gets a retained
    /// message from this (live delivery across nodes is the route layer's).
    pub fn apply_replicated(&mut self, op: DurableOp) {
        match op {
            DurableOp::RetainedSet { topic, mut message } => {
                message.publish.topic = topic;
                message.publish.retain = true;
                self.retained.set(message);
            }
            DurableOp::RetainedClear { topic } => {
                // An empty retained payload deletes (MQTT-3.3.1-6).
                self.retained.set(Message {
                    publish: Publish {
                        dup: false,
                        qos: QoS::AtMostOnce,
                        retain: true,
                        topic,
                        packet_id: None,
                        properties: Default::default(),
                        payload: Bytes::new(),
                    },
                    expires_at: None,
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Broker, BrokerConfig, DurableOp, Message};
    use bytes::Bytes;
    use midge_codec::{Publish, QoS};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn retained_changes_from_other_nodes_are_applied() {
        let mut broker = Broker::new(BrokerConfig::default(), Instant::now());
        let topic: Arc<str> = Arc::from("a/b");
        let message = Message {
            publish: Publish {
                dup: false,
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: topic.clone(),
                packet_id: None,
                properties: Default::default(),
                payload: Bytes::from_static(b"x"),
            },
            expires_at: None,
        };
        broker.apply_replicated(DurableOp::RetainedSet {
            topic: topic.clone(),
            message,
        });
        assert_eq!(broker.stats().retained_messages, 1);
        broker.apply_replicated(DurableOp::RetainedClear { topic });
        assert_eq!(broker.stats().retained_messages, 0);
    }
}
