//! MQTT over WebSocket: the HTTP upgrade (path `/mqtt`, subprotocol `mqtt` echoed) and a byte
//! stream over binary WebSocket messages, so the connection code reads and writes it like a
//! socket. MQTT packets may span messages and a message may hold several packets (MQTT 6.0):
//! the stream ignores message boundaries.

use crate::ws_upgrade::{self, Rewind};
use bytes::Bytes;
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// The only path served.
pub(crate) const WS_PATH: &str = "/mqtt";

/// Subprotocols accepted, preferred first: `mqtt` (3.1.1 and 5), `mqttv3.1` (old 3.1 clients).
const SUBPROTOCOLS: &[&str] = &["mqtt", "mqttv3.1"];

/// Completes the WebSocket upgrade on `stream`. Other HTTP requests (another path, no upgrade)
/// get an HTTP error page (`ws_upgrade`). The first subprotocol we know from the client's
/// list is echoed; a client that offers none is still served, as Mosquitto does. Messages
/// larger than `max_message` bytes end the connection.
pub(crate) async fn accept<S>(
    mut stream: S,
    max_message: usize,
) -> Result<WsStream<Rewind<S>>, io::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let head = ws_upgrade::read_upgrade(&mut stream).await?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    // tungstenite's callback type fixes the (large) error type; this one never fails.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        if let Some(chosen) = pick_subprotocol(request) {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(chosen));
        }
        Ok(response)
    };
    let stream = Rewind::new(head, stream);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config))
        .await
        .map_err(into_io)?;
    Ok(WsStream {
        inner: ws,
        pending: Bytes::new(),
    })
}

/// The first of [`SUBPROTOCOLS`] the client offered, if any.
fn pick_subprotocol(request: &Request) -> Option<&'static str> {
    let offered: Vec<&str> = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    SUBPROTOCOLS
        .iter()
        .copied()
        .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p)))
}

fn into_io(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(err) => err,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::from(io::ErrorKind::UnexpectedEof)
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// A WebSocket connection seen as a byte stream: reads yield the payload of binary messages,
/// each write sends one binary message (sent for sure on flush).
pub(crate) struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// What is left of the last message read.
    pending: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                // The end of the stream, or the peer's close (answered by tungstenite): EOF.
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(data))) => this.pending = data,
                // Answered (pings) or meaningless here.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                // MQTT 6.0: data in anything but binary frames closes the connection.
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "MQTT over WebSocket must use binary messages, got a text message",
                    )))
                }
                Some(Err(err)) => return Poll::Ready(Err(into_io(err))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_ready(cx)).map_err(into_io)?;
        Pin::new(&mut this.inner)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(into_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_flush(cx)
            .map_err(into_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.get_mut().inner).poll_close(cx)) {
            // Closing twice, or after the peer closed, is not an error for us.
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(err) => Poll::Ready(Err(into_io(err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    async fn pair(
        path: &str,
        protocols: Option<&'static str>,
    ) -> (
        Result<WsStream<Rewind<tokio::io::DuplexStream>>, io::Error>,
        Result<
            (
                WebSocketStream<tokio::io::DuplexStream>,
                tungstenite::handshake::client::Response,
            ),
            tungstenite::Error,
        >,
    ) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut request = format!("ws://localhost{path}")
            .into_client_request()
            .expect("request");
        if let Some(p) = protocols {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
        }
        tokio::join!(
            accept(server, 1024),
            tokio_tungstenite::client_async(request, client)
        )
    }

    #[tokio::test]
    async fn echoes_mqtt_and_carries_bytes_across_message_boundaries() {
        let (server, client) = pair("/mqtt", Some("mqttv3.1, mqtt")).await;
        let mut server = server.expect("server side");
        let (mut client, response) = client.expect("client side");
        assert_eq!(
            response.headers().get("Sec-WebSocket-Protocol"),
            Some(&HeaderValue::from_static("mqtt"))
        );
        // One packet split over two messages, then two packets in one message.
        client
            .send(Message::Binary(Bytes::from_static(&[0xC0])))
            .await
            .expect("send");
        client
            .send(Message::Binary(Bytes::from_static(&[
                0x00, 0xC0, 0x00, 0xE0, 0x00,
            ])))
            .await
            .expect("send");
        let mut got = [0u8; 6];
        server.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [0xC0, 0x00, 0xC0, 0x00, 0xE0, 0x00]);
        server.write_all(&[0xD0, 0x00]).await.expect("write");
        server.flush().await.expect("flush");
        use futures_util::StreamExt;
        let reply = client.next().await.expect("message").expect("ok");
        assert_eq!(reply, Message::Binary(Bytes::from_static(&[0xD0, 0x00])));
        client.close(None).await.expect("close");
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).await.expect("eof"), 0);
    }

    #[tokio::test]
    async fn other_paths_are_not_found_and_text_is_refused() {
        let (server, client) = pair("/", None).await;
        assert!(server.is_err());
        assert!(client.is_err());

        let (server, client) = pair("/mqtt", None).await;
        let mut server = server.expect("no subprotocol is still served");
        let (mut client, response) = client.expect("client");
        assert!(response.headers().get("Sec-WebSocket-Protocol").is_none());
        client
            .send(Message::Text("hello".into()))
            .await
            .expect("send");
        let mut buf = [0u8; 4];
        let err = server.read(&mut buf).await.expect_err("text refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
