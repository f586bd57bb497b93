//! One MQTT client connection: socket, read and write buffers, keepalive, handshake.
//!
//! A client task drives its connection from a single loop: it queues packets into the write
//! buffer, then calls [`Connection::wait`], which flushes, reads and sleeps as needed. The
//! socket is never split, so a client costs one task and two buffers.

use crate::dialer::Dialer;
use crate::frame::Frame;
use crate::phase::PhaseRx;
use bytes::{Buf, Bytes, BytesMut};
use midge_codec::{
    decode, encode, Ack, AckKind, ConnAck, Connect, ConnectProperties, DecodeError, Disconnect,
    EncodeError, Packet, ProtocolVersion, ReasonCode, MAX_PACKET_SIZE,
};
use std::io;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant, Sleep};

/// Read buffer growth step of a new connection; idle connections stay this small.
const MIN_READ_CHUNK: usize = 1024;
/// Largest read buffer growth step: what a busy connection reads per `read` call.
const MAX_READ_CHUNK: usize = 64 * 1024;

/// Why a connection failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The broker sent bytes the codec rejects.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// CONNACK with a failure reason.
    #[error("CONNACK refused: {0:?}")]
    Refused(ReasonCode),
    /// SUBACK with a failure reason.
    #[error("SUBACK refused: {0:?}")]
    SubscribeRefused(ReasonCode),
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The broker closed the socket.
    #[error("connection closed by broker")]
    Closed,
    /// The broker sent DISCONNECT.
    #[error("DISCONNECT from broker: {0:?}")]
    Disconnected(ReasonCode),
    /// A packet that makes no sense at this point.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

/// How each client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Keepalive in seconds (0 disables pings).
    pub keepalive: u16,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Clean session / clean start.
    pub clean_start: bool,
    /// Time allowed for TCP connect plus CONNACK (and for SUBACK).
    pub connect_timeout: Duration,
}

/// What woke [`Connection::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The socket was read from or written to; look at [`Connection::next_frame`].
    Io,
    /// The caller's timer fired.
    Timer,
    /// The run phase changed.
    Phase,
}

/// An open MQTT connection (CONNACK received).
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    version: ProtocolVersion,
    rbuf: BytesMut,
    read_chunk: usize,
    wbuf: BytesMut,
    keepalive: Option<Duration>,
    last_write: Instant,
    sleep: Pin<Box<Sleep>>,
    /// Server's Receive Maximum (v5), if it sent one.
    pub receive_maximum: Option<u16>,
}

impl Connection {
    /// Connects client `index` with id `client_id` and waits for a successful CONNACK.
    pub async fn open(
        dialer: &Dialer,
        index: u64,
        client_id: &str,
        opts: &ClientOptions,
    ) -> Result<Connection, ConnError> {
        let opened = timeout(opts.connect_timeout, async {
            let stream = dialer.connect(index).await?;
            let mut conn = Connection::new(stream, opts.version, opts.keepalive);
            conn.queue(&Packet::Connect(Box::new(connect_packet(client_id, opts))))?;
            conn.flush_all().await?;
            let connack = conn.read_connack().await?;
            conn.apply_connack(&connack);
            Ok::<_, ConnError>(conn)
        })
        .await;
        opened.unwrap_or(Err(ConnError::Timeout("CONNACK")))
    }

    fn new(stream: TcpStream, version: ProtocolVersion, keepalive: u16) -> Connection {
        Connection {
            stream,
            version,
            rbuf: BytesMut::with_capacity(MIN_READ_CHUNK),
            read_chunk: MIN_READ_CHUNK,
            wbuf: BytesMut::new(),
            keepalive: (keepalive > 0).then(|| Duration::from_secs(keepalive.into())),
            last_write: Instant::now(),
            sleep: Box::pin(sleep_until(Instant::now())),
            receive_maximum: None,
        }
    }

    async fn read_connack(&mut self) -> Result<ConnAck, ConnError> {
        loop {
            if let Some(packet) = self.decode_next()? {
                return match packet {
                    Packet::ConnAck(ack) if is_success(ack.reason) => Ok(ack),
                    Packet::ConnAck(ack) => Err(ConnError::Refused(ack.reason)),
                    Packet::Disconnect(d) => Err(ConnError::Disconnected(d.reason)),
                    _ => Err(ConnError::Unexpected("packet before CONNACK")),
                };
            }
            self.stream.readable().await?;
            self.fill()?;
        }
    }

    fn apply_connack(&mut self, connack: &ConnAck) {
        self.receive_maximum = connack.properties.receive_maximum;
        if let Some(ka) = connack.properties.server_keep_alive {
            self.keepalive = (ka > 0).then(|| Duration::from_secs(ka.into()));
        }
    }

    /// Protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Encodes `packet` into the write buffer.
    pub fn queue(&mut self, packet: &Packet) -> Result<(), EncodeError> {
        encode(packet, self.version, &mut self.wbuf)
    }

    /// Queues PUBACK / PUBREC / PUBREL / PUBCOMP for `packet_id`.
    pub fn queue_ack(&mut self, kind: AckKind, packet_id: u16) -> Result<(), EncodeError> {
        self.queue(&Packet::Ack(Ack::new(kind, packet_id)))
    }

    /// The write buffer, for appending pre-encoded packets.
    pub fn write_buffer(&mut self) -> &mut BytesMut {
        &mut self.wbuf
    }

    /// Bytes queued but not yet written.
    pub fn pending_write(&self) -> usize {
        self.wbuf.len()
    }

    /// The next complete packet in the read buffer, if any (not consumed).
    pub fn next_frame(&self) -> Result<Option<Frame>, DecodeError> {
        Frame::peek(&self.rbuf, self.version.is_v5())
    }

    /// The read buffer (frame ranges index into it).
    pub fn read_buffer(&self) -> &[u8] {
        &self.rbuf
    }

    /// Drops `len` bytes (a frame) from the front of the read buffer.
    pub fn consume(&mut self, len: usize) {
        self.rbuf.advance(len);
    }

    /// Decodes the packet at the front of the read buffer with the codec, consuming it.
    pub fn decode_next(&mut self) -> Result<Option<Packet>, DecodeError> {
        decode(&mut self.rbuf, self.version, MAX_PACKET_SIZE)
    }

    /// Waits for socket activity, the caller's `timer`, or a phase change. Flushes the write
    /// buffer and reads what has arrived; sends PINGREQ when the connection was quiet for
    /// its keepalive.
    pub async fn wait(
        &mut self,
        timer: Option<Instant>,
        phase: &mut PhaseRx,
    ) -> Result<Wake, ConnError> {
        // Only an idle write side needs a ping; queued bytes will reset the clock anyway.
        let mut ping_at = None;
        if let (Some(ka), true) = (self.keepalive, self.wbuf.is_empty()) {
            let at = self.last_write + ka;
            if at <= Instant::now() {
                self.queue(&Packet::PingReq)?;
            } else {
                ping_at = Some(at);
            }
        }
        let deadline = match (timer, ping_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(at) = deadline {
            if self.sleep.deadline() != at {
                self.sleep.as_mut().reset(at);
            }
        }
        // A cheap check first, so that a socket that is always ready cannot hide a phase
        // change; the select below then tries the socket before the phase channel.
        if phase.has_changed().unwrap_or(true) {
            return Ok(Wake::Phase);
        }
        let interest = if self.wbuf.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        enum Woke {
            Ready(io::Result<tokio::io::Ready>),
            Timer,
            Phase,
        }
        let woke = tokio::select! {
            biased;
            ready = self.stream.ready(interest) => Woke::Ready(ready),
            _ = &mut self.sleep, if deadline.is_some() => Woke::Timer,
            _ = phase.changed() => Woke::Phase,
        };
        match woke {
            Woke::Phase => Ok(Wake::Phase),
            Woke::Timer => Ok(Wake::Timer),
            Woke::Ready(ready) => {
                let ready = ready?;
                if ready.is_writable() {
                    self.flush_some()?;
                }
                if ready.is_readable() || ready.is_read_closed() {
                    self.fill()?;
                }
                Ok(Wake::Io)
            }
        }
    }

    /// Writes as much of the write buffer as the socket takes now.
    ///
    /// A short write means the socket buffer is full: the write readiness is then cleared
    /// (inside `try_io`, so an event that raced in is not lost), which saves the `write` that
    /// would only have returned `EWOULDBLOCK`.
    pub fn flush_some(&mut self) -> Result<(), ConnError> {
        while !self.wbuf.is_empty() {
            let (stream, wbuf) = (&self.stream, &mut self.wbuf);
            let mut written = 0;
            let result = stream.try_io(Interest::WRITABLE, || {
                written = stream.try_write(wbuf)?;
                if written > 0 && written < wbuf.len() {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(written)
            });
            if written > 0 {
                self.wbuf.advance(written);
                self.last_write = Instant::now();
            }
            match result {
                Ok(0) => return Err(ConnError::Closed),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes the whole write buffer, waiting for the socket as needed.
    pub async fn flush_all(&mut self) -> Result<(), ConnError> {
        while !self.wbuf.is_empty() {
            self.stream.writable().await?;
            self.flush_some()?;
        }
        Ok(())
    }

    /// Reads what is available into the read buffer. `Ok(0)` when nothing was ready.
    ///
    /// A read that does not fill the free space drained the socket, so the read readiness is
    /// cleared right away (race-free inside `try_io`) instead of by a second, empty `read`.
    /// A read that does fill it doubles the buffer's growth step, up to 64 KiB, so busy
    /// connections read in large chunks while idle ones keep a 1 KiB buffer.
    pub fn fill(&mut self) -> Result<usize, ConnError> {
        if self.rbuf.capacity() - self.rbuf.len() < self.read_chunk / 4 {
            self.rbuf.reserve(self.read_chunk);
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let (stream, rbuf) = (&self.stream, &mut self.rbuf);
        let mut read = 0;
        let result = stream.try_io(Interest::READABLE, || {
            read = stream.try_read_buf(rbuf)?;
            if read > 0 && read < spare {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(read)
        });
        if read == spare {
            self.read_chunk = (self.read_chunk * 2).min(MAX_READ_CHUNK);
        }
        match result {
            Ok(0) => Err(ConnError::Closed),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(read),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends DISCONNECT (best effort, bounded) and closes the socket.
    pub async fn close(mut self) {
        if self
            .queue(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)))
            .is_ok()
        {
            let _ = timeout(Duration::from_secs(1), self.flush_all()).await;
        }
    }
}

/// Success, or a v5 "granted QoS" code: anything below 0x80.
pub fn is_success(reason: ReasonCode) -> bool {
    (reason as u8) < 0x80
}

fn connect_packet(client_id: &str, opts: &ClientOptions) -> Connect {
    Connect {
        protocol: opts.version,
        clean_start: opts.clean_start,
        keep_alive: opts.keepalive,
        client_id: client_id.to_owned(),
        will: None,
        username: opts.username.clone(),
        password: opts.password.clone().map(Bytes::from),
        properties: ConnectProperties {
            // A persistent v5 session needs an expiry; an hour outlasts any run.
            session_expiry_interval: (!opts.clean_start && opts.version.is_v5()).then_some(3600),
            ..ConnectProperties::default()
        },
    }
}
