//! Recognises the start of an MQTT 5 CONNECT from raw bytes, before full decoding.
//!
//! When a CONNECT fails to decode, the right reply depends on its version: a v5 client should
//! get a CONNACK carrying the reason code (MQTT 5, 4.13.1), while a v3 client just sees the
//! connection close. The decoder's error does not say which version the header announced, so
//! the connection task looks at the bytes itself first. This is a sniff, not a validator.

/// True if `buf` begins with a CONNECT fixed header followed by protocol name "MQTT" and
/// protocol level 5. False when the bytes say otherwise or are not all buffered yet.
pub(crate) fn looks_like_v5_connect(buf: &[u8]) -> bool {
    if buf.first() != Some(&0x10) {
        return false;
    }
    // Skip the remaining-length varint: up to four bytes, continuation bit 0x80.
    let mut i = 1;
    loop {
        match buf.get(i) {
            Some(b) if b & 0x80 != 0 && i < 4 => i += 1,
            Some(b) if b & 0x80 == 0 => break,
            _ => return false,
        }
    }
    buf.get(i + 1..i + 8) == Some(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 5][..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_v5_only() {
        let v5 = [0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 5, 0x02];
        assert!(looks_like_v5_connect(&v5));
        let v311 = [0x10, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 4, 0x02];
        assert!(!looks_like_v5_connect(&v311));
        let v31 = [
            0x10, 0x10, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 3,
        ];
        assert!(!looks_like_v5_connect(&v31));
        // Two-byte remaining length.
        let long = [0x10, 0x80, 0x01, 0x00, 0x04, b'M', b'Q', b'T', b'T', 5];
        assert!(looks_like_v5_connect(&long));
    }

    #[test]
    fn incomplete_or_foreign_bytes_are_not_v5() {
        assert!(!looks_like_v5_connect(&[]));
        assert!(!looks_like_v5_connect(&[0x10]));
        assert!(!looks_like_v5_connect(&[0x10, 0x10, 0x00, 0x04, b'M']));
        assert!(!looks_like_v5_connect(&[
            0x30, 0x10, 0x00, 0x04, b'M', b'Q', b'T', b'T', 5
        ]));
        // A varint longer than four bytes is malformed.
        assert!(!looks_like_v5_connect(&[
            0x10, 0xff, 0xff, 0xff, 0xff, 0x01
        ]));
        assert!(!looks_like_v5_connect(b"GET / HTTP/1.1\r\n"));
    }
}
