//! Opens TCP connections to the broker, optionally spreading them over source addresses.

use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpSocket, TcpStream};

/// Connects client `i` to the broker from source address `sources[i % n]` (or the kernel's
/// choice when there are none). With source addresses, `IP_BIND_ADDRESS_NO_PORT` defers the
/// ephemeral port choice to `connect`, so each source address can carry a full port range
/// per broker address instead of one shared range for all binds.
#[derive(Debug, Clone)]
pub struct Dialer {
    broker: SocketAddr,
    sources: Vec<IpAddr>,
}

impl Dialer {
    /// A dialer for `broker`, binding to `sources` round-robin.
    pub fn new(broker: SocketAddr, sources: Vec<IpAddr>) -> Dialer {
        Dialer { broker, sources }
    }

    /// The broker address.
    #[cfg(test)]
    pub fn broker(&self) -> SocketAddr {
        self.broker
    }

    /// The source address client `index` binds to, if any.
    pub fn source_for(&self, index: u64) -> Option<IpAddr> {
        if self.sources.is_empty() {
            return None;
        }
        Some(self.sources[(index % self.sources.len() as u64) as usize])
    }

    /// Opens a non-blocking TCP connection with TCP_NODELAY for client `index`.
    pub async fn connect(&self, index: u64) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(self.broker),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_nodelay(true)?;
        if let Some(source) = self.source_for(index) {
            if source.is_ipv4() {
                setsockopt(&socket, IpBindAddressNoPort, &true).map_err(io::Error::from)?;
            }
            socket.bind(&SocketAddr::new(source, 0).into())?;
        }
        let std_stream: std::net::TcpStream = socket.into();
        let stream = TcpSocket::from_std_stream(std_stream)
            .connect(self.broker)
            .await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn round_robin_sources() {
        let d = Dialer::new(
            "127.0.0.1:1883".parse().unwrap(),
            vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()],
        );
        assert_eq!(d.source_for(0), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(d.source_for(1), Some("127.0.0.3".parse().unwrap()));
        assert_eq!(d.source_for(2), Some("127.0.0.2".parse().unwrap()));
        let plain = Dialer::new(d.broker(), vec![]);
        assert_eq!(plain.source_for(5), None);
    }

    #[tokio::test]
    async fn connects_from_a_bound_loopback_source() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let d = Dialer::new(
            listener.local_addr().unwrap(),
            vec!["127.0.0.2".parse().unwrap()],
        );
        let (client, accepted) = tokio::join!(d.connect(0), listener.accept());
        let client = client.unwrap();
        let (_server, peer) = accepted.unwrap();
        assert_eq!(peer.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
        assert!(client.nodelay().unwrap());
    }
}
