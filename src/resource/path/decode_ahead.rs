//! Decompression on a thread of its own, ahead of the extraction.
//!
//! A restore does, for every byte: read the artifact, hash it,
//! decompress it, hash the file it belongs to and write it. On one
//! thread that is one core busy and the others idle; here the first
//! three steps run on a second thread, which hands the decompressed
//! stream over in large chunks through a short bounded queue (so memory
//! stays a few MiB whatever the point's size) and gets the emptied chunks
//! back to refill, without allocating per chunk.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::thread::Scope;

/// Bytes per chunk handed over: large enough that the hand-over costs
/// nothing next to the work on each side.
const CHUNK: usize = 1 << 20;
/// Chunks decompressed ahead of the extraction at most.
const AHEAD: usize = 4;

/// The decompressed stream, as read by the extraction.
pub(super) struct DecodedAhead {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

/// Starts decompressing `compressed` (a zstd stream) on a thread of
/// `scope`, reading it to its end. The thread stops when the stream ends,
/// fails (the error is what the extraction reads next) or when the
/// returned reader is dropped.
pub(super) fn decode_ahead<'scope, R: Read + Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    compressed: R,
) -> io::Result<DecodedAhead> {
    let mut decoder = zstd::stream::read::Decoder::new(compressed)?;
    let (full_tx, full) = sync_channel(AHEAD);
    let (empty, empty_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
    scope.spawn(move || loop {
        let mut chunk = match empty_rx.try_recv() {
            Ok(chunk) => chunk,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => Vec::with_capacity(CHUNK),
        };
        match fill(&mut decoder, &mut chunk) {
            Ok(()) if chunk.is_empty() => return,
            Ok(()) => {
                if full_tx.send(Ok(chunk)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = full_tx.send(Err(e));
                return;
            }
        }
    });
    Ok(DecodedAhead {
        full,
        empty,
        current: Vec::new(),
        pos: 0,
    })
}

/// Reads into `chunk` (emptied first) until it holds `CHUNK` bytes or the
/// stream ends.
fn fill(source: &mut impl Read, chunk: &mut Vec<u8>) -> io::Result<()> {
    chunk.clear();
    chunk.resize(CHUNK, 0);
    let mut len = 0;
    while len < CHUNK {
        match source.read(&mut chunk[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    chunk.truncate(len);
    Ok(())
}

impl Read for DecodedAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.current.len() {
            let next = match self.full.recv() {
                Ok(next) => next?,
                // The thread is done: the stream ended.
                Err(_) => return Ok(0),
            };
            let used = std::mem::replace(&mut self.current, next);
            self.pos = 0;
            // The thread allocates a new chunk when none comes back.
            let _ = self.empty.try_send(used);
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressed(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 1).unwrap()
    }

    #[test]
    fn reads_back_exactly_what_was_compressed_across_many_chunks() {
        // Not a multiple of the chunk, so the last one is short.
        let data: Vec<u8> = (0..(3 * CHUNK + 12_345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let packed = compressed(&data);
        let out = std::thread::scope(|s| {
            let mut reader = decode_ahead(s, &packed[..]).unwrap();
            let mut out = Vec::new();
            // Small reads, as tar does between headers.
            let mut buf = [0u8; 512];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            out
        });
        assert_eq!(out.len(), data.len());
        assert!(out == data, "decompressed bytes differ");
    }

    #[test]
    fn a_corrupt_stream_is_an_error_not_an_early_end() {
        let data = vec![42u8; 2 * CHUNK];
        let mut packed = compressed(&data);
        let cut = packed.len() / 2;
        packed.truncate(cut);
        let result = std::thread::scope(|s| {
            let mut reader = decode_ahead(s, &packed[..]).unwrap();
            let mut out = Vec::new();
            reader.read_to_end(&mut out)
        });
        assert!(result.is_err(), "a truncated stream read as whole");
    }

    #[test]
    fn dropping_the_reader_early_stops_the_thread() {
        let data = vec![7u8; 16 * CHUNK];
        let packed = compressed(&data);
        // The scope returns only once the thread has ended.
        std::thread::scope(|s| {
            let mut reader = decode_ahead(s, &packed[..]).unwrap();
            let mut buf = [0u8; 10];
            reader.read_exact(&mut buf).unwrap();
            assert_eq!(buf, [7u8; 10]);
        });
    }
}
