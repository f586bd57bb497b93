//! What the Raft leader does about a lost node (unreachable past the grace period, or
//! removed from the group): it adopts the node's persistent sessions, waits until they are
//! committed as its own and every reachable peer knows their routes, then has the cluster
//! commit the node's release. Only on applying that release does a node forget the lost
//! node's routes, so at every moment a QoS 1/2 publish for those sessions either reaches a
//! node that queues it or is refused (0x89): none is acknowledged and lost in between.
//!
//! A follower does nothing; if the leader changes before a release commits, the new leader
//! finds the node still lost on its next round and does the same (adoption skips sessions it
//! already holds, and a release of a node that is already released changes nothing).

use crate::shared_broker::SharedBroker;
use crate::storage::wall_clock;
use midge_cluster::{Links, Proposer};
use std::sync::Weak;
use std::time::Duration;

/// How often the leader looks again at lost nodes it could not release yet (and how soon a
/// new leader takes over the ones its predecessor left).
const ROUND: Duration = Duration::from_secs(1);

/// Runs until the broker is gone.
pub(crate) async fn run(broker: Weak<SharedBroker>, links: Links, proposer: Proposer) {
    let mut round = tokio::time::interval(ROUND);
    round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = links.lost_changed() => {}
            _ = round.tick() => {}
        }
        if broker.strong_count() == 0 {
            return;
        }
        if !links.is_leader() {
            continue;
        }
        for (node, incarnation) in links.lost() {
            if let Err(reason) = release(&broker, &links, &proposer, node, incarnation).await {
                tracing::warn!("Node {node} is lost but not released yet ({reason}); retrying.");
            }
        }
    }
}

/// Adopts what lost node `node` owned and commits its release.
async fn release(
    broker: &Weak<SharedBroker>,
    links: &Links,
    proposer: &Proposer,
    node: u64,
    incarnation: u64,
) -> Result<(), String> {
    let sessions = links.orphans(node, wall_clock()).await;
    if !links.is_leader() || !links.is_lost(node) {
        // Leadership moved, or the node came back, while reading.
        return Ok(());
    }
    if !sessions.is_empty() {
        let Some(broker) = broker.upgrade() else {
            return Ok(());
        };
        let (commit, barrier) = broker.adopt_lost(node, sessions);
        drop(broker);
        if let Some((seq, mut watch)) = commit {
            watch
                .wait(seq)
                .await
                .map_err(|failed| format!("adopted sessions not committed: {failed:?}"))?;
        }
        for ticket in barrier {
            ticket.wait().await;
        }
    }
    if !links.is_lost(node) {
        return Ok(());
    }
    proposer
        .release(node, incarnation, wall_clock())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("Released lost node {node}: its sessions and routes are this node's now.");
    Ok(())
}
