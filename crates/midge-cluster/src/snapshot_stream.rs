//! A snapshot file as a stream of gRPC messages: a header (vote and metadata), the file in
//! chunks read as the stream is sent (never the whole file in memory), and an end marker with
//! the byte count. The receiver installs only a stream that ended with a matching marker.

use crate::pb::snapshot_chunk::Part;
use crate::{pb, NodeInfo};
use bytes::BytesMut;
use futures_util::Stream;
use openraft::{SnapshotMeta, Vote};
use std::io::SeekFrom;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes per data message.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

enum Sending {
    Header(pb::SnapshotHeader, tokio::fs::File),
    Data(tokio::fs::File, u64),
    Done,
}

/// The messages that send `file` (a snapshot's data) with `meta` under the leader's `vote`.
/// A read error ends the stream without its end marker, so the receiver drops what it got.
pub(crate) fn snapshot_chunks(
    vote: &Vote<u64>,
    meta: &SnapshotMeta<u64, NodeInfo>,
    file: tokio::fs::File,
) -> impl Stream<Item = pb::SnapshotChunk> + Send + 'static {
    let header = pb::SnapshotHeader {
        vote: Some(vote.into()),
        meta: Some(meta.into()),
    };
    futures_util::stream::unfold(Sending::Header(header, file), |state| async move {
        match state {
            Sending::Header(header, mut file) => {
                if let Err(e) = file.seek(SeekFrom::Start(0)).await {
                    tracing::warn!(error = %e, "cannot read the snapshot to send");
                    return None;
                }
                Some((chunk(Part::Header(header)), Sending::Data(file, 0)))
            }
            Sending::Data(mut file, sent) => {
                let mut buf = BytesMut::zeroed(CHUNK_BYTES);
                match read_full(&mut file, &mut buf).await {
                    Ok(0) => Some((
                        chunk(Part::End(pb::SnapshotEnd { total_bytes: sent })),
                        Sending::Done,
                    )),
                    Ok(n) => {
                        buf.truncate(n);
                        let sent = sent + n as u64;
                        Some((chunk(Part::Data(buf.freeze())), Sending::Data(file, sent)))
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the snapshot to send failed");
                        None
                    }
                }
            }
            Sending::Done => None,
        }
    })
}

fn chunk(part: Part) -> pb::SnapshotChunk {
    pb::SnapshotChunk { part: Some(part) }
}

/// Fills `buf` unless the file ends first; returns the bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn streams_header_chunks_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        let data: Vec<u8> = (0..CHUNK_BYTES * 2 + 10).map(|i| i as u8).collect();
        let mut f = tokio::fs::File::create(&path).await.unwrap();
        f.write_all(&data).await.unwrap();
        drop(f);
        let file = tokio::fs::File::open(&path).await.unwrap();
        let meta = SnapshotMeta::default();
        let parts: Vec<Part> = snapshot_chunks(&Vote::new(3, 1), &meta, file)
            .map(|c| c.part.unwrap())
            .collect()
            .await;
        assert_eq!(parts.len(), 5, "header, 3 data chunks, end");
        assert!(matches!(&parts[0], Part::Header(h) if h.vote.as_ref().unwrap().term == 3));
        let mut got = Vec::new();
        for p in &parts[1..4] {
            let Part::Data(d) = p else {
                panic!("expected data")
            };
            assert!(d.len() <= CHUNK_BYTES);
            got.extend_from_slice(d);
        }
        assert_eq!(got, data);
        assert!(matches!(&parts[4], Part::End(e) if e.total_bytes == data.len() as u64));
    }
}
