//! Docker's stdcopy framing: without a TTY, attach/logs/exec streams interleave stdout and
//! stderr as frames of an 8-byte header (`[stream, 0, 0, 0, len u32 BE]`) and a payload.

use bytes::{Buf, Bytes, BytesMut};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    /// 0: stdin (only echoed back by some daemons).
    Stdin,
    /// 1: stdout.
    Stdout,
    /// 2: stderr.
    Stderr,
    /// 3: a system error the daemon reports in-band.
    System,
}

/// Errors while demultiplexing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StdcopyError {
    /// The stream byte of a header is not 0..=3: the stream is not stdcopy-framed.
    #[error("unrecognized input header: {0}")]
    BadStream(u8),
}

/// Incremental decoder: feed bytes as they arrive, take whole frames out.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<(StdStream, Bytes)>, StdcopyError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let stream = match self.buf[0] {
            0 => StdStream::Stdin,
            1 => StdStream::Stdout,
            2 => StdStream::Stderr,
            3 => StdStream::System,
            b => return Err(StdcopyError::BadStream(b)),
        };
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        self.buf.advance(8);
        Ok(Some((stream, self.buf.split_to(len).freeze())))
    }

    /// Bytes left over that do not form a complete frame (a truncated stream at EOF).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Encodes one frame (used by tests and by anything that must speak stdcopy).
pub fn encode_frame(stream: StdStream, payload: &[u8]) -> Vec<u8> {
    let id = match stream {
        StdStream::Stdin => 0,
        StdStream::Stdout => 1,
        StdStream::Stderr => 2,
        StdStream::System => 3,
    };
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&[id, 0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_pushes() {
        let mut wire = encode_frame(StdStream::Stdout, b"hello\n");
        wire.extend(encode_frame(StdStream::Stderr, b"oops"));
        wire.extend(encode_frame(StdStream::Stdout, b""));
        let mut d = Demuxer::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
        }
        assert_eq!(
            out,
            vec![
                (StdStream::Stdout, Bytes::from_static(b"hello\n")),
                (StdStream::Stderr, Bytes::from_static(b"oops")),
                (StdStream::Stdout, Bytes::new()),
            ]
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn rejects_unframed_data() {
        let mut d = Demuxer::new();
        d.push(b"plain text!");
        assert_eq!(d.next_frame(), Err(StdcopyError::BadStream(b'p')));
    }
}
