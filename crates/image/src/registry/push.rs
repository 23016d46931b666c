//! `docker push`: for each layer, skip it when the registry has it, mount it from another
//! repository of the same registry when the distribution metadata knows one, else recompress
//! it deterministically (gzip, header mtime 0, fixed level: the same image always yields the
//! same digests) into a temp file and upload it; then the config and a Docker v2 schema 2
//! manifest under the tag.

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::auth::AuthConfig;
use super::client::RepoClient;
use super::error::RegistryError;
use super::http::{self as h, Body};
use super::manifest::{self, Descriptor, ImageManifest};
use super::progress::{ProgressEvent, short_id};
use crate::layer_store::LayerInfo;
use crate::reference::{self, Reference};
use crate::store::{Store, StoreError};
use crate::{distribution, ids};

/// gzip level for pushed layers. Part of the digest: changing it changes what a push of an
/// unchanged image uploads (the metadata of earlier pushes still deduplicates).
pub const PUSH_GZIP_LEVEL: u32 = 6;

/// Options of [`push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Credentials (anonymous when empty).
    pub auth: AuthConfig,
    /// Registries spoken to over plain HTTP, besides loopback.
    pub insecure_registries: Vec<String>,
}

/// What a push did (Docker's `aux` message: Tag, Digest, Size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushResult {
    /// Tag pushed.
    pub tag: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: usize,
}

/// Push the image `reference` names (default tag `latest`) to its registry.
pub async fn push(
    store: Arc<Store>,
    reference: &str,
    opts: PushOptions,
    mut progress: impl FnMut(ProgressEvent),
) -> Result<PushResult, RegistryError> {
    let r = reference::parse_normalized(reference)?;
    if r.digest().is_some() {
        return Err(RegistryError::Invalid(
            "cannot push a digest reference".into(),
        ));
    }
    let r = r.with_default_tag();
    let tag = r.tag().unwrap_or(reference::DEFAULT_TAG).to_string();
    let image_id = match store.resolve(&r.to_string()) {
        Ok(id) => id,
        Err(StoreError::NoSuchImage(_)) => {
            return Err(RegistryError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                r.name_only().familiar_string()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    progress(ProgressEvent::message(format!(
        "The push refers to repository [{}]",
        r.name()
    )));
    let (layers, config) = {
        let s = store.clone();
        let id = image_id.clone();
        tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            Ok((s.image_layers(&id)?, s.image_config_bytes(&id)?))
        })
        .await
        .map_err(|e| RegistryError::Task(e.to_string()))??
    };
    // Where each layer was seen before, on this registry.
    let mut known = Vec::with_capacity(layers.len());
    let mut mount_sources = Vec::new();
    for l in &layers {
        let mut same_repo = Vec::new();
        let mut other = Vec::new();
        for m in distribution::metadata_for(store.layout(), &l.diff_id)? {
            let Ok(src) = reference::parse_normalized(&m.source_repository) else {
                continue;
            };
            if src.domain() != r.domain() || !ids::is_sha256_digest(&m.digest) {
                continue;
            }
            if src.path() == r.path() {
                same_repo.push(m.digest);
            } else {
                if !mount_sources.contains(&src.path().to_string()) {
                    mount_sources.push(src.path().to_string());
                }
                other.push((m.digest, src.path().to_string()));
            }
        }
        known.push((same_repo, other));
    }
    let client = RepoClient::new(
        &r,
        opts.auth.clone(),
        &opts.insecure_registries,
        "pull,push",
        &mount_sources,
    );
    for l in layers.iter().rev() {
        progress(ProgressEvent::layer(&short_id(&l.diff_id), "Preparing"));
    }
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut descriptors = Vec::with_capacity(layers.len());
    for (l, (same_repo, other)) in layers.iter().zip(known) {
        let fut = push_layer(&store, &client, &r, l, &same_repo, &other, &ev_tx);
        let d = drive(fut, &mut ev_rx, &mut progress).await?;
        distribution::record(store.layout(), &d.digest, &l.diff_id, &r.name())?;
        descriptors.push(d);
    }
    // Config, then the manifest.
    let config_digest = ids::sha256_digest(&config);
    let config = Bytes::from(config);
    if client.blob_exists(&config_digest).await?.is_none() {
        let c = config.clone();
        client
            .upload_blob(&config_digest, c.len() as u64, || h::full(c.clone()))
            .await?;
    }
    let m = ImageManifest {
        schema_version: 2,
        media_type: manifest::DOCKER_MANIFEST.into(),
        config: Descriptor {
            media_type: manifest::DOCKER_CONFIG.into(),
            size: config.len() as u64,
            digest: config_digest,
            urls: Vec::new(),
            platform: None,
        },
        layers: descriptors,
    };
    let data = docker_json(&m)?;
    let digest = ids::sha256_digest(&data);
    let size = data.len();
    client
        .put_manifest(&tag, manifest::DOCKER_MANIFEST, Bytes::from(data))
        .await?;
    store.add_reference(&r.name_only().with_digest(&digest)?, &image_id)?;
    progress(ProgressEvent::message(format!(
        "{tag}: digest: {digest} size: {size}"
    )));
    Ok(PushResult { tag, digest, size })
}

/// JSON the way Docker writes manifests (`MarshalIndent` with three spaces).
fn docker_json(m: &ImageManifest) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(m, &mut ser)
        .map_err(|e| RegistryError::Invalid(format!("encoding manifest: {e}")))?;
    Ok(out)
}

/// Poll `fut` while forwarding the events its parts send.
async fn drive<T>(
    fut: impl Future<Output = T>,
    rx: &mut mpsc::UnboundedReceiver<ProgressEvent>,
    progress: &mut impl FnMut(ProgressEvent),
) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            Some(ev) = rx.recv() => progress(ev),
            out = &mut fut => {
                while let Ok(ev) = rx.try_recv() {
                    progress(ev);
                }
                return out;
            }
        }
    }
}

/// Push one layer; returns its descriptor in the manifest.
async fn push_layer(
    store: &Arc<Store>,
    client: &RepoClient,
    r: &Reference,
    l: &LayerInfo,
    same_repo: &[String],
    other: &[(String, String)],
    events: &mpsc::UnboundedSender<ProgressEvent>,
) -> Result<Descriptor, RegistryError> {
    let id = short_id(&l.diff_id);
    let desc = |digest: &str, size: u64| Descriptor {
        media_type: manifest::DOCKER_LAYER_GZIP.into(),
        size,
        digest: digest.to_string(),
        urls: Vec::new(),
        platform: None,
    };
    for d in same_repo {
        if let Some(size) = client.blob_exists(d).await? {
            let _ = events.send(ProgressEvent::layer(&id, "Layer already exists"));
            return Ok(desc(d, size));
        }
    }
    for (d, from) in other {
        if client.mount_blob(d, from).await?
            && let Some(size) = client.blob_exists(d).await?
        {
            let _ = events.send(ProgressEvent::layer(&id, format!("Mounted from {from}")));
            return Ok(desc(d, size));
        }
    }
    // Recompress into a temp file (digest first: the upload names it).
    let tmp = TempFile(
        store
            .layout()
            .tmp_dir()
            .join(format!("push-{}.gz", ids::random_id())),
    );
    let (digest, size) = {
        let s = store.clone();
        let chain = l.chain_id.clone();
        let path = tmp.0.clone();
        tokio::task::spawn_blocking(move || compress_layer(&s, &chain, &path))
            .await
            .map_err(|e| RegistryError::Task(e.to_string()))??
    };
    if client.blob_exists(&digest).await?.is_some() {
        let _ = events.send(ProgressEvent::layer(&id, "Layer already exists"));
        return Ok(desc(&digest, size));
    }
    let path = tmp.0.clone();
    client
        .upload_blob(&digest, size, || {
            file_body(path.clone(), size, id.clone(), events.clone())
        })
        .await?;
    let _ = events.send(ProgressEvent::layer(&id, "Pushed"));
    let _ = r;
    Ok(desc(&digest, size))
}

/// Write the layer's tar gzip-compressed (deterministic) to `path`: (digest, size).
fn compress_layer(
    store: &Store,
    chain_id: &str,
    path: &Path,
) -> Result<(String, u64), RegistryError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| RegistryError::io(format!("creating {}", dir.display()), e))?;
    }
    let f = std::fs::File::create(path)
        .map_err(|e| RegistryError::io(format!("creating {}", path.display()), e))?;
    let mut hw = HashWriter {
        inner: io::BufWriter::with_capacity(1 << 20, f),
        hash: Sha256::new(),
        n: 0,
    };
    {
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(&mut hw, flate2::Compression::new(PUSH_GZIP_LEVEL));
        store.layer_tar(chain_id, &mut gz)?;
        gz.finish()
            .map_err(|e| RegistryError::io("compressing layer", e))?;
    }
    hw.inner
        .flush()
        .map_err(|e| RegistryError::io(format!("writing {}", path.display()), e))?;
    Ok((format!("sha256:{}", hex::encode(hw.hash.finalize())), hw.n))
}

struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    n: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes the file on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A request body streaming a file, reporting "Pushing" progress.
fn file_body(
    path: PathBuf,
    total: u64,
    id: String,
    events: mpsc::UnboundedSender<ProgressEvent>,
) -> Body {
    struct St {
        file: Option<tokio::fs::File>,
        path: PathBuf,
        sent: u64,
        last: u64,
    }
    let step = (total / 100).max(256 * 1024);
    let stream = futures_util::stream::unfold(
        St {
            file: None,
            path,
            sent: 0,
            last: 0,
        },
        move |mut st| {
            let id = id.clone();
            let events = events.clone();
            async move {
                if st.file.is_none() {
                    match tokio::fs::File::open(&st.path).await {
                        Ok(f) => st.file = Some(f),
                        Err(e) => return Some((Err(e), st)),
                    }
                }
                let f = st.file.as_mut()?;
                let mut buf = vec![0u8; 256 * 1024];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        st.sent += n as u64;
                        if st.sent - st.last >= step || st.sent == total {
                            st.last = st.sent;
                            let _ =
                                events.send(ProgressEvent::bytes(&id, "Pushing", st.sent, total));
                        }
                        Some((Ok(Frame::data(Bytes::from(buf))), st))
                    }
                    Err(e) => Some((Err(e), st)),
                }
            }
        },
    );
    StreamBody::new(stream).boxed()
}
