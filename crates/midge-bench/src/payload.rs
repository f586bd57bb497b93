//! The bench header carried at the start of every payload midge-bench publishes.
//!
//! Layout, big-endian, 24 bytes, then zero padding up to the payload size:
//!
//! | bytes  | field                                           |
//! |--------|-------------------------------------------------|
//! | 0..8   | send time, ns on the host's monotonic clock      |
//! | 8..12  | magic `MGB1` (tells a bench payload from others) |
//! | 12..16 | publisher id (client index)                      |
//! | 16..24 | sequence number, from 0, per publisher           |

/// Encoded size of [`BenchHeader`].
pub const HEADER_LEN: usize = 24;

const MAGIC: [u8; 4] = *b"MGB1";

/// The per-message header used for latency and loss accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchHeader {
    /// Send timestamp, nanoseconds on the monotonic clock.
    pub timestamp_ns: u64,
    /// Publisher id.
    pub publisher: u32,
    /// Sequence number within the publisher's stream.
    pub seq: u64,
}

impl BenchHeader {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_LEN`]; callers size payloads up front.
    pub fn write_to(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp_ns.to_be_bytes());
        out[8..12].copy_from_slice(&MAGIC);
        out[12..16].copy_from_slice(&self.publisher.to_be_bytes());
        out[16..24].copy_from_slice(&self.seq.to_be_bytes());
    }

    /// Reads a header from the start of a payload; `None` if it is too short or lacks the magic.
    pub fn read_from(payload: &[u8]) -> Option<BenchHeader> {
        let h = payload.get(..HEADER_LEN)?;
        if h[8..12] != MAGIC {
            return None;
        }
        Some(BenchHeader {
            timestamp_ns: u64::from_be_bytes(h[0..8].try_into().ok()?),
            publisher: u32::from_be_bytes(h[12..16].try_into().ok()?),
            seq: u64::from_be_bytes(h[16..24].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = BenchHeader {
            timestamp_ns: 0x0102_0304_0506_0708,
            publisher: 77,
            seq: u64::MAX - 1,
        };
        let mut buf = vec![0u8; 64];
        h.write_to(&mut buf);
        assert_eq!(&buf[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&buf[8..12], b"MGB1");
        assert_eq!(BenchHeader::read_from(&buf), Some(h));
        assert!(buf[HEADER_LEN..].iter().all(|b| *b == 0));
    }

    #[test]
    fn rejects_foreign_or_short_payloads() {
        assert_eq!(BenchHeader::read_from(b"hello world"), None);
        assert_eq!(BenchHeader::read_from(&[0u8; HEADER_LEN]), None);
        let mut buf = [0u8; HEADER_LEN];
        BenchHeader {
            timestamp_ns: 1,
            publisher: 2,
            seq: 3,
        }
        .write_to(&mut buf);
        assert_eq!(BenchHeader::read_from(&buf[..HEADER_LEN - 1]), None);
    }
}
