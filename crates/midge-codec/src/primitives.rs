//! Wire primitives: variable byte integers, two-byte integers, UTF-8 strings, binary data.
//!
//! Decoding goes through [`Reader`], a bounds-checked cursor over one packet's `Bytes`: every
//! read checks what is left, so no input can make it panic, and binary fields come out as
//! zero-copy slices of the packet. Encoding goes through the [`Sink`] trait, implemented both by
//! `BytesMut` (writes) and by [`Counter`] (only counts): each packet has a single encode routine
//! run against both, so `encoded_len` and `encode` cannot disagree.

use crate::{DecodeError, EncodeError, PacketId};
use bytes::{BufMut, Bytes, BytesMut};

/// The largest value a variable byte integer can hold (four bytes of seven bits).
pub(crate) const MAX_VARINT: u32 = 268_435_455;

/// Parses a variable byte integer from the front of `bytes` (1.5.5).
///
/// Returns `Ok(None)` if `bytes` ends before the integer does, else the value and the number
/// of bytes it took. A fourth byte that still has the continuation bit set is Malformed.
/// Non-minimal encodings (e.g. `0x80 0x00` for 0) are accepted, as Mosquitto does.
pub(crate) fn parse_varint(bytes: &[u8]) -> Result<Option<(u32, usize)>, DecodeError> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().take(4).enumerate() {
        value |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(DecodeError::Malformed(
            "variable byte integer longer than 4 bytes",
        ));
    }
    Ok(None)
}

/// The number of bytes the minimal encoding of `v` takes.
pub(crate) fn varint_len(v: u32) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// A bounds-checked cursor over part of one packet.
pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf[pos..]`.
    pub(crate) fn new(buf: &'a Bytes, pos: usize) -> Reader<'a> {
        let pos = pos.min(buf.len());
        Reader {
            buf,
            pos,
            end: buf.len(),
        }
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// True when everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Malformed unless everything has been read (a body must fill its remaining length).
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "unexpected bytes after the packet body",
            ))
        }
    }

    /// Takes the next `n` bytes as a borrowed slice.
    fn slice(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Malformed(
                "field runs past the end of the packet",
            ));
        }
        let buf: &'a Bytes = self.buf;
        let s = &buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Splits off the next `n` bytes as their own reader (a property block).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Malformed(
                "length runs past the end of the packet",
            ));
        }
        let sub = Reader {
            buf: self.buf,
            pos: self.pos,
            end: self.pos + n,
        };
        self.pos += n;
        Ok(sub)
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.slice(1)?[0])
    }

    /// Reads a big-endian two-byte integer (1.5.2).
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.slice(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    /// Reads a big-endian four-byte integer (1.5.3).
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.slice(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads a packet identifier, which is never 0 on the wire (MQTT-2.3.1-1 in 3.1.1,
    /// MQTT-2.2.1-3 in 5.0; acknowledgements echo such an identifier, so 0 is invalid there
    /// too).
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::Malformed("packet identifier 0")),
            id => Ok(id),
        }
    }

    /// Reads a variable byte integer (1.5.5); running out of bytes is Malformed.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let buf: &'a Bytes = self.buf;
        match parse_varint(&buf[self.pos..self.end])? {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(DecodeError::Malformed("truncated variable byte integer")),
        }
    }

    /// Reads a UTF-8 encoded string (1.5.4), borrowed from the packet.
    pub(crate) fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.slice(len)?;
        // MQTT-1.5.4-1: ill-formed UTF-8 (including encoded surrogates, which `from_utf8`
        // rejects) is Malformed.
        let s = std::str::from_utf8(raw)
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8"))?;
        // MQTT-1.5.4-2: U+0000 must not appear.
        if raw.contains(&0) {
            return Err(DecodeError::Malformed("string contains U+0000"));
        }
        Ok(s)
    }

    /// Reads a UTF-8 string into an owned `String`.
    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_owned)
    }

    /// Reads binary data (1.5.6) as a zero-copy slice of the packet.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        if len > self.remaining() {
            return Err(DecodeError::Malformed(
                "field runs past the end of the packet",
            ));
        }
        let b = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(b)
    }

    /// Reads a UTF-8 string pair (1.5.7).
    pub(crate) fn pair(&mut self) -> Result<(&'a str, &'a str), DecodeError> {
        Ok((self.str()?, self.str()?))
    }

    /// Takes everything left as a zero-copy slice (a PUBLISH payload).
    pub(crate) fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..self.end);
        self.pos = self.end;
        b
    }
}

/// Somewhere encoded bytes go: a real buffer, or a [`Counter`] that only measures.
///
/// The provided methods do all validation, so both implementations reject exactly the same
/// packets and count exactly the bytes that are written.
pub(crate) trait Sink {
    /// Whether this sink runs the content checks (U+0000 in strings, wildcards in topic
    /// names). `encode` always measures with a checking [`Counter`] before writing, so the
    /// writing pass can skip those scans; lengths are checked by both.
    const CHECKED: bool;

    /// Writes one byte.
    fn write_u8(&mut self, v: u8);

    /// Writes raw bytes.
    fn write_slice(&mut self, v: &[u8]);

    /// Writes a big-endian two-byte integer.
    fn write_u16(&mut self, v: u16) {
        self.write_slice(&v.to_be_bytes());
    }

    /// Writes a big-endian four-byte integer.
    fn write_u32(&mut self, v: u32) {
        self.write_slice(&v.to_be_bytes());
    }

    /// Writes the minimal variable byte integer encoding of `v`.
    fn write_varint(&mut self, v: u32) -> Result<(), EncodeError> {
        if v > MAX_VARINT {
            return Err(EncodeError::InvalidField(
                "value exceeds the variable byte integer range",
            ));
        }
        let mut v = v;
        loop {
            // Truncation is the point: the low seven bits go out first.
            let mut byte = (v & 0x7F) as u8;
            v >>= 7;
            if v > 0 {
                byte |= 0x80;
            }
            self.write_u8(byte);
            if v == 0 {
                return Ok(());
            }
        }
    }

    /// Writes a length-prefixed UTF-8 string, refusing what the decoder would reject.
    fn write_str(&mut self, v: &str) -> Result<(), EncodeError> {
        let len = u16::try_from(v.len())
            .map_err(|_| EncodeError::InvalidField("string longer than 65,535 bytes"))?;
        if Self::CHECKED && v.as_bytes().contains(&0) {
            return Err(EncodeError::InvalidField("string contains U+0000"));
        }
        self.write_u16(len);
        self.write_slice(v.as_bytes());
        Ok(())
    }

    /// Writes length-prefixed binary data.
    fn write_binary(&mut self, v: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(v.len())
            .map_err(|_| EncodeError::InvalidField("binary data longer than 65,535 bytes"))?;
        self.write_u16(len);
        self.write_slice(v);
        Ok(())
    }
}

impl Sink for BytesMut {
    const CHECKED: bool = false;

    fn write_u8(&mut self, v: u8) {
        self.put_u8(v);
    }

    fn write_slice(&mut self, v: &[u8]) {
        self.put_slice(v);
    }
}

/// Writes a packet identifier, refusing 0, which the peer would reject.
pub(crate) fn write_packet_id<S: Sink>(s: &mut S, id: PacketId) -> Result<(), EncodeError> {
    if id == 0 {
        return Err(EncodeError::InvalidField("packet identifier 0"));
    }
    s.write_u16(id);
    Ok(())
}

/// A [`Sink`] that only adds up lengths.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    const CHECKED: bool = true;

    fn write_u8(&mut self, _: u8) {
        self.0 += 1;
    }

    fn write_slice(&mut self, v: &[u8]) {
        self.0 += v.len();
    }
}

/// Runs an encode routine against a [`Counter`] and returns the byte count.
pub(crate) fn measure(
    f: impl FnOnce(&mut Counter) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let mut c = Counter::default();
    f(&mut c)?;
    Ok(c.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reader_over(bytes: &'static [u8]) -> Bytes {
        Bytes::from_static(bytes)
    }

    #[test]
    fn varint_boundaries() {
        for (v, enc) in [
            (0u32, &[0x00][..]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (MAX_VARINT, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ] {
            let mut buf = BytesMut::new();
            buf.write_varint(v).unwrap();
            assert_eq!(&buf[..], enc, "{v}");
            assert_eq!(varint_len(v), enc.len());
            assert_eq!(parse_varint(enc).unwrap(), Some((v, enc.len())));
        }
    }

    #[test]
    fn varint_fifth_byte_is_malformed() {
        // 1.5.5: at most four bytes.
        let err = parse_varint(&[0xFF, 0xFF, 0xFF, 0x80, 0x01]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed("variable byte integer longer than 4 bytes")
        );
        assert_eq!(err.reason_code(), crate::ReasonCode::MalformedPacket);
        assert!(parse_varint(&[0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn varint_incomplete_and_non_minimal() {
        assert_eq!(parse_varint(&[]).unwrap(), None);
        assert_eq!(parse_varint(&[0x80, 0x80]).unwrap(), None);
        // Non-minimal encodings are accepted (Mosquitto compatibility).
        assert_eq!(parse_varint(&[0x80, 0x00]).unwrap(), Some((0, 2)));
        assert_eq!(parse_varint(&[0x81, 0x80, 0x00]).unwrap(), Some((1, 3)));
    }

    #[test]
    fn varint_out_of_range_is_refused() {
        let mut buf = BytesMut::new();
        assert!(buf.write_varint(MAX_VARINT + 1).is_err());
    }

    #[test]
    fn strings_read_and_validate() {
        let b = reader_over(b"\x00\x03abc\x00\x00");
        let mut r = Reader::new(&b, 0);
        assert_eq!(r.str().unwrap(), "abc");
        assert_eq!(r.str().unwrap(), "");
        assert!(r.is_empty());
    }

    #[test]
    fn string_with_invalid_utf8_is_malformed() {
        // MQTT-1.5.4-1: an encoded surrogate (U+D800) is ill-formed UTF-8.
        let b = reader_over(b"\x00\x03\xED\xA0\x80");
        let err = Reader::new(&b, 0).str().unwrap_err();
        assert_eq!(err, DecodeError::Malformed("string is not valid UTF-8"));
        assert_eq!(err.reason_code(), crate::ReasonCode::MalformedPacket);
    }

    #[test]
    fn string_with_nul_is_malformed() {
        // MQTT-1.5.4-2
        let b = reader_over(b"\x00\x03a\x00b");
        let err = Reader::new(&b, 0).str().unwrap_err();
        assert_eq!(err, DecodeError::Malformed("string contains U+0000"));
        assert_eq!(err.reason_code(), crate::ReasonCode::MalformedPacket);
    }

    #[test]
    fn truncated_fields_are_malformed() {
        let b = reader_over(b"\x00\x05ab");
        assert!(matches!(
            Reader::new(&b, 0).str(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Reader::new(&b, 0).binary(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Reader::new(&b, 3).u32(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Reader::new(&b, 4).u8(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Reader::new(&b, 0).sub(5),
            Err(DecodeError::Malformed(_))
        ));
        let v = reader_over(b"\x80");
        assert!(matches!(
            Reader::new(&v, 0).varint(),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn binary_is_a_slice_of_the_input() {
        let b = Bytes::from_static(b"\x00\x02hi!");
        let mut r = Reader::new(&b, 0);
        let bin = r.binary().unwrap();
        assert_eq!(&bin[..], b"hi");
        assert_eq!(bin.as_ptr(), b[2..].as_ptr());
        assert_eq!(&r.rest()[..], b"!");
    }

    #[test]
    fn nul_is_refused_by_the_measuring_pass() {
        assert_eq!(
            Counter::default().write_str("a\0"),
            Err(EncodeError::InvalidField("string contains U+0000"))
        );
    }

    #[test]
    fn overlong_string_is_refused_on_encode() {
        let s = "x".repeat(65_536);
        let mut c = Counter::default();
        assert_eq!(
            c.write_str(&s),
            Err(EncodeError::InvalidField("string longer than 65,535 bytes"))
        );
        assert!(Counter::default().write_str(&s[..65_535]).is_ok());
        assert!(Counter::default().write_binary(s.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in 0..=MAX_VARINT) {
            let mut buf = BytesMut::new();
            buf.write_varint(v).unwrap();
            prop_assert_eq!(buf.len(), varint_len(v));
            prop_assert_eq!(measure(|c| c.write_varint(v)).unwrap(), buf.len());
            let b = buf.freeze();
            let mut r = Reader::new(&b, 0);
            prop_assert_eq!(r.varint().unwrap(), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn string_round_trip(s in "[^\u{0}]{0,40}") {
            let mut buf = BytesMut::new();
            buf.write_str(&s).unwrap();
            let b = buf.freeze();
            let mut r = Reader::new(&b, 0);
            prop_assert_eq!(r.str().unwrap(), s.as_str());
        }

        #[test]
        fn reader_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), start in 0usize..70) {
            let b = Bytes::from(data);
            let mut r = Reader::new(&b, start);
            let _ = r.varint();
            let _ = r.str();
            let _ = r.binary();
            let _ = r.u32();
            let _ = r.pair();
            let _ = r.rest();
        }
    }
}
