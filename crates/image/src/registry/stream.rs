//! The bridge from the async download to the blocking extractor: a bounded channel of byte
//! chunks read as a `std::io::Read` on a `spawn_blocking` thread. Bounded, so a slow disk
//! slows the download instead of buffering the blob in memory.

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

/// Reads chunks from a channel; an `Err` chunk fails the read (the download broke), a
/// closed channel is end of stream.
#[derive(Debug)]
pub struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
    cur: Bytes,
}

impl ChannelReader {
    /// Reader over `rx`. Must be read from a blocking thread, not an async task.
    pub fn new(rx: mpsc::Receiver<Result<Bytes, io::Error>>) -> Self {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chunks_then_eof_or_error() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"cde"))).unwrap();
        drop(tx);
        let mut s = String::new();
        ChannelReader::new(rx).read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcde");

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
        tx.try_send(Err(io::Error::other("dropped"))).unwrap();
        let mut v = Vec::new();
        let e = ChannelReader::new(rx).read_to_end(&mut v).unwrap_err();
        assert_eq!(e.to_string(), "dropped");
    }
}
