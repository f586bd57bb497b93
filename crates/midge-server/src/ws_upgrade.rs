//! The HTTP side of a WebSocket listener: reads the request head, answers anything that is not
//! a WebSocket upgrade for [`WS_PATH`] with a plain HTTP error (a browser pointed at the port
//! sees why), and hands the bytes read on to the WebSocket handshake through [`Rewind`].

use crate::ws_stream::WS_PATH;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Largest request head read; a longer one gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// Most header lines parsed; more gets 431 too.
const MAX_HEADERS: usize = 32;

/// What a (possibly partial) request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// More bytes are needed.
    Partial,
    /// A WebSocket upgrade for [`WS_PATH`]: hand it to the handshake.
    Upgrade,
    /// Answer with this status line and body, then close.
    Refuse(&'static str, &'static str),
}

const NOT_FOUND: Head = Head::Refuse(
    "404 Not Found",
    "Midge serves MQTT over WebSocket on the path /mqtt only.\n",
);
const UPGRADE_REQUIRED: Head = Head::Refuse(
    "426 Upgrade Required",
    "This is an MQTT over WebSocket endpoint: connect with an MQTT client to /mqtt.\n",
);
const BAD_REQUEST: Head = Head::Refuse("400 Bad Request", "Malformed HTTP request.\n");
const TOO_LARGE: Head = Head::Refuse(
    "431 Request Header Fields Too Large",
    "The request head is too large.\n",
);

/// Classifies the request head in `buf`.
fn classify(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => TOO_LARGE,
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => TOO_LARGE,
        Err(_) => BAD_REQUEST,
        Ok(httparse::Status::Complete(_)) => {
            let path = request.path.unwrap_or("");
            let path = path.split_once('?').map_or(path, |(p, _)| p);
            if path != WS_PATH {
                return NOT_FOUND;
            }
            let upgrade = request.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("upgrade")
                    && String::from_utf8_lossy(h.value)
                        .split(',')
                        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
            });
            if request.method == Some("GET") && upgrade {
                Head::Upgrade
            } else {
                UPGRADE_REQUIRED
            }
        }
    }
}

/// Reads the request head from `stream`. Returns the bytes read when it is a WebSocket upgrade
/// for [`WS_PATH`]; otherwise answers with an HTTP error, closes, and fails with `InvalidData`.
pub(crate) async fn read_upgrade<S>(stream: &mut S) -> io::Result<Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = BytesMut::with_capacity(1024);
    loop {
        match classify(&head) {
            Head::Upgrade => return Ok(head.freeze()),
            Head::Refuse(status, body) => {
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).await?;
                stream.shutdown().await?;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not a WebSocket upgrade for {WS_PATH}: answered {status}"),
                ));
            }
            Head::Partial => {}
        }
        head.reserve(1024);
        if stream.read_buf(&mut head).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A stream that first yields `prefix` (bytes already read from `inner`), then reads `inner`;
/// writes go straight to `inner`.
pub(crate) struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner` with `prefix` put back in front of it.
    pub(crate) fn new(prefix: Bytes, inner: S) -> Rewind<S> {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
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

    const UPGRADE: &str = "GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn classifies_request_heads() {
        assert_eq!(classify(UPGRADE.as_bytes()), Head::Upgrade);
        let query = UPGRADE.replace("/mqtt", "/mqtt?client=1");
        assert_eq!(classify(query.as_bytes()), Head::Upgrade);
        assert_eq!(classify(&UPGRADE.as_bytes()[..20]), Head::Partial);
        assert_eq!(
            classify(UPGRADE.replace("/mqtt", "/").as_bytes()),
            NOT_FOUND
        );
        assert_eq!(
            classify(b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n"),
            UPGRADE_REQUIRED
        );
        assert_eq!(
            classify(UPGRADE.replace("GET", "POST").as_bytes()),
            UPGRADE_REQUIRED
        );
        assert_eq!(
            classify(b"\x10\x0c\x00\x04MQTT\x05\x02\r\n\r\n"),
            BAD_REQUEST
        );
        let long = format!("GET /mqtt HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD));
        assert_eq!(classify(long.as_bytes()), TOO_LARGE);
    }

    #[tokio::test]
    async fn refuses_with_an_http_error_and_rewinds_an_upgrade() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let err = read_upgrade(&mut server).await.expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.expect("reply");
        assert!(reply.starts_with("HTTP/1.1 404 Not Found\r\n"), "{reply}");

        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        // The head arrives in two parts, with the first WebSocket bytes behind it.
        let (a, b) = UPGRADE.split_at(10);
        client.write_all(a.as_bytes()).await.expect("write");
        let reading = tokio::spawn(async move {
            let head = read_upgrade(&mut server).await.expect("upgrade");
            (head, server)
        });
        tokio::task::yield_now().await;
        client.write_all(b.as_bytes()).await.expect("write");
        client.write_all(b"after").await.expect("write");
        let (head, server) = reading.await.expect("join");
        let mut rewound = Rewind::new(head, server);
        let mut got = vec![0; UPGRADE.len() + 5];
        rewound.read_exact(&mut got).await.expect("read");
        assert_eq!(got, format!("{UPGRADE}after").as_bytes());
    }
}
