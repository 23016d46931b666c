//! `docker pull`: resolve the reference to an image manifest (choosing the platform in a
//! list), fetch and verify the config, then download every missing layer in parallel
//! (bounded) straight into the layer store's extractor — one streaming pass that hashes the
//! compressed bytes, decompresses, hashes the diff id and writes files into a temp dir — and
//! commit the layers bottom-up only when every digest has verified.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::auth::AuthConfig;
use super::client::{ATTEMPTS, RepoClient, backoff};
use super::error::RegistryError;
use super::manifest::{self, Descriptor, Fetched, ImageManifest, Platform};
use super::progress::{ProgressEvent, short_id};
use super::stream::ChannelReader;
use crate::config::ImageConfigView;
use crate::layer_store::Extracted;
use crate::reference::{self, Reference};
use crate::store::{Store, lock, lookup_form};
use crate::{distribution, ids};

/// Options of [`pull`].
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `os/arch[/variant]`; default `linux/<host arch>`.
    pub platform: Option<String>,
    /// Credentials (anonymous when empty).
    pub auth: AuthConfig,
    /// Registries (`host[:port]` or IPv4 CIDR) spoken to over plain HTTP, besides loopback.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once (Docker's `--max-concurrent-downloads`, default 3).
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: None,
            auth: AuthConfig::default(),
            insecure_registries: Vec::new(),
            max_concurrent_downloads: 3,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullResult {
    /// The image id (`sha256:<config digest>`).
    pub image_id: String,
    /// The digest of the manifest (or list) the reference resolved to (`RepoDigests`).
    pub manifest_digest: String,
    /// The normalised reference pulled.
    pub reference: Reference,
    /// False when the reference already pointed at this image ("Image is up to date").
    pub updated: bool,
}

/// The reference a pull of `s` means: default tag `latest` unless a digest is given.
fn pull_reference(s: &str) -> Result<Reference, RegistryError> {
    let r = reference::parse_normalized(s)?;
    Ok(if r.digest().is_some() {
        r
    } else {
        r.with_default_tag()
    })
}

/// Pull `reference` into `store`, calling `progress` with Docker's messages as it goes.
/// On error nothing partial remains: extracted layers live in temp dirs until every digest
/// has verified, and the image and its references are written last.
pub async fn pull(
    store: Arc<Store>,
    reference: &str,
    opts: PullOptions,
    mut progress: impl FnMut(ProgressEvent),
) -> Result<PullResult, RegistryError> {
    let r = pull_reference(reference)?;
    let tag_or_digest = r
        .digest()
        .or(r.tag())
        .unwrap_or(reference::DEFAULT_TAG)
        .to_string();
    let platform = Platform::parse(opts.platform.as_deref())?;
    progress(ProgressEvent::with_id(
        &tag_or_digest,
        format!("Pulling from {}", r.path()),
    ));
    let client = Arc::new(RepoClient::new(
        &r,
        opts.auth.clone(),
        &opts.insecure_registries,
        "pull",
        &[],
    ));
    let (manifest_digest, m) = resolve(&client, &r, &tag_or_digest, &platform)
        .await
        .map_err(|e| translate(e, &r))?;
    for l in &m.layers {
        if manifest::is_foreign(&l.media_type) {
            return Err(RegistryError::ForeignLayer {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
            });
        }
        if !ids::is_sha256_digest(&l.digest) {
            return Err(RegistryError::Manifest(format!(
                "unsupported layer digest {:?}",
                l.digest
            )));
        }
    }
    if !ids::is_sha256_digest(&m.config.digest) {
        return Err(RegistryError::Manifest(format!(
            "unsupported config digest {:?}",
            m.config.digest
        )));
    }
    let config = client.blob_bytes(&m.config.digest, "image config").await?;
    let view = ImageConfigView::parse(&config)
        .map_err(|e| RegistryError::Manifest(format!("image config {}: {e}", m.config.digest)))?;
    let diff_ids = view.rootfs.diff_ids.clone();
    if diff_ids.len() != m.layers.len() {
        return Err(RegistryError::Manifest(format!(
            "image config lists {} layers, manifest {}",
            diff_ids.len(),
            m.layers.len()
        )));
    }
    let chain = ids::chain_ids(&diff_ids);

    // Which layers are needed.
    let mut present = Vec::with_capacity(m.layers.len());
    for (i, l) in m.layers.iter().enumerate() {
        let have = store.layers.exists(&chain[i]);
        present.push(have);
        let status = if have {
            "Already exists"
        } else {
            "Pulling fs layer"
        };
        progress(ProgressEvent::layer(&short_id(&l.digest), status));
    }

    let extracted = download_all(
        &store,
        &client,
        &m.layers,
        &diff_ids,
        &present,
        &opts,
        &mut progress,
    )
    .await?;

    // Commit bottom-up, then the image, then its references.
    let store2 = store.clone();
    let config2 = config.clone();
    let chain2 = chain.clone();
    let diff2 = diff_ids.clone();
    let committed = tokio::task::spawn_blocking(move || {
        commit_all(&store2, extracted, &chain2, &diff2, &config2)
    })
    .await
    .map_err(|e| RegistryError::Task(e.to_string()))??;
    let image_id = committed;
    for (i, l) in m.layers.iter().enumerate() {
        if !present[i] {
            progress(ProgressEvent::layer(&short_id(&l.digest), "Pull complete"));
        }
    }

    let store3 = store.clone();
    let r2 = r.clone();
    let md = manifest_digest.clone();
    let id2 = image_id.clone();
    let layers = m.layers.clone();
    let updated = tokio::task::spawn_blocking(move || {
        record_refs(&store3, &r2, &md, &id2, &layers, &diff_ids)
    })
    .await
    .map_err(|e| RegistryError::Task(e.to_string()))??;

    progress(ProgressEvent::message(format!("Digest: {manifest_digest}")));
    let status = if updated {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    progress(ProgressEvent::message(format!(
        "Status: {status} {}",
        r.familiar_string()
    )));
    Ok(PullResult {
        image_id,
        manifest_digest,
        reference: r,
        updated,
    })
}

/// Docker's pull error translation (`translatePullError`).
fn translate(e: RegistryError, r: &Reference) -> RegistryError {
    match e {
        RegistryError::Registry { code, message, .. } => match code.as_str() {
            "DENIED" => RegistryError::NotFound(format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {message}",
                r.familiar_name()
            )),
            "MANIFEST_UNKNOWN" => RegistryError::NotFound(format!(
                "manifest for {} not found: {message}",
                r.familiar_string()
            )),
            "NAME_UNKNOWN" => RegistryError::NotFound(format!(
                "repository {} not found: {message}",
                r.familiar_name()
            )),
            _ => RegistryError::Registry {
                status: 0,
                code,
                message,
            },
        },
        other => other,
    }
}

/// Fetch the manifest `tag_or_digest` names, following a list to the platform's entry;
/// returns the digest of the first manifest fetched (what `RepoDigests` records).
async fn resolve(
    client: &RepoClient,
    r: &Reference,
    tag_or_digest: &str,
    platform: &Platform,
) -> Result<(String, ImageManifest), RegistryError> {
    let (data, ct) = client.manifest(tag_or_digest).await?;
    let digest = ids::sha256_digest(&data);
    if let Some(want) = r.digest()
        && want != digest
    {
        return Err(RegistryError::DigestMismatch {
            what: "manifest".into(),
            expected: want.to_string(),
            got: digest,
        });
    }
    match manifest::classify(&data, &ct, platform)? {
        Fetched::Image(m) => Ok((digest, m)),
        Fetched::List(entry) => {
            let (data, ct) = client.manifest(&entry.digest).await?;
            let got = ids::sha256_digest(&data);
            if got != entry.digest {
                return Err(RegistryError::DigestMismatch {
                    what: "manifest".into(),
                    expected: entry.digest,
                    got,
                });
            }
            match manifest::classify(&data, &ct, platform)? {
                Fetched::Image(m) => Ok((digest, m)),
                Fetched::List(_) => Err(RegistryError::Manifest(
                    "manifest list points at another manifest list".into(),
                )),
            }
        }
    }
}

/// Download and extract every layer not `present`, at most `max_concurrent_downloads` at a
/// time. On the first failure the others are told to stop and are waited for, so their
/// temp dirs are gone when this returns.
async fn download_all(
    store: &Arc<Store>,
    client: &Arc<RepoClient>,
    layers: &[Descriptor],
    diff_ids: &[String],
    present: &[bool],
    opts: &PullOptions,
    progress: &mut impl FnMut(ProgressEvent),
) -> Result<Vec<Option<Extracted>>, RegistryError> {
    let sem = Arc::new(Semaphore::new(opts.max_concurrent_downloads.max(1)));
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<ProgressEvent>();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let mut set = JoinSet::new();
    for (i, l) in layers.iter().enumerate() {
        if present[i] {
            continue;
        }
        let job = LayerJob {
            store: store.clone(),
            client: client.clone(),
            desc: l.clone(),
            diff_id: diff_ids[i].clone(),
            events: ev_tx.clone(),
            cancel: cancel_rx.clone(),
        };
        let sem = sem.clone();
        set.spawn(async move {
            let id = short_id(&job.desc.digest);
            let permit = match sem.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    let _ = job.events.send(ProgressEvent::layer(&id, "Waiting"));
                    let mut cancel = job.cancel.clone();
                    tokio::select! {
                        p = sem.acquire_owned() => p.map_err(|e| RegistryError::Task(e.to_string()))?,
                        _ = cancel.wait_for(|c| *c) => return Err(RegistryError::Task("cancelled".into())),
                    }
                }
            };
            let r = job.run().await;
            drop(permit);
            r.map(|ex| (i, ex))
        });
    }
    drop(ev_tx);
    let mut out: Vec<Option<Extracted>> = layers.iter().map(|_| None).collect();
    let mut first_err: Option<RegistryError> = None;
    let mut events_open = true;
    while !set.is_empty() || events_open {
        tokio::select! {
            ev = ev_rx.recv(), if events_open => match ev {
                Some(ev) => progress(ev),
                None => events_open = false,
            },
            res = set.join_next(), if !set.is_empty() => {
                let res = match res {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => Err(RegistryError::Task(e.to_string())),
                    None => continue,
                };
                match res {
                    Ok((i, ex)) => out[i] = Some(ex),
                    Err(e) => {
                        if first_err.is_none() {
                            let _ = cancel_tx.send(true);
                            first_err = Some(e);
                        }
                    }
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// One layer download.
struct LayerJob {
    store: Arc<Store>,
    client: Arc<RepoClient>,
    desc: Descriptor,
    diff_id: String,
    events: mpsc::UnboundedSender<ProgressEvent>,
    cancel: watch::Receiver<bool>,
}

impl LayerJob {
    /// Download with retries of transient failures (each attempt starts over in a new temp
    /// dir; the failed one is removed).
    async fn run(&self) -> Result<Extracted, RegistryError> {
        let mut attempt = 1;
        loop {
            match self.once().await {
                Err(e) if e.is_transient() && attempt < ATTEMPTS && !*self.cancel.borrow() => {
                    attempt += 1;
                    let wait = backoff(attempt);
                    tracing::info!(layer = %self.desc.digest, error = %e, "retrying layer download");
                    let _ = self.events.send(ProgressEvent::layer(
                        &short_id(&self.desc.digest),
                        format!(
                            "Retrying in {} second{}",
                            wait.as_secs().max(1),
                            if wait.as_secs() > 1 { "s" } else { "" }
                        ),
                    ));
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn once(&self) -> Result<Extracted, RegistryError> {
        let digest = self.desc.digest.clone();
        let id = short_id(&digest);
        let total = self.desc.size;
        let resp = self.client.blob_stream(&digest).await?;
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
        let store = self.store.clone();
        let extract =
            tokio::task::spawn_blocking(move || store.layers.extract(ChannelReader::new(rx)));
        let mut body = resp.into_body();
        let mut hash = Sha256::new();
        let mut got = 0u64;
        let mut last = 0u64;
        let step = (total / 100).max(256 * 1024);
        let mut cancel = self.cancel.clone();
        let mut extractor_alive = true;
        let pumped: Result<(), RegistryError> = loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = cancel.wait_for(|c| *c) => break Err(RegistryError::Task("cancelled".into())),
            };
            match frame {
                None => {
                    if got < total {
                        break Err(RegistryError::Stream(format!(
                            "layer {digest}: unexpected EOF: got {got} of {total} bytes"
                        )));
                    }
                    break Ok(());
                }
                Some(Err(e)) => {
                    break Err(RegistryError::Stream(format!(
                        "layer {digest}: connection lost after {got} of {total} bytes: {e}"
                    )));
                }
                Some(Ok(f)) => {
                    let Ok(data) = f.into_data() else { continue };
                    got += data.len() as u64;
                    if total > 0 && got > total {
                        break Err(RegistryError::Stream(format!(
                            "layer {digest}: more data than the {total} bytes the manifest declares"
                        )));
                    }
                    hash.update(&data);
                    if extractor_alive && tx.send(Ok(data)).await.is_err() {
                        // The extractor failed; drain so the digest can say why.
                        extractor_alive = false;
                    }
                    if got - last >= step || got == total {
                        last = got;
                        let _ =
                            self.events
                                .send(ProgressEvent::bytes(&id, "Downloading", got, total));
                    }
                }
            }
        };
        if let Err(e) = &pumped {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
        drop(tx);
        let extracted = extract
            .await
            .map_err(|e| RegistryError::Task(e.to_string()))?;
        pumped?;
        let _ = self
            .events
            .send(ProgressEvent::layer(&id, "Verifying Checksum"));
        let got_digest = format!("sha256:{}", hex::encode(hash.finalize()));
        if got_digest != digest {
            return Err(RegistryError::DigestMismatch {
                what: format!("filesystem layer verification failed for digest {digest}: layer"),
                expected: digest,
                got: got_digest,
            });
        }
        let ex = extracted?;
        if ex.diff_id() != self.diff_id {
            return Err(RegistryError::DiffIdMismatch {
                digest,
                expected: self.diff_id.clone(),
                got: ex.diff_id().to_string(),
            });
        }
        let _ = self
            .events
            .send(ProgressEvent::layer(&id, "Download complete"));
        let _ = self
            .events
            .send(ProgressEvent::bytes(&id, "Extracting", total, total));
        Ok(ex)
    }
}

/// Commit the extracted layers bottom-up and store the image config; returns the image id.
fn commit_all(
    store: &Store,
    extracted: Vec<Option<Extracted>>,
    chain: &[String],
    diff_ids: &[String],
    config: &[u8],
) -> Result<String, RegistryError> {
    let _gc = store.gc.read().unwrap_or_else(|e| e.into_inner());
    let mut parent: Option<&str> = None;
    for (i, ex) in extracted.into_iter().enumerate() {
        match ex {
            Some(ex) => {
                store.layers.commit(ex, parent, Some(&diff_ids[i]))?;
            }
            None => {
                if !store.layers.exists(&chain[i]) {
                    return Err(RegistryError::Invalid(format!(
                        "layer {} was removed while the pull was running; pull again",
                        chain[i]
                    )));
                }
            }
        }
        parent = Some(&chain[i]);
    }
    Ok(store.put_image(config, None)?)
}

/// Point the tag (if any) and `name@digest` at the image and record distribution metadata.
/// Returns whether the reference changed.
fn record_refs(
    store: &Store,
    r: &Reference,
    manifest_digest: &str,
    image_id: &str,
    layers: &[Descriptor],
    diff_ids: &[String],
) -> Result<bool, RegistryError> {
    let repo = r.name();
    for (l, d) in layers.iter().zip(diff_ids) {
        distribution::record(store.layout(), &l.digest, d, &repo)?;
    }
    let before = lock(&store.refs)
        .get(&lookup_form(r.clone()))
        .map(str::to_string);
    if r.tag().is_some() && r.digest().is_none() {
        store.add_reference(r, image_id)?;
    }
    let by_digest = r.name_only().with_digest(manifest_digest)?;
    store.add_reference(&by_digest, image_id)?;
    Ok(before.as_deref() != Some(image_id))
}
