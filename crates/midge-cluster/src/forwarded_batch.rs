//! The forwarded publishes of one exchange, on the wire: MQTT 5.0 PUBLISH packets back to
//! back in one buffer (the codec every node already has, with zero-copy payloads on the
//! way in), plus the shared groups of the few that have any.

use crate::pb;
use bytes::{Bytes, BytesMut};
use midge_codec::{Packet, ProtocolVersion, Publish, QoS};
use std::sync::Arc;

/// A publish as a peer receives it: the message, the shared groups it serves for it, and
/// the publisher's share key.
pub type Forwarded = (Publish, Vec<Arc<str>>, u64);

/// Builds the publishes of one exchange.
#[derive(Debug, Default)]
pub(crate) struct ForwardedBatch {
    packets: BytesMut,
    groups: Vec<pb::ForwardedGroups>,
    count: u32,
}

impl ForwardedBatch {
    /// Appends `publish` (for `groups`, with `share_key`); false if it cannot be encoded
    /// (it is then left out).
    pub(crate) fn push(
        &mut self,
        mut publish: Publish,
        groups: &[Arc<str>],
        share_key: u64,
    ) -> bool {
        // A packet id is part of a QoS 1/2 PUBLISH; the receiver ignores it.
        publish.packet_id = (publish.qos != QoS::AtMostOnce).then_some(1);
        publish.dup = false;
        if publish.properties.topic_alias.is_some() {
            publish.properties.make_mut().topic_alias = None;
        }
        let packet = Packet::Publish(publish);
        if let Err(e) = midge_codec::encode(&packet, ProtocolVersion::V5, &mut self.packets) {
            tracing::warn!(error = %e, "cannot forward a publish");
            return false;
        }
        if !groups.is_empty() || share_key != 0 {
            self.groups.push(pb::ForwardedGroups {
                index: self.count,
                groups: groups.iter().map(|g| g.to_string()).collect(),
                share_key,
            });
        }
        self.count += 1;
        true
    }

    /// How many publishes it holds.
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    /// The wire fields, leaving the batch empty.
    pub(crate) fn take(&mut self) -> (Bytes, Vec<pb::ForwardedGroups>) {
        self.count = 0;
        (
            std::mem::take(&mut self.packets).freeze(),
            std::mem::take(&mut self.groups),
        )
    }
}

/// The publishes of a received exchange, in order; an error if any packet does not decode.
pub(crate) fn decode_forwarded(
    packets: Bytes,
    groups: Vec<pb::ForwardedGroups>,
) -> Result<Vec<Forwarded>, String> {
    let mut buf = BytesMut::from(packets);
    let mut groups = groups.into_iter().peekable();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let publish = match midge_codec::decode(
            &mut buf,
            ProtocolVersion::V5,
            midge_codec::MAX_PACKET_SIZE,
        ) {
            Ok(Some(Packet::Publish(p))) => p,
            Ok(Some(other)) => return Err(format!("not a PUBLISH: {other:?}")),
            Ok(None) => return Err("a truncated PUBLISH".to_string()),
            Err(e) => return Err(e.to_string()),
        };
        let index = out.len() as u32;
        let (names, key) = match groups.next_if(|g| g.index == index) {
            Some(g) => (g.groups.into_iter().map(Arc::from).collect(), g.share_key),
            None => (Vec::new(), 0),
        };
        out.push((publish, names, key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, qos: QoS, payload: &'static [u8]) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: Arc::from(topic),
            packet_id: None,
            properties: Default::default(),
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn a_batch_round_trips_with_its_groups_and_keys() {
        let mut a = publish("a/b", QoS::ExactlyOnce, b"hi");
        a.retain = true;
        a.properties.make_mut().message_expiry_interval = Some(7);
        a.properties.make_mut().content_type = Some(Arc::from("text/plain"));
        let b = publish("c", QoS::AtMostOnce, b"");
        let c = publish("d/e", QoS::AtLeastOnce, b"x");
        let mut batch = ForwardedBatch::default();
        assert!(batch.push(a.clone(), &[], 0));
        assert!(batch.push(b.clone(), &[Arc::from("g/c")], 9));
        assert!(batch.push(c.clone(), &[], 0));
        assert_eq!(batch.len(), 3);
        let (packets, groups) = batch.take();
        assert_eq!(batch.len(), 0);
        let got = decode_forwarded(packets, groups).expect("decodes");
        // The receiver sees no packet id (as_published clears it anyway).
        let strip = |mut p: Publish| {
            p.packet_id = None;
            p
        };
        let got: Vec<Forwarded> = got.into_iter().map(|(p, g, k)| (strip(p), g, k)).collect();
        assert_eq!(
            got,
            vec![
                (a, vec![], 0),
                (b, vec![Arc::from("g/c")], 9),
                (c, vec![], 0)
            ]
        );
    }

    #[test]
    fn garbage_ends_the_batch_with_an_error() {
        let mut batch = ForwardedBatch::default();
        assert!(batch.push(publish("a", QoS::AtLeastOnce, b"1"), &[], 0));
        let (packets, groups) = batch.take();
        let mut bad = BytesMut::from(&packets[..]);
        bad.extend_from_slice(&[0x30, 0x05, 0x00]);
        let err = decode_forwarded(bad.freeze(), groups).expect_err("truncated");
        assert!(err.contains("truncated"), "{err}");
    }
}
