//! `docker cp` out of a container: `HEAD`/`GET /containers/{id}/archive?path=`. The path is
//! resolved inside the container's rootfs with `openat2(RESOLVE_IN_ROOT)`, so symlinks can
//! never lead outside it; the tar never follows symlinks. `PUT` (copy into a container)
//! extracts with the image store's safe tar apply into the resolved directory.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use berth_api::ApiError;
use serde::Deserialize;

use super::error::ApiResult;
use super::query::DockerQuery;
use crate::daemon::Daemon;

/// `?path=`.
#[derive(Debug, Deserialize)]
pub struct ArchiveQuery {
    #[serde(default)]
    path: String,
    /// `PUT`: keep the tar's uid/gid (`docker cp -a`).
    #[serde(
        default,
        rename = "copyUIDGID",
        deserialize_with = "berth_api::query::docker_bool"
    )]
    copy_uid_gid: bool,
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Resolves `path` inside `rootfs` (O_PATH, symlinks resolved within the root).
fn open_in_root(rootfs: &std::path::Path, path: &str) -> Result<OwnedFd, ApiError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};
    let root = std::fs::File::open(rootfs)
        .map_err(|e| ApiError::internal(format!("opening rootfs: {e}")))?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .map_err(|e| {
        if e == rustix::io::Errno::NOENT {
            ApiError::not_found(format!("Could not find the file {path} in container"))
        } else {
            ApiError::invalid(format!("{path}: {e}"))
        }
    })
}

/// Docker's `X-Docker-Container-Path-Stat` value.
fn path_stat(fd: &OwnedFd, path: &str) -> Result<(String, bool), ApiError> {
    let st = rustix::fs::fstat(fd).map_err(|e| ApiError::internal(format!("stat {path}: {e}")))?;
    let is_dir = (st.st_mode & libc::S_IFMT) == libc::S_IFDIR;
    let name = std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_owned());
    // Go's os.FileMode bits for the type (what the docker CLI decodes).
    let mut mode = u64::from(st.st_mode & 0o777);
    if is_dir {
        mode |= 1 << 31;
    }
    let mtime = chrono::DateTime::from_timestamp(st.st_mtime, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let stat = serde_json::json!({
        "name": name,
        "size": st.st_size,
        "mode": mode,
        "mtime": mtime,
        "linkTarget": "",
    });
    Ok((base64(stat.to_string().as_bytes()), is_dir))
}

/// Keeps the rootfs mounted while a copy runs (stopped containers are mounted for it).
struct MountRef {
    daemon: Arc<Daemon>,
    id: String,
}

impl Drop for MountRef {
    fn drop(&mut self) {
        if let Err(e) = self.daemon.images.unmount(&self.id) {
            tracing::warn!(id = %self.id, error = %e, "unmounting after copy");
        }
    }
}

/// `HEAD|GET /containers/{id}/archive`.
pub async fn get(
    State(d): State<Arc<Daemon>>,
    method: Method,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ArchiveQuery>,
) -> ApiResult<Response> {
    if q.path.is_empty() {
        return Err(ApiError::invalid("path is required").into());
    }
    let e = d.containers.get(&id)?;
    let cid = e.id.clone();
    let rootfs = d
        .blocking(move |d| d.images.mount(&cid).map_err(crate::images::api_error))
        .await?;
    let guard = MountRef {
        daemon: d.clone(),
        id: e.id.clone(),
    };
    let fd = open_in_root(&rootfs, &q.path)?;
    let (stat, is_dir) = path_stat(&fd, &q.path)?;
    let stat_header =
        HeaderValue::from_str(&stat).map_err(|_| ApiError::internal("stat header not ASCII"))?;
    let mut resp = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        let name = std::path::Path::new(&q.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".to_owned());
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let src = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            let mut b = tar::Builder::new(TxWriter(tx));
            b.follow_symlinks(false);
            let res = if is_dir {
                b.append_dir_all(&name, &src)
            } else {
                std::fs::File::open(&src).and_then(|mut f| b.append_file(&name, &mut f))
            };
            if let Err(err) = res.and_then(|()| b.finish()) {
                tracing::warn!(error = %err, "archive stream failed");
            }
            drop(fd);
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
        });
        Response::new(Body::from_stream(stream))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    h.insert("X-Docker-Container-Path-Stat", stat_header);
    Ok(resp)
}

/// `PUT /containers/{id}/archive?path=DIR`: extract the body (a tar) into DIR.
pub async fn put(
    State(d): State<Arc<Daemon>>,
    Path(id): Path<String>,
    DockerQuery(q): DockerQuery<ArchiveQuery>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    use futures_util::StreamExt;
    if q.path.is_empty() {
        return Err(ApiError::invalid("path is required").into());
    }
    let e = d.containers.get(&id)?;
    if e.with(|r| r.host_config.readonly_rootfs == Some(true)) {
        return Err(ApiError::forbidden("container rootfs is marked read-only").into());
    }
    let cid = e.id.clone();
    let rootfs = d
        .blocking(move |d| d.images.mount(&cid).map_err(crate::images::api_error))
        .await?;
    let guard = MountRef {
        daemon: d.clone(),
        id: e.id.clone(),
    };
    let fd = open_in_root(&rootfs, &q.path)?;
    let (_, is_dir) = path_stat(&fd, &q.path)?;
    if !is_dir {
        return Err(
            ApiError::invalid(format!("extraction point is not a directory: {}", q.path)).into(),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let preserve_owner = q.copy_uid_gid;
    let extract = d.blocking(move |_| {
        let _guard = guard;
        let dest = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let res = berth_image::apply::apply_layer(
            super::transfer::ChannelReader::new(rx),
            &dest,
            &berth_image::apply::ApplyOptions { preserve_owner },
        );
        drop(fd);
        res.map(|_| ())
            .map_err(|err| ApiError::invalid(format!("extracting into {}: {err}", dest.display())))
    });
    let feed = async move {
        let mut body = req.into_body().into_data_stream();
        while let Some(chunk) = body.next().await {
            let item = chunk.map_err(|err| format!("reading request body: {err}"));
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    };
    let (res, ()) = tokio::join!(extract, feed);
    res?;
    Ok(Response::new(Body::empty()))
}

struct TxWriter(tokio::sync::mpsc::Sender<bytes::Bytes>);

impl std::io::Write for TxWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(bytes::Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
