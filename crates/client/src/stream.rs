//! Streaming response bodies: raw chunks, and JSON-lines (pull/load progress, events).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

use crate::error::ClientError;

/// A response body read chunk by chunk as it arrives.
#[derive(Debug)]
pub struct ByteStream {
    body: Incoming,
    host: String,
}

impl ByteStream {
    pub(crate) fn new(body: Incoming, host: String) -> Self {
        ByteStream { body, host }
    }

    /// The next data chunk, or `None` at the end of the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(ClientError::Http {
                        host: self.host.clone(),
                        source,
                    });
                }
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        return Ok(Some(d));
                    }
                }
            }
        }
    }

    /// Reads the rest of the body.
    pub async fn collect(mut self) -> Result<Bytes, ClientError> {
        let mut all = BytesMut::new();
        while let Some(c) = self.chunk().await? {
            all.extend_from_slice(&c);
        }
        Ok(all.freeze())
    }
}

/// Splits a byte stream into newline-terminated JSON values.
#[derive(Debug)]
pub struct JsonLines {
    inner: ByteStream,
    buf: BytesMut,
    done: bool,
}

impl JsonLines {
    pub(crate) fn new(inner: ByteStream) -> Self {
        JsonLines {
            inner,
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next JSON value, or `None` at the end of the stream. Blank lines are skipped.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T, ClientError>> {
        loop {
            if let Some(line) = take_line(&mut self.buf, self.done) {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(&line).map_err(|source| ClientError::Decode {
                        what: "a JSON stream line".into(),
                        source,
                    }),
                );
            }
            if self.done {
                return None;
            }
            match self.inner.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    self.buf.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Takes one line out of `buf`; at EOF the unterminated rest counts as a line.
fn take_line(buf: &mut BytesMut, eof: bool) -> Option<Bytes> {
    if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
        let line = buf.split_to(pos + 1);
        return Some(line.freeze().slice(..pos));
    }
    if eof && !buf.is_empty() {
        return Some(buf.split().freeze());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_unterminated_tail() {
        let mut b = BytesMut::from(&b"{\"a\":1}\n{\"a\":2}\n{\"a\""[..]);
        assert_eq!(take_line(&mut b, false).unwrap(), &b"{\"a\":1}"[..]);
        assert_eq!(take_line(&mut b, false).unwrap(), &b"{\"a\":2}"[..]);
        assert!(take_line(&mut b, false).is_none());
        assert_eq!(take_line(&mut b, true).unwrap(), &b"{\"a\""[..]);
        assert!(take_line(&mut b, true).is_none());
    }
}
