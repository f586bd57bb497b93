//! Bytes in and out of every client connection and sockets accepted, for
//! `$SYS/broker/bytes/...` and `$SYS/broker/load/sockets/...`.
//!
//! Counted where the MQTT stream is read and written ([`Counted`] wraps both halves of a
//! connection), so TCP, TLS and WebSocket clients count the MQTT bytes they exchange.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The process's traffic counters.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    received: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    sockets: AtomicU64,
}

impl Traffic {
    /// Counts one accepted socket.
    pub(crate) fn socket_opened(&self) {
        self.sockets.fetch_add(1, Ordering::Relaxed);
    }

    /// `reader` counting into the received bytes.
    pub(crate) fn reader<R>(&self, reader: R) -> Counted<R> {
        Counted {
            inner: reader,
            bytes: self.received.clone(),
        }
    }

    /// `writer` counting into the sent bytes.
    pub(crate) fn writer<W>(&self, writer: W) -> Counted<W> {
        Counted {
            inner: writer,
            bytes: self.sent.clone(),
        }
    }

    /// (bytes received, bytes sent, sockets accepted) so far.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
            self.sockets.load(Ordering::Relaxed),
        )
    }
}

/// A stream half that adds what passes through it to a counter.
#[derive(Debug)]
pub(crate) struct Counted<T> {
    inner: T,
    bytes: Arc<AtomicU64>,
}

impl<T> Counted<T> {
    /// The stream half, no longer counted.
    pub(crate) fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let read = buf.filled().len().saturating_sub(before);
            self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = &polled {
            self.bytes.fetch_add(*written as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_halves_count_what_passes() {
        let traffic = Traffic::default();
        let (a, b) = tokio::io::duplex(64);
        let mut writer = traffic.writer(a);
        let mut reader = traffic.reader(b);
        writer.write_all(b"hello").await.expect("write");
        let mut got = [0u8; 5];
        reader.read_exact(&mut got).await.expect("read");
        traffic.socket_opened();
        assert_eq!(traffic.totals(), (5, 5, 1));
    }
}
