//! MQTT 5 properties, one struct per packet kind that carries them.
//! Each struct only has the properties the spec allows on that packet; the decoder rejects
//! any other property, and any duplicate of a single-valued property, as a Protocol Error.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod sparse;
mod subscribe;
mod value;
mod will;

pub use ack::AckProperties;
pub use auth::AuthProperties;
pub use connack::ConnAckProperties;
pub use connect::ConnectProperties;
pub use disconnect::DisconnectProperties;
pub use publish::PublishProperties;
pub use sparse::{EmptySet, Sparse};
pub use subscribe::SubscribeProperties;
pub use will::WillProperties;

pub(crate) use value::{id, not_allowed, set_once, Property};

use crate::primitives::{measure, Reader, Sink};
use crate::reason::ReasonContext;
use crate::{DecodeError, EncodeError, ReasonCode};

/// User properties: name/value string pairs, order preserved, duplicates allowed.
pub type UserProperties = Vec<(String, String)>;

/// A packet's property set: how to take in each decoded property and how to write them all.
pub(crate) trait PropertySet: Default {
    /// Stores one property, or rejects it as not allowed here / duplicated / invalid.
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError>;

    /// Checks that involve several properties, once the whole block is read.
    fn validate(&self) -> Result<(), DecodeError> {
        Ok(())
    }

    /// Writes every present property (identifier and value), without the length prefix.
    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError>;
}

/// A sparse set is absent until decoding meets its first property, and writes what it holds.
impl<T: PropertySet + EmptySet> PropertySet for Sparse<T> {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        self.make_mut().apply(p)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        (**self).validate()
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        (**self).write(s)
    }
}

/// Reads a property block: its length, then identifier/value pairs filling exactly that length.
pub(crate) fn decode<P: PropertySet>(r: &mut Reader<'_>) -> Result<P, DecodeError> {
    let len = r.varint()?;
    // A property length running past the end of the packet is Malformed (2.2.2.1).
    let mut block = r.sub(len as usize)?;
    let mut props = P::default();
    while !block.is_empty() {
        props.apply(Property::read(&mut block)?)?;
    }
    props.validate()?;
    Ok(props)
}

/// Reads a user-properties-only block (UNSUBSCRIBE).
pub(crate) fn decode_user(r: &mut Reader<'_>) -> Result<UserProperties, DecodeError> {
    decode::<UserOnly>(r).map(|u| u.0)
}

/// Writes a property block with its exact length prefix.
pub(crate) fn encode<P: PropertySet, S: Sink>(props: &P, s: &mut S) -> Result<(), EncodeError> {
    let len = measure(|c| props.write(c))?;
    let len = u32::try_from(len).map_err(|_| EncodeError::PacketTooLarge)?;
    s.write_varint(len)
        .map_err(|_| EncodeError::PacketTooLarge)?;
    props.write(s)
}

/// Writes a user-properties-only block (UNSUBSCRIBE).
pub(crate) fn encode_user<S: Sink>(user: &UserProperties, s: &mut S) -> Result<(), EncodeError> {
    let len = measure(|c| put_users(c, user))?;
    let len = u32::try_from(len).map_err(|_| EncodeError::PacketTooLarge)?;
    s.write_varint(len)
        .map_err(|_| EncodeError::PacketTooLarge)?;
    put_users(s, user)
}

/// Reads the optional tail shared by v5 acks, DISCONNECT and AUTH: nothing left means Success
/// with no properties, one byte means a reason without properties (3.4.2.1, 3.14.2.1,
/// 3.15.2.1). A reason not in the packet's table is Malformed.
pub(crate) fn decode_with_reason<P: PropertySet>(
    r: &mut Reader<'_>,
    ctx: ReasonContext,
    bad_reason: &'static str,
) -> Result<(ReasonCode, P), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::Success, P::default()));
    }
    let reason = ReasonCode::from_u8(r.u8()?)
        .filter(|c| c.allowed_in(ctx))
        .ok_or(DecodeError::Malformed(bad_reason))?;
    let props = if r.is_empty() {
        P::default()
    } else {
        decode(r)?
    };
    Ok((reason, props))
}

/// Writes that tail in its shortest form: nothing for Success without properties, the reason
/// alone without properties, else both.
pub(crate) fn encode_with_reason<P: PropertySet, S: Sink>(
    s: &mut S,
    reason: ReasonCode,
    props: &P,
    props_empty: bool,
) -> Result<(), EncodeError> {
    if reason == ReasonCode::Success && props_empty {
        return Ok(());
    }
    s.write_u8(reason as u8);
    if props_empty {
        return Ok(());
    }
    encode(props, s)
}

/// The property set of UNSUBSCRIBE, which only allows User Property (3.10.2.1).
#[derive(Default)]
struct UserOnly(UserProperties);

impl PropertySet for UserOnly {
    fn apply(&mut self, p: Property<'_>) -> Result<(), DecodeError> {
        match p {
            Property::User(k, v) => push_user(&mut self.0, k, v),
            _ => return Err(not_allowed()),
        }
        Ok(())
    }

    fn write<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        put_users(s, &self.0)
    }
}

/// Appends one decoded User Property (it may repeat, order is kept: 3.1.2.11.8).
pub(crate) fn push_user(user: &mut UserProperties, k: &str, v: &str) {
    user.push((k.to_owned(), v.to_owned()));
}

/// Writes a byte property if present.
pub(crate) fn put_byte<S: Sink>(s: &mut S, id: u8, v: Option<u8>) {
    if let Some(v) = v {
        s.write_u8(id);
        s.write_u8(v);
    }
}

/// Writes a two-byte integer property if present.
pub(crate) fn put_u16<S: Sink>(s: &mut S, id: u8, v: Option<u16>) {
    if let Some(v) = v {
        s.write_u8(id);
        s.write_u16(v);
    }
}

/// Writes a four-byte integer property if present.
pub(crate) fn put_u32<S: Sink>(s: &mut S, id: u8, v: Option<u32>) {
    if let Some(v) = v {
        s.write_u8(id);
        s.write_u32(v);
    }
}

/// Writes a variable byte integer property.
pub(crate) fn put_varint<S: Sink>(s: &mut S, id: u8, v: u32) -> Result<(), EncodeError> {
    s.write_u8(id);
    s.write_varint(v)
}

/// Writes a string property if present.
pub(crate) fn put_str<S: Sink>(s: &mut S, id: u8, v: Option<&str>) -> Result<(), EncodeError> {
    match v {
        Some(v) => {
            s.write_u8(id);
            s.write_str(v)
        }
        None => Ok(()),
    }
}

/// Writes a binary property if present.
pub(crate) fn put_binary<S: Sink>(s: &mut S, id: u8, v: Option<&[u8]>) -> Result<(), EncodeError> {
    match v {
        Some(v) => {
            s.write_u8(id);
            s.write_binary(v)
        }
        None => Ok(()),
    }
}

/// Writes every User Property, in order.
pub(crate) fn put_users<S: Sink>(s: &mut S, user: &UserProperties) -> Result<(), EncodeError> {
    for (k, v) in user {
        s.write_u8(id::USER_PROPERTY);
        s.write_str(k)?;
        s.write_str(v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
