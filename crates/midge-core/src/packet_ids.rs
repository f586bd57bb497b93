//! Packet identifier allocation for outgoing QoS 1 and 2 publishes.

use midge_codec::PacketId;

/// Hands out packet identifiers in increasing order (wrapping), never 0, skipping ids still in
/// use (MQTT-2.2.1-4: a new PUBLISH gets a non-zero identifier that is currently unused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIdAllocator {
    next: PacketId,
}

impl Default for PacketIdAllocator {
    fn default() -> Self {
        PacketIdAllocator { next: 1 }
    }
}

impl PacketIdAllocator {
    /// The next id for which `in_use` is false, or `None` if all 65,535 are in use.
    pub fn allocate(&mut self, in_use: impl Fn(PacketId) -> bool) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let id = self.next;
            self.next = if self.next == u16::MAX {
                1
            } else {
                self.next + 1
            };
            if !in_use(id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_zero_and_wraps() {
        let mut a = PacketIdAllocator { next: u16::MAX };
        assert_eq!(a.allocate(|_| false), Some(u16::MAX));
        assert_eq!(a.allocate(|_| false), Some(1));
    }

    #[test]
    fn skips_ids_in_use() {
        let mut a = PacketIdAllocator::default();
        assert_eq!(a.allocate(|id| id < 5), Some(5));
        assert_eq!(a.allocate(|_| true), None);
    }
}
