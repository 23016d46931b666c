//! Moving bytes between the local stdio and a hijacked attach/exec connection: stdin in (with
//! the detach-key proxy on a TTY), output out (raw with a TTY, stdcopy-demultiplexed without),
//! half-close when stdin ends, as docker/cli's hijackedIOStreamer.

use berth_client::{Demuxer, Hijacked, StdStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{CliError, Result};
use crate::output;
use crate::tty::{Escape, EscapeProxy};

/// How a stream session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The daemon closed the output.
    Done,
    /// The user typed the detach keys.
    Detached,
}

/// What to stream.
#[derive(Debug, Clone)]
pub struct StreamOpts {
    /// Send local stdin.
    pub stdin: bool,
    /// The container has a TTY (raw output, no stdcopy framing).
    pub tty: bool,
    /// Detach sequence (only honoured with a TTY and stdin, as Docker).
    pub detach_keys: Vec<u8>,
}

/// Reads stdin on a plain thread (tokio's stdin would keep the runtime alive at exit); `None`
/// marks EOF.
pub fn stdin_channel() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = vec![0u8; 32 * 1024];
        let mut input = std::io::stdin();
        loop {
            match input.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Writes demultiplexed or raw output to the local stdout/stderr.
#[derive(Debug)]
pub struct OutputSink {
    tty: bool,
    demux: Demuxer,
}

impl OutputSink {
    /// A sink for a stream with (`tty`) or without framing.
    pub fn new(tty: bool) -> Self {
        OutputSink {
            tty,
            demux: Demuxer::new(),
        }
    }

    /// Handles received bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if self.tty {
            output::out_bytes(data);
            return Ok(());
        }
        self.demux.push(data);
        while let Some((stream, payload)) = self
            .demux
            .next_frame()
            .map_err(|e| CliError::Msg(format!("error reading the output stream: {e}")))?
        {
            match stream {
                StdStream::Stdout | StdStream::Stdin => output::out_bytes(&payload),
                StdStream::Stderr => output::err_bytes(&payload),
                StdStream::System => {
                    return Err(CliError::Msg(
                        String::from_utf8_lossy(&payload).trim().to_owned(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Pumps until the output ends or the user detaches.
pub async fn pump(conn: Hijacked, opts: StreamOpts) -> Result<StreamEnd> {
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut sink = OutputSink::new(opts.tty);
    let mut stdin = if opts.stdin {
        Some(stdin_channel())
    } else {
        None
    };
    let mut proxy = EscapeProxy::new(if opts.tty {
        opts.detach_keys.clone()
    } else {
        Vec::new()
    });
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        tokio::select! {
            r = rd.read(&mut buf) => {
                match r {
                    Ok(0) => return Ok(StreamEnd::Done),
                    Ok(n) => sink.write(&buf[..n])?,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(StreamEnd::Done),
                    Err(e) => return Err(CliError::io("reading from the container", e)),
                }
            }
            input = async {
                match stdin.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                match input.flatten() {
                    Some(data) => {
                        let (fwd, detach) = match proxy.feed(&data) {
                            Escape::Forward(b) => (b, false),
                            Escape::Detach(b) => (b, true),
                        };
                        if !fwd.is_empty() && wr.write_all(&fwd).await.is_err() {
                            // The container closed its stdin; keep reading output.
                            stdin = None;
                        }
                        if detach {
                            return Ok(StreamEnd::Detached);
                        }
                    }
                    None => {
                        // EOF on local stdin: half-close so the container sees EOF too.
                        let _ = wr.shutdown().await;
                        stdin = None;
                    }
                }
            }
        }
    }
}
