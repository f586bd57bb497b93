//! Durable changes other nodes' brokers decided, as this node applies them: the server feeds
//! them to its own broker so every node serves the same retained messages.

use crate::pb::command::Op;
use crate::pb_impl::op_from_command;
use crate::{pb, WallClock};
use midge_core::DurableOp;
use tokio::sync::mpsc;

/// The sending side, held by the state machine.
pub(crate) type RemoteSender = mpsc::UnboundedSender<Vec<pb::Command>>;

/// Which commands a broker must learn about when another node decided them: the retained
/// messages every node serves alike, and `SessionPut`s, which say who owns a session now (a
/// node holding a copy it no longer owns lets go of it), and released nodes.
pub(crate) fn is_shared(command: &pb::Command) -> bool {
    matches!(
        command.op,
        Some(Op::RetainedSet(_) | Op::RetainedClear(_) | Op::SessionPut(_) | Op::NodeReleased(_))
    )
}

/// Which commands the node that proposed them must also learn about once applied.
pub(crate) fn is_for_every_node(command: &pb::Command) -> bool {
    matches!(command.op, Some(Op::NodeReleased(_)))
}

/// A committed change another node's broker decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A retained message set or cleared.
    Retained(DurableOp),
    /// Node `owner` wrote the session of `client_id`: it owns it now.
    SessionOwned {
        /// The client.
        client_id: String,
        /// The node that wrote it.
        owner: u64,
    },
    /// Lost node `node` (its start `incarnation`, 0 if unknown) was let go of: its sessions
    /// were adopted and their routes announced, so its routes may be forgotten.
    NodeReleased {
        /// The lost node.
        node: u64,
        /// Its start that was lost.
        incarnation: u64,
    },
}

/// Commands committed by other nodes' brokers (and releases, by any node), in commit order, from the moment the node
/// started (the server applies those that arrived before it restored its broker again:
/// each is a put or delete of whole values, so the result is the same).
#[derive(Debug)]
pub struct RemoteCommands {
    pub(crate) rx: mpsc::UnboundedReceiver<Vec<pb::Command>>,
}

impl RemoteCommands {
    /// The next batch (one or more applied entries' worth), decoded with `clock` as the
    /// present; `None` once the node stopped. Undecodable commands are logged and skipped.
    pub async fn next(&mut self, clock: impl Fn() -> WallClock) -> Option<Vec<Remote>> {
        let commands = self.rx.recv().await?;
        let clock = clock();
        Some(
            commands
                .into_iter()
                .filter_map(|command| {
                    match &command.op {
                        Some(Op::SessionPut(put)) => {
                            return Some(Remote::SessionOwned {
                                client_id: put.client_id.clone(),
                                owner: put.owner_node,
                            })
                        }
                        Some(Op::NodeReleased(r)) => {
                            return Some(Remote::NodeReleased {
                                node: r.node,
                                incarnation: r.incarnation,
                            })
                        }
                        _ => {}
                    }
                    match op_from_command(command, &clock) {
                        Ok(op) => Some(Remote::Retained(op)),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot decode a replicated command");
                            None
                        }
                    }
                })
                .collect(),
        )
    }
}
