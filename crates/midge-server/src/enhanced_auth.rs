//! MQTT v5 enhanced authentication at CONNECT (MQTT 5, 4.12): the AUTH exchange between a
//! CONNECT that names an Authentication Method and its CONNACK.
//!
//! It runs in the connection task before the core sees the client, like the password check:
//! the listener supplies the method ([`ListenerAuth::method`]), the method (sans I/O, in
//! `midge-auth`) decides each step, and this module moves the AUTH packets. A success hands
//! the core an [`EnhancedAuth`] so the CONNACK ends the exchange; a failure is a refusal the
//! core answers with its CONNACK.

use crate::authenticator::{ListenerAuth, LoginGuard};
use bytes::{Bytes, BytesMut};
use midge_auth::{AuthFailure, AuthStep};
use midge_codec::{Auth, AuthProperties, Connect, Packet, ProtocolVersion, ReasonCode};
use midge_core::EnhancedAuth;
use std::net::IpAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

/// Most AUTH round trips one exchange may take (SCRAM needs one).
const MAX_ROUNDS: usize = 8;

/// How an exchange ended without a success.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Refuse with this CONNACK reason code.
    Reason(ReasonCode),
    /// The client went away, sent DISCONNECT, or stayed silent: close without a CONNACK.
    Gone,
}

/// What one exchange needs from its connection.
pub(crate) struct Exchange<'a, R, W> {
    pub(crate) reader: &'a mut R,
    pub(crate) writer: &'a mut W,
    /// Bytes read and not yet decoded (the client may pipeline its answer).
    pub(crate) buf: &'a mut BytesMut,
    /// How long the client has for each answer.
    pub(crate) answer_timeout: Duration,
    pub(crate) max_packet_size: u32,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Exchange<'_, R, W> {
    /// Authenticates `connect` (v5, with an Authentication Method) from `ip`. On success the
    /// CONNECT's username becomes the one the method proved.
    pub(crate) async fn run(
        mut self,
        auth: &ListenerAuth,
        guard: &LoginGuard,
        ip: IpAddr,
        connect: &mut Connect,
    ) -> Result<EnhancedAuth, Refusal> {
        let name = connect
            .properties
            .authentication_method
            .clone()
            .unwrap_or_default();
        let Some(method) = auth.method(&name) else {
            return Err(Refusal::Reason(ReasonCode::BadAuthenticationMethod));
        };
        guard.admit(ip).map_err(Refusal::Reason)?;
        let data = connect
            .properties
            .authentication_data
            .clone()
            .unwrap_or_default();
        let mut step = method.start(connect.username.as_deref(), &data);
        for _ in 0..MAX_ROUNDS {
            match step {
                AuthStep::Success { data, username } => {
                    connect.username = Some(username);
                    return Ok(EnhancedAuth {
                        method: name,
                        data: Some(Bytes::from(data)),
                    });
                }
                AuthStep::Failure(failure) => {
                    if failure == AuthFailure::BadCredentials {
                        guard.failed(ip);
                    }
                    tracing::debug!("{name} authentication failed: {failure}.");
                    return Err(Refusal::Reason(reason_of(&failure)));
                }
                AuthStep::Continue { data, state } => {
                    self.send_continue(&name, data).await?;
                    let answer = self.answer(&name).await?;
                    step = method.next(state, &answer);
                }
            }
        }
        Err(Refusal::Reason(ReasonCode::ProtocolError))
    }

    /// Sends AUTH 0x18 Continue authentication with `data` (MQTT-4.12.0-2).
    async fn send_continue(&mut self, method: &str, data: Vec<u8>) -> Result<(), Refusal> {
        let auth = Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: AuthProperties {
                authentication_method: Some(method.to_string()),
                authentication_data: Some(Bytes::from(data)),
                ..AuthProperties::default()
            }
            .into(),
        });
        let mut out = BytesMut::new();
        midge_codec::encode(&auth, ProtocolVersion::V5, &mut out)
            .map_err(|_| Refusal::Reason(ReasonCode::ImplementationSpecificError))?;
        match timeout(self.answer_timeout, self.writer.write_all(&out)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Refusal::Gone),
        }
    }

    /// Waits for the client's AUTH 0x18 under the same method (MQTT-4.12.0-3) and returns
    /// its Authentication Data. Anything else is a Protocol Error (MQTT-4.12.0-4 covers a
    /// different method); DISCONNECT, EOF or silence end the connection.
    async fn answer(&mut self, method: &str) -> Result<Vec<u8>, Refusal> {
        let packet = match timeout(self.answer_timeout, self.next_packet()).await {
            Ok(Ok(packet)) => packet,
            Ok(Err(refusal)) => return Err(refusal),
            Err(_) => return Err(Refusal::Gone),
        };
        match packet {
            Packet::Auth(auth)
                if auth.reason == ReasonCode::ContinueAuthentication
                    && auth.properties.authentication_method.as_deref() == Some(method) =>
            {
                Ok(auth
                    .properties
                    .authentication_data
                    .as_ref()
                    .map(|d| d.to_vec())
                    .unwrap_or_default())
            }
            Packet::Disconnect(_) => Err(Refusal::Gone),
            _ => Err(Refusal::Reason(ReasonCode::ProtocolError)),
        }
    }

    async fn next_packet(&mut self) -> Result<Packet, Refusal> {
        loop {
            match midge_codec::decode(self.buf, ProtocolVersion::V5, self.max_packet_size) {
                Ok(Some(packet)) => return Ok(packet),
                Ok(None) => {}
                Err(err) => return Err(Refusal::Reason(err.reason_code())),
            }
            self.buf.reserve(1024);
            match self.reader.read_buf(self.buf).await {
                Ok(0) | Err(_) => return Err(Refusal::Gone),
                Ok(_) => {}
            }
        }
    }
}

/// The CONNACK reason for a failed exchange.
fn reason_of(failure: &AuthFailure) -> ReasonCode {
    match failure {
        AuthFailure::BadCredentials => ReasonCode::BadUserNameOrPassword,
        AuthFailure::Rejected(_) => ReasonCode::NotAuthorized,
    }
}
