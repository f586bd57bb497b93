//! What the Raft leader does about lost nodes (unreachable past the grace period, or removed
//! from the group): it adopts their persistent sessions, waits until those are committed as
//! its own and every member that is not lost has exchanged the adopted sessions' routes, then
//! has the cluster commit each lost node's release. Only on applying a release does a node
//! forget the lost node's routes, so at every moment a QoS 1/2 publish for those sessions is
//! either queued by a node that has them or refused (0x89): none is acknowledged and lost in
//! between.
//!
//! One round handles every lost node together: if the leader that adopted a node's sessions
//! was lost before releasing it, its successor finds both lost, adopts the sessions from the
//! dead adopter and releases both only after the same barrier. A member that is unreachable
//! but not lost yet fails the barrier, so nothing is released until it is back or lost too.
//! Followers do nothing; adoption skips sessions the leader already holds, and releasing a
//! node twice changes nothing.

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
        if !links.is_leader() || links.lost().is_empty() {
            continue;
        }
        if let Err(reason) = release_lost(&broker, &links, &proposer).await {
            tracing::warn!("Lost node(s) not released yet ({reason}); retrying.");
        }
    }
}

/// One round: adopts what every lost node owned, then commits their releases.
async fn release_lost(
    broker: &Weak<SharedBroker>,
    links: &Links,
    proposer: &Proposer,
) -> Result<(), String> {
    let lost = links.lost();
    let mut commits = Vec::new();
    for &(node, _) in &lost {
        let sessions = links.orphans(node, wall_clock()).await?;
        if !links.is_leader() {
            return Ok(());
        }
        if !sessions.is_empty() {
            let Some(broker) = broker.upgrade() else {
                return Ok(());
            };
            commits.push(broker.adopt_lost(node, sessions));
        }
    }
    for (seq, mut watch) in commits.into_iter().flatten() {
        watch
            .wait(seq)
            .await
            .map_err(|failed| format!("adopted sessions not committed: {failed:?}"))?;
    }
    for ticket in links.barrier() {
        if !ticket.wait().await {
            return Err("a member did not confirm the adopted sessions' routes".to_string());
        }
    }
    for (node, incarnation) in lost {
        if !links.is_lost(node) || links.came_back(node, incarnation) {
            // Reachable again, or restarted: its sessions and routes are its own.
            continue;
        }
        proposer
            .release(node, incarnation, wall_clock())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("Released lost node {node}: its sessions and routes are this node's now.");
    }
    Ok(())
}
