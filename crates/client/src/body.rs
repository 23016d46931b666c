//! Request bodies: empty, JSON, bytes, or streamed from any `AsyncRead` (image archives).

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The body type every request is sent with.
pub type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// No body.
pub fn empty() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body of the given bytes.
pub fn bytes(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body streamed from `reader` in 64 KiB chunks, so large archives never sit in memory.
pub fn reader<R: AsyncRead + Send + Sync + Unpin + 'static>(reader: R) -> ReqBody {
    let stream = futures_util::stream::unfold(Some(reader), |state| async move {
        let mut r = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(r)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}
