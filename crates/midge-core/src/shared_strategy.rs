//! How a `$share` group's message picks the node, among this one and the peers holding
//! members, and the member on that node (`BrokerConfig::shared_strategy`).

use crate::remote_routes::NodeId;

/// How each message of a shared group picks its member.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SharedStrategy {
    /// A connected member on the node where the message was published, round-robin; only
    /// when there is none, a peer holding members (round-robin over those peers), and only
    /// when there is none either, a local member that is offline (queued for it). The
    /// fewest forwards.
    #[default]
    LocalFirst,
    /// Round-robin over the nodes holding connected members (this node and the peers), then
    /// round-robin over that node's members: the load spreads evenly over nodes.
    RoundRobin,
    /// By a hash of the publishing client's id (of the topic for messages without one, such
    /// as `$SYS`): while the group's members stay the same, every message of one publisher
    /// goes to the same member, so that member sees them in order.
    ClientHash,
}

/// Where one message of a group goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Holder {
    /// A member on this node.
    Local,
    /// Peer `node`, which picks one of its members.
    Peer(NodeId),
}

/// The key of [`SharedStrategy::ClientHash`]: FNV-1a of `id`, the same on every node and in
/// every version, because a forwarded message carries it to the peer that picks the member.
pub(crate) fn share_key(id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The key that picks the member on the chosen node: mixed so that it does not repeat the
/// node choice (`key % nodes`), which would leave most members of each node unused.
pub(crate) fn member_key(key: u64) -> u64 {
    let mixed = u128::from(key ^ 0x5bd1_e995_9e37_79b9) * 0x9e37_79b9_7f4a_7c15;
    (mixed >> 64) as u64 ^ mixed as u64
}

impl SharedStrategy {
    /// The node for one message of a group, under `RoundRobin` or `ClientHash`: this node if
    /// `local` (it has a connected member) and chosen, else one of `peers` (holders of
    /// members, sorted). `cursor` is the group's round-robin position; `key` the share key.
    /// `None` without candidates. `LocalFirst` is decided by the router itself.
    pub(crate) fn choose(
        self,
        cursor: &mut usize,
        key: u64,
        local: bool,
        peers: &[NodeId],
    ) -> Option<Holder> {
        let count = peers.len() + usize::from(local);
        if count == 0 {
            return None;
        }
        let index = match self {
            SharedStrategy::ClientHash => (key % count as u64) as usize,
            SharedStrategy::LocalFirst | SharedStrategy::RoundRobin => {
                let i = *cursor % count;
                *cursor = cursor.wrapping_add(1);
                i
            }
        };
        Some(match (local, index) {
            (true, 0) => Holder::Local,
            (true, i) => Holder::Peer(peers[i - 1]),
            (false, i) => Holder::Peer(peers[i]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_over_this_node_and_the_peers() {
        let mut cursor = 0;
        let picks: Vec<_> = (0..6)
            .map(|_| SharedStrategy::RoundRobin.choose(&mut cursor, 0, true, &[2, 3]))
            .collect();
        let local = Some(Holder::Local);
        let (two, three) = (Some(Holder::Peer(2)), Some(Holder::Peer(3)));
        assert_eq!(picks, [local, two, three, local, two, three]);
        assert_eq!(
            SharedStrategy::RoundRobin.choose(&mut cursor, 0, false, &[]),
            None
        );
    }

    #[test]
    fn client_hash_keeps_one_publisher_on_one_holder_and_spreads_publishers() {
        let mut cursor = 0;
        let pick = |id: &str, cursor: &mut usize| {
            SharedStrategy::ClientHash.choose(cursor, share_key(id), true, &[2, 3])
        };
        let first = pick("sensor-1", &mut cursor);
        for _ in 0..10 {
            assert_eq!(pick("sensor-1", &mut cursor), first);
        }
        let holders: std::collections::HashSet<_> = (0..30)
            .map(|i| pick(&format!("sensor-{i}"), &mut cursor))
            .collect();
        assert_eq!(
            holders.len(),
            3,
            "30 publishers over 3 holders: {holders:?}"
        );
    }

    #[test]
    fn the_member_key_does_not_repeat_the_node_choice() {
        // Three nodes with three members each: every (node, member) pair is used.
        let pairs: std::collections::HashSet<(u64, u64)> = (0..300)
            .map(|i| {
                let key = share_key(&format!("client-{i}"));
                (key % 3, member_key(key) % 3)
            })
            .collect();
        assert_eq!(pairs.len(), 9, "{pairs:?}");
    }

    #[test]
    fn share_key_is_fnv1a() {
        // Published FNV-1a 64 test vectors: stable across nodes and versions.
        assert_eq!(share_key(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(share_key("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(share_key("foobar"), 0x8594_4171_f739_67e8);
    }
}
