//! v5 topic aliases, one map per direction and per network connection (MQTT-3.3.2-7: aliases
//! never outlive the connection).

use midge_codec::Publish;
use std::collections::HashMap;
use std::sync::Arc;

/// Why an incoming Topic Alias was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasError {
    /// Alias 0 or above the maximum we advertised: DISCONNECT 0x94 (MQTT-3.3.2-8, -9).
    Invalid,
    /// Empty topic with an alias we never saw: DISCONNECT 0x82 Protocol Error.
    Unknown,
}

/// Aliases the client set up towards us.
#[derive(Debug, Clone, Default)]
pub struct InboundAliases {
    topics: Vec<Option<Arc<str>>>,
}

impl InboundAliases {
    /// Resolves the Topic Alias of `publish` (if any) against aliases up to `maximum`,
    /// recording a new mapping when topic and alias are both given; on success the topic is
    /// filled in and the alias property removed.
    pub fn resolve(&mut self, publish: &mut Publish, maximum: u16) -> Result<(), AliasError> {
        let alias = publish
            .properties
            .get_mut()
            .and_then(|p| p.topic_alias.take());
        let Some(alias) = alias else {
            return Ok(());
        };
        if alias == 0 || alias > maximum {
            return Err(AliasError::Invalid);
        }
        let slot = usize::from(alias);
        if publish.topic.is_empty() {
            match self.topics.get(slot).and_then(Option::as_ref) {
                Some(topic) => publish.topic = topic.clone(),
                None => return Err(AliasError::Unknown),
            }
        } else {
            if self.topics.len() <= slot {
                self.topics.resize(slot + 1, None);
            }
            self.topics[slot] = Some(publish.topic.clone());
        }
        Ok(())
    }
}

/// Aliases we set up towards the client: the first `maximum` distinct topics get one each.
/// A pointer in every connection record; only a client that allows aliases has a table.
#[derive(Debug, Clone)]
pub struct OutboundAliases(Option<Box<AliasTable>>);

/// The aliases of a client that allows some.
#[derive(Debug, Clone)]
struct AliasTable {
    maximum: u16,
    by_topic: HashMap<Arc<str>, u16>,
    empty: Arc<str>,
}

/// What [`OutboundAliases::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasUse {
    /// No alias: full topic.
    None,
    /// A new alias sent together with the full topic.
    New(u16),
    /// A known alias sent with an empty topic.
    Existing(u16),
}

impl OutboundAliases {
    /// No aliases until the client allows `maximum` of them (MQTT-3.1.2-26/-27); `empty` is a
    /// shared empty topic string.
    pub fn new(maximum: u16, empty: Arc<str>) -> OutboundAliases {
        OutboundAliases((maximum > 0).then(|| {
            Box::new(AliasTable {
                maximum,
                by_topic: HashMap::new(),
                empty,
            })
        }))
    }

    /// Rewrites `publish` to use an alias where possible.
    pub fn apply(&mut self, publish: &mut Publish) -> AliasUse {
        if publish.properties.topic_alias.is_some() {
            publish.properties.make_mut().topic_alias = None;
        }
        let Some(table) = self.0.as_deref_mut() else {
            return AliasUse::None;
        };
        if let Some(&alias) = table.by_topic.get(&publish.topic) {
            publish.topic = table.empty.clone();
            publish.properties.make_mut().topic_alias = Some(alias);
            return AliasUse::Existing(alias);
        }
        if table.by_topic.len() >= usize::from(table.maximum) {
            return AliasUse::None;
        }
        let alias = (table.by_topic.len() + 1) as u16;
        table.by_topic.insert(publish.topic.clone(), alias);
        publish.properties.make_mut().topic_alias = Some(alias);
        AliasUse::New(alias)
    }

    /// Undoes a [`AliasUse::New`] for `topic` whose packet was never sent.
    pub fn forget(&mut self, topic: &str) {
        if let Some(table) = self.0.as_deref_mut() {
            table.by_topic.remove(topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::{PublishProperties, QoS};

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: None,
            properties: PublishProperties {
                topic_alias: alias,
                ..Default::default()
            }
            .into(),
            payload: Bytes::new(),
        }
    }

    #[test]
    fn inbound() {
        let mut a = InboundAliases::default();
        let mut p = publish("a/b", Some(3));
        assert_eq!(a.resolve(&mut p, 5), Ok(()));
        assert_eq!(p.properties.topic_alias, None);
        let mut p = publish("", Some(3));
        assert_eq!(a.resolve(&mut p, 5), Ok(()));
        assert_eq!(&*p.topic, "a/b");
        assert_eq!(
            a.resolve(&mut publish("", Some(2)), 5),
            Err(AliasError::Unknown)
        );
        assert_eq!(
            a.resolve(&mut publish("x", Some(0)), 5),
            Err(AliasError::Invalid)
        );
        assert_eq!(
            a.resolve(&mut publish("x", Some(6)), 5),
            Err(AliasError::Invalid)
        );
    }

    #[test]
    fn outbound() {
        let mut a = OutboundAliases::new(1, "".into());
        let mut p = publish("a", None);
        assert_eq!(a.apply(&mut p), AliasUse::New(1));
        assert_eq!(&*p.topic, "a");
        let mut p = publish("a", None);
        assert_eq!(a.apply(&mut p), AliasUse::Existing(1));
        assert_eq!(&*p.topic, "");
        let mut p = publish("b", None);
        assert_eq!(a.apply(&mut p), AliasUse::None);
        assert_eq!(p.properties.topic_alias, None);
        a.forget("a");
        assert_eq!(a.apply(&mut publish("b", None)), AliasUse::New(1));
    }
}
