//! UNSUBSCRIBE (3.10).

use crate::{PacketId, UserProperties};

/// An UNSUBSCRIBE packet; it carries at least one filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: PacketId,
    /// Topic filters, in order.
    pub filters: Vec<String>,
    /// v5 user properties (the only property UNSUBSCRIBE has).
    pub user_properties: UserProperties,
}
