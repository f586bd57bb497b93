//! Joining a running cluster through its seeds: a fresh node asks each seed in turn (every
//! address a seed's name resolves to) to add it; the seed forwards to the leader.

use crate::control::Joined;
use crate::peer_channels::PeerChannels;
use crate::{pb, NodeInfo};
use std::collections::BTreeSet;
use std::time::Duration;

/// A join includes the new learner catching up, so it may take a while.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
const RETRY_START: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Asks the seeds until one of them has added this node; retries forever (a seed may start
/// later than this node), backing off between rounds.
pub(crate) async fn join_through_seeds(
    channels: &PeerChannels,
    node_id: u64,
    node: &NodeInfo,
    seeds: &[String],
) -> Joined {
    let mut delay = RETRY_START;
    loop {
        for addr in resolve(seeds).await {
            if addr == node.raft_addr {
                continue;
            }
            match ask(channels, &addr, node_id, node).await {
                Ok(joined) => {
                    tracing::info!(
                        seed = %addr,
                        leader = joined.leader,
                        voter = joined.voter,
                        "joined the cluster"
                    );
                    return joined;
                }
                Err(why) => tracing::warn!(seed = %addr, "cannot join through this seed: {why}"),
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RETRY_MAX);
    }
}

async fn ask(
    channels: &PeerChannels,
    addr: &str,
    node_id: u64,
    node: &NodeInfo,
) -> Result<Joined, String> {
    let mut client = channels.client(addr).map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(pb::JoinRpc {
        node_id,
        node: Some(node.into()),
    });
    request.set_timeout(JOIN_DEADLINE);
    match tokio::time::timeout(JOIN_DEADLINE, client.join(request)).await {
        Err(_) => Err("timed out".to_string()),
        Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(Ok(reply)) => {
            let reply = reply.into_inner();
            Ok(Joined {
                leader: reply.leader_id,
                voter: reply.voter,
            })
        }
    }
}

/// Every address the seeds name, in order, without repeats. A seed that does not resolve
/// (yet: a DNS name of peers not started) is skipped this round.
pub(crate) async fn resolve(seeds: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for seed in seeds {
        match tokio::net::lookup_host(seed.as_str()).await {
            Ok(addrs) => {
                for addr in addrs {
                    let addr = addr.to_string();
                    if seen.insert(addr.clone()) {
                        out.push(addr);
                    }
                }
            }
            Err(e) => tracing::warn!(seed = %seed, error = %e, "cannot resolve seed"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_names_and_drops_repeats() {
        let seeds = vec![
            "127.0.0.1:7001".to_string(),
            "localhost:7002".to_string(),
            "127.0.0.1:7001".to_string(),
            "no-such-host.invalid:1".to_string(),
        ];
        let addrs = resolve(&seeds).await;
        assert_eq!(addrs[0], "127.0.0.1:7001");
        assert!(addrs.iter().any(|a| a.ends_with(":7002")), "{addrs:?}");
        assert_eq!(addrs.iter().filter(|a| *a == "127.0.0.1:7001").count(), 1);
    }
}
