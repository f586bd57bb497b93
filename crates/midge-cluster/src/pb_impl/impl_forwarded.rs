//! `(midge_codec::Publish, shared groups, share key)` <-> `pb::ForwardedPublish`.

use super::{qos_from_pb, FieldError};
use crate::pb;
use midge_codec::{Publish, PublishProperties};
use std::sync::Arc;

/// A publish forwarded to a peer, with the shared groups the peer serves for it and the
/// publisher's share key.
pub fn forwarded_to_pb(
    publish: &Publish,
    groups: &[Arc<str>],
    share_key: u64,
) -> pb::ForwardedPublish {
    pb::ForwardedPublish {
        topic: publish.topic.to_string(),
        payload: publish.payload.clone(),
        qos: publish.qos as u32,
        retain: publish.retain,
        properties: Some((&publish.properties).into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        share_key,
    }
}

/// A forwarded publish as the receiving core takes it (no packet id, DUP clear), with its
/// groups and share key.
pub fn forwarded_from_pb(
    forwarded: pb::ForwardedPublish,
) -> Result<(Publish, Vec<Arc<str>>, u64), FieldError> {
    let qos = qos_from_pb(forwarded.qos, "ForwardedPublish.qos")?;
    let properties = match forwarded.properties {
        Some(p) => PublishProperties::try_from(p)?,
        None => PublishProperties::default(),
    };
    let publish = Publish {
        dup: false,
        qos,
        retain: forwarded.retain,
        topic: Arc::from(forwarded.topic),
        packet_id: None,
        properties,
        payload: forwarded.payload,
    };
    let groups = forwarded.groups.into_iter().map(Arc::from).collect();
    Ok((publish, groups, forwarded.share_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::QoS;

    #[test]
    fn a_forwarded_publish_round_trips_with_its_groups() {
        let mut publish = Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: Arc::from("a/b"),
            packet_id: None,
            properties: PublishProperties::default(),
            payload: Bytes::from_static(b"hi"),
        };
        publish.properties.message_expiry_interval = Some(7);
        publish.properties.content_type = Some(Arc::from("text/plain"));
        let groups: Vec<Arc<str>> = vec![Arc::from("g/a/#")];
        let (back, back_groups, key) =
            forwarded_from_pb(forwarded_to_pb(&publish, &groups, 7)).unwrap();
        assert_eq!(back, publish);
        assert_eq!(back_groups, groups);
        assert_eq!(key, 7);
    }

    #[test]
    fn a_bad_qos_is_refused() {
        let bad = pb::ForwardedPublish {
            qos: 3,
            ..Default::default()
        };
        assert!(forwarded_from_pb(bad).is_err());
    }
}
