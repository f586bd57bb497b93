//! The run's phases, broadcast to every client task through a `watch` channel.

use tokio::sync::watch;

/// Where the run is. Clients connect during `Connecting`, publish during `Running`, finish
/// outstanding acknowledgements during `Draining`, and disconnect at `Done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Clients are connecting and subscribing; publishers wait.
    Connecting,
    /// The measured interval: publishers publish.
    Running,
    /// Publishers stop; in-flight messages and acks may still arrive.
    Draining,
    /// Everyone disconnects now.
    Done,
}

/// The receiving side each client holds.
pub type PhaseRx = watch::Receiver<Phase>;
