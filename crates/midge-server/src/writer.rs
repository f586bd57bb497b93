//! The writer task of one connection: encodes queued packets and writes them in batches.

use crate::connection_handle::{qos0_cost, Outbound, Outbox};
use bytes::BytesMut;
use midge_codec::ProtocolVersion;
use std::io;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Stop gathering more packets into one write once this many bytes are encoded: big enough that
/// a fan-out burst costs few syscalls, small enough that latency and memory stay low.
const BATCH_BYTES: usize = 64 * 1024;

/// A write buffer that grew beyond this (one huge packet) is released rather than kept.
const KEEP_BUFFER_BYTES: usize = 1024 * 1024;

/// Owns the socket's write half. Ends after an [`Outbound::Close`], when every sender is gone
/// (after writing what they queued), or on an I/O error.
pub(crate) struct ConnWriter<W> {
    socket: W,
    outbox: Outbox,
    version: ProtocolVersion,
    buf: BytesMut,
}

impl<W: AsyncWrite + Unpin> ConnWriter<W> {
    /// A writer encoding for a `version` connection.
    pub(crate) fn new(socket: W, outbox: Outbox, version: ProtocolVersion) -> Self {
        ConnWriter {
            socket,
            outbox,
            version,
            buf: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// Runs until the connection is closed; the socket is shut down (FIN) on a clean end.
    pub(crate) async fn run(mut self) -> io::Result<()> {
        while let Some(first) = self.outbox.rx.recv().await {
            let mut qos0_bytes = 0;
            let mut closing = self.encode(first, &mut qos0_bytes);
            // Take whatever else is already queued, so a burst goes out in one write.
            while !closing && self.buf.len() < BATCH_BYTES {
                match self.outbox.rx.try_recv() {
                    Ok(next) => closing = self.encode(next, &mut qos0_bytes),
                    Err(_) => break,
                }
            }
            if !self.buf.is_empty() {
                self.socket.write_all(&self.buf).await?;
                if self.buf.capacity() > KEEP_BUFFER_BYTES {
                    self.buf = BytesMut::with_capacity(8 * 1024);
                } else {
                    self.buf.clear();
                }
            }
            // Only now has the backlog left us; counting it down earlier would let a client
            // that does not read accumulate unbounded bytes in the kernel-bound buffer.
            self.outbox
                .pending_qos0
                .fetch_sub(qos0_bytes, Ordering::Relaxed);
            if closing {
                break;
            }
        }
        self.socket.shutdown().await
    }

    /// Appends one item to the buffer; returns true for `Close`.
    fn encode(&mut self, item: Outbound, qos0_bytes: &mut usize) -> bool {
        match item {
            Outbound::Close => true,
            Outbound::Packet(packet) => {
                *qos0_bytes += qos0_cost(&packet);
                let start = self.buf.len();
                if let Err(err) = midge_codec::encode(&packet, self.version, &mut self.buf) {
                    // The core produced a packet this version cannot carry. Dropping it (and
                    // any bytes it half wrote) keeps the stream well formed; the warning points
                    // at the bug.
                    self.buf.truncate(start);
                    tracing::warn!(
                        "Dropping an outgoing packet that cannot be encoded for {:?}: {err}.",
                        self.version
                    );
                }
                false
            }
        }
    }
}
