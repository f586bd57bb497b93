//! Feeds arbitrary bytes to the decoder in every protocol version. Decoding must never panic,
//! and every packet that decodes must re-encode to bytes that decode to the same packet.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use midge_codec::{decode, encode, encoded_len, ProtocolVersion, MAX_PACKET_SIZE};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

fuzz_target!(|data: &[u8]| {
    for version in VERSIONS {
        let mut buf = BytesMut::from(data);
        // Several packets may be packed back to back; stop at the first error or gap.
        while let Ok(Some(packet)) = decode(&mut buf, version, MAX_PACKET_SIZE) {
            let mut wire = BytesMut::new();
            encode(&packet, version, &mut wire).expect("a decoded packet must re-encode");
            assert_eq!(encoded_len(&packet, version), Ok(wire.len()));
            let again = decode(&mut wire, version, MAX_PACKET_SIZE)
                .expect("a re-encoded packet must decode")
                .expect("a re-encoded packet is complete");
            assert_eq!(again, packet);
            assert!(wire.is_empty(), "re-encoded packet has trailing bytes");
        }
    }
});
