//! midge-codec: a pure MQTT 3.1, 3.1.1 and 5.0 codec, bytes <-> packets.
//!
//! Owns the wire format: fixed headers, variable-length integers, every packet type,
//! v5 properties and reason codes, and strict validation with the reason code the spec
//! names. It must not touch sockets, tokio, logging, config or broker state: it is a set of
//! pure functions over byte buffers, so it can be fuzzed and property-tested in isolation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Decoding runs on untrusted input: outside tests, nothing may unwrap or panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod error;
mod packet;
mod primitives;
mod properties;
#[cfg(test)]
mod proptests;
mod publish;
mod qos;
mod reason;
#[cfg(test)]
mod strategies;
mod suback;
mod subscribe;
#[cfg(test)]
mod test_util;
pub mod topic;
mod unsuback;
mod unsubscribe;
mod version;

pub use ack::{Ack, AckKind};
pub use auth::Auth;
pub use connack::ConnAck;
pub use connect::{Connect, LastWill};
pub use disconnect::Disconnect;
pub use error::{DecodeError, EncodeError};
pub use packet::{decode, encode, encoded_len, Packet};
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    EmptySet, PublishProperties, Sparse, SubscribeProperties, UserProperties, WillProperties,
};
pub use publish::Publish;
pub use qos::QoS;
pub use reason::ReasonCode;
pub use suback::SubAck;
pub use subscribe::{RetainHandling, Subscribe, SubscriptionOptions, TopicSubscription};
pub use unsuback::UnsubAck;
pub use unsubscribe::Unsubscribe;
pub use version::ProtocolVersion;

/// A packet identifier; never zero on the wire for packets that carry one.
pub type PacketId = u16;

/// The largest packet size MQTT can express: 268,435,455 bytes of remaining length plus header.
pub const MAX_PACKET_SIZE: u32 = 268_435_460;
