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
/// node holding a copy it no longer owns lets go of it).
pub(crate) fn is_shared(command: &pb::Command) -> bool {
    matches!(
        command.op,
        Some(Op::RetainedSet(_) | Op::RetainedClear(_) | Op::SessionPut(_))
    )
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
}

/// Commands committed by other nodes' brokers, in commit order, from the moment the node
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
                    if let Some(Op::SessionPut(put)) = &command.op {
                        return Some(Remote::SessionOwned {
                            client_id: put.client_id.clone(),
                            owner: put.owner_node,
                        });
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
