//! CONNECT (3.1).

use crate::{ConnectProperties, ProtocolVersion, QoS, WillProperties};
use bytes::Bytes;
use std::sync::Arc;

/// A CONNECT packet. Decoding it fixes the connection's protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version from the protocol name and level.
    pub protocol: ProtocolVersion,
    /// Clean Session (v3) / Clean Start (v5).
    pub clean_start: bool,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Client identifier; may be empty.
    pub client_id: String,
    /// The will message, if the will flag is set.
    pub will: Option<LastWill>,
    /// User name, if the flag is set.
    pub username: Option<String>,
    /// Password, if the flag is set.
    pub password: Option<Bytes>,
    /// v5 properties (empty for v3).
    pub properties: ConnectProperties,
}

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    /// Will topic (a topic name: no wildcards).
    pub topic: Arc<str>,
    /// Will payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
    /// v5 will properties.
    pub properties: WillProperties,
}
