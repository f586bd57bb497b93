//! The byte format `export` writes and `import` reads, shared by every backend.
//!
//! ```text
//! magic    "MIDGESS" 0x01                       (8 bytes; the last byte is the version)
//! record*  0x01, table id u8, key len u32 BE, key, value len u32 BE, value
//! trailer  0xFE, record count u64 BE, crc32 u32 BE of every byte before the crc
//! ```
//!
//! The trailer makes truncation detectable (no trailer) and the crc catches flipped bytes; the
//! stream must end right after the trailer. Records are read one at a time so neither side
//! holds more than one row in memory.

use crate::keys::decode_state_key;
use crate::{StateTable, StoreError};
use std::io::{ErrorKind, Read, Write};

const MAGIC: &[u8; 8] = b"MIDGESS\x01";
const TAG_RECORD: u8 = 0x01;
const TAG_TRAILER: u8 = 0xFE;
/// Larger than any key this crate builds (a subscription is at most 2 + 2 * 65535 bytes);
/// checked before reading so a corrupt length fails fast.
const MAX_KEY_LEN: u32 = 1 << 20;
/// Larger than MQTT's maximum packet size.
const MAX_VALUE_LEN: u32 = 512 << 20;

/// The stable id of a table in the stream (never reuse or renumber).
fn table_id(table: StateTable) -> u8 {
    match table {
        StateTable::Retained => 1,
        StateTable::Sessions => 2,
        StateTable::Subscriptions => 3,
        StateTable::Messages => 4,
        StateTable::Qos2 => 5,
        StateTable::Meta => 6,
    }
}

fn table_from_id(id: u8) -> Option<StateTable> {
    StateTable::ALL.into_iter().find(|t| table_id(*t) == id)
}

/// Writes a snapshot stream record by record.
pub(crate) struct SnapshotWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    records: u64,
    bytes: u64,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a stream by writing the magic.
    pub(crate) fn new(out: W) -> Result<Self, StoreError> {
        let mut writer = SnapshotWriter {
            out,
            crc: crc32fast::Hasher::new(),
            records: 0,
            bytes: 0,
        };
        writer.put(MAGIC)?;
        Ok(writer)
    }

    /// Writes one row.
    pub(crate) fn record(
        &mut self,
        table: StateTable,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        let key_len = checked_len(key.len(), MAX_KEY_LEN, "key", table)?;
        let value_len = checked_len(value.len(), MAX_VALUE_LEN, "value", table)?;
        self.put(&[TAG_RECORD, table_id(table)])?;
        self.put(&key_len.to_be_bytes())?;
        self.put(key)?;
        self.put(&value_len.to_be_bytes())?;
        self.put(value)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer and flushes; returns the bytes written in all.
    pub(crate) fn finish(mut self) -> Result<u64, StoreError> {
        self.put(&[TAG_TRAILER])?;
        self.put(&self.records.to_be_bytes())?;
        let crc = self.crc.clone().finalize();
        self.put(&crc.to_be_bytes())?;
        self.out
            .flush()
            .map_err(|e| StoreError::io("writing snapshot stream", e))?;
        Ok(self.bytes)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.out
            .write_all(bytes)
            .map_err(|e| StoreError::io("writing snapshot stream", e))?;
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

fn checked_len(len: usize, max: u32, what: &str, table: StateTable) -> Result<u32, StoreError> {
    u32::try_from(len)
        .ok()
        .filter(|len| *len <= max)
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "{what} of {len} bytes in {} is too large for a snapshot",
                table.name()
            ))
        })
}

/// One row read from a snapshot stream; its key decodes for its table.
#[derive(Debug)]
pub(crate) struct SnapshotRecord {
    /// Table the row belongs to.
    pub(crate) table: StateTable,
    /// Encoded key (see `keys`).
    pub(crate) key: Vec<u8>,
    /// Opaque value.
    pub(crate) value: Vec<u8>,
}

/// Reads and verifies a snapshot stream record by record.
///
/// Rows come out before the trailer has been checked: a caller must not make them visible
/// until `next_record` has returned `Ok(None)`.
pub(crate) struct SnapshotReader<R: Read> {
    input: R,
    crc: crc32fast::Hasher,
    records: u64,
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the magic.
    pub(crate) fn new(input: R) -> Result<Self, StoreError> {
        let mut reader = SnapshotReader {
            input,
            crc: crc32fast::Hasher::new(),
            records: 0,
            done: false,
        };
        let mut magic = [0u8; 8];
        reader.take(&mut magic, "magic")?;
        if &magic != MAGIC {
            return Err(StoreError::Snapshot(
                "bad magic: not a Midge snapshot of a known version".into(),
            ));
        }
        Ok(reader)
    }

    /// The next row, or `None` once the trailer has verified and the stream has ended.
    pub(crate) fn next_record(&mut self) -> Result<Option<SnapshotRecord>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.take(&mut tag, "record tag")?;
        match tag[0] {
            TAG_RECORD => self.read_record().map(Some),
            TAG_TRAILER => {
                self.read_trailer()?;
                self.done = true;
                Ok(None)
            }
            other => Err(StoreError::Snapshot(format!(
                "unknown tag {other:#04x} after {} records",
                self.records
            ))),
        }
    }

    /// The input, positioned after the trailer once `next_record` returned `Ok(None)`.
    pub(crate) fn into_inner(self) -> R {
        self.input
    }

    fn read_record(&mut self) -> Result<SnapshotRecord, StoreError> {
        let mut id = [0u8; 1];
        self.take(&mut id, "table id")?;
        let table = table_from_id(id[0]).ok_or_else(|| {
            StoreError::Snapshot(format!(
                "unknown table id {} in record {}",
                id[0], self.records
            ))
        })?;
        let key = self.take_vec(MAX_KEY_LEN, "key")?;
        decode_state_key(table, &key)
            .map_err(|e| StoreError::Snapshot(format!("record {}: {e}", self.records)))?;
        let value = self.take_vec(MAX_VALUE_LEN, "value")?;
        self.records += 1;
        Ok(SnapshotRecord { table, key, value })
    }

    fn read_trailer(&mut self) -> Result<(), StoreError> {
        let mut count = [0u8; 8];
        self.take(&mut count, "trailer")?;
        let count = u64::from_be_bytes(count);
        let expected = self.crc.clone().finalize();
        let mut crc = [0u8; 4];
        self.input
            .read_exact(&mut crc)
            .map_err(|e| read_error(e, "trailer checksum"))?;
        if count != self.records {
            return Err(StoreError::Snapshot(format!(
                "trailer counts {count} records but the stream has {}",
                self.records
            )));
        }
        if u32::from_be_bytes(crc) != expected {
            return Err(StoreError::Snapshot("checksum mismatch".into()));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.input.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(StoreError::Snapshot(
                        "unexpected data after the trailer".into(),
                    ))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(e, "end of stream")),
            }
        }
    }

    /// Reads exactly `buf.len()` bytes and hashes them.
    fn take(&mut self, buf: &mut [u8], what: &str) -> Result<(), StoreError> {
        self.input
            .read_exact(buf)
            .map_err(|e| read_error(e, what))?;
        self.crc.update(buf);
        Ok(())
    }

    /// Reads a u32 BE length (at most `max`) and that many bytes. The buffer grows as bytes
    /// arrive, so a corrupt length cannot make us allocate more than the stream holds.
    fn take_vec(&mut self, max: u32, what: &str) -> Result<Vec<u8>, StoreError> {
        let mut len = [0u8; 4];
        self.take(&mut len, what)?;
        let len = u32::from_be_bytes(len);
        if len > max {
            return Err(StoreError::Snapshot(format!(
                "{what} length {len} in record {} exceeds {max}",
                self.records
            )));
        }
        let mut buf = Vec::new();
        let read = (&mut self.input)
            .take(u64::from(len))
            .read_to_end(&mut buf)
            .map_err(|e| read_error(e, what))?;
        if read != len as usize {
            return Err(StoreError::Snapshot(format!(
                "truncated in the {what} of record {}",
                self.records
            )));
        }
        self.crc.update(&buf);
        Ok(buf)
    }
}

fn read_error(err: std::io::Error, what: &str) -> StoreError {
    if err.kind() == ErrorKind::UnexpectedEof {
        StoreError::Snapshot(format!("truncated while reading the {what}"))
    } else {
        StoreError::io(format!("reading snapshot stream ({what})"), err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::message_key;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = SnapshotWriter::new(&mut out).unwrap();
        w.record(StateTable::Retained, b"a/b", b"v1").unwrap();
        w.record(StateTable::Messages, &message_key("c", 3).unwrap(), b"")
            .unwrap();
        let n = w.finish().unwrap();
        assert_eq!(n as usize, out.len());
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<SnapshotRecord>, StoreError> {
        let mut r = SnapshotReader::new(bytes)?;
        let mut rows = Vec::new();
        while let Some(row) = r.next_record()? {
            rows.push(row);
        }
        Ok(rows)
    }

    #[test]
    fn round_trip() {
        let rows = read_all(&sample()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].table, StateTable::Retained);
        assert_eq!(rows[0].value, b"v1");
        assert_eq!(rows[1].table, StateTable::Messages);
    }

    #[test]
    fn every_truncation_fails() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = read_all(&bytes[..len]).unwrap_err();
            assert!(matches!(err, StoreError::Snapshot(_)), "at {len}: {err}");
        }
    }

    #[test]
    fn every_flipped_byte_fails() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(read_all(&bad).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn trailing_data_fails() {
        let mut bytes = sample();
        bytes.push(0);
        assert!(read_all(&bytes).is_err());
    }

    #[test]
    fn table_ids_are_distinct() {
        for t in StateTable::ALL {
            assert_eq!(table_from_id(table_id(t)), Some(t));
        }
    }
}
