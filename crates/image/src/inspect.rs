//! Read-only views of images in the Docker API's shapes: inspect, history, list summaries.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::store::{ImageUse, Store, StoreError};

/// `GraphDriver` of an inspect.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    /// Always `overlay2`.
    pub name: String,
    /// `LowerDir`, `UpperDir`, `MergedDir`, `WorkDir`.
    pub data: BTreeMap<String, String>,
}

/// `RootFS` of an inspect.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RootFsInfo {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Diff ids, bottom first.
    pub layers: Vec<String>,
}

/// `docker image inspect` data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// `sha256:<hex>`.
    pub id: String,
    /// `name:tag` references.
    pub repo_tags: Vec<String>,
    /// `name@sha256:..` references.
    pub repo_digests: Vec<String>,
    /// Parent image id or empty.
    pub parent: String,
    /// Config comment.
    pub comment: String,
    /// Creation time (RFC 3339) from the config.
    pub created: String,
    /// Container committed from.
    pub container: String,
    /// `container_config` from the config.
    pub container_config: Option<serde_json::Value>,
    /// Docker version from the config.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// Run config from the config.
    pub config: Option<serde_json::Value>,
    /// Architecture.
    pub architecture: String,
    /// Variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS.
    pub os: String,
    /// Sum of layer sizes.
    pub size: u64,
    /// Same as size (API < 1.44).
    pub virtual_size: u64,
    /// Storage driver data.
    pub graph_driver: GraphDriver,
    /// Layers.
    #[serde(rename = "RootFS")]
    pub root_fs: RootFsInfo,
    /// `{"LastTagTime": ..}`.
    pub metadata: BTreeMap<String, String>,
}

/// One `docker history` line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// Id of the image whose top layer this is, or `<missing>`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// Command.
    pub created_by: String,
    /// Tags of that image.
    pub tags: Vec<String>,
    /// Layer size (0 for empty layers).
    pub size: u64,
    /// Comment.
    pub comment: String,
}

/// One `docker images` entry (`ImageSummary`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// Image id.
    pub id: String,
    /// Parent id or empty.
    pub parent_id: String,
    /// Tags.
    pub repo_tags: Vec<String>,
    /// Digests.
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Sum of layer sizes.
    pub size: u64,
    /// -1: not computed.
    pub shared_size: i64,
    /// Same as size.
    pub virtual_size: u64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Number of containers using it (-1 when not asked for).
    pub containers: i64,
}

fn unix_secs(rfc3339: Option<&str>) -> i64 {
    rfc3339
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl Store {
    /// `docker image inspect`.
    pub fn inspect(&self, image: &str) -> Result<ImageInspect, StoreError> {
        let id = self.resolve(image)?;
        let cfg = self.image_config(&id)?;
        let layers = self.image_layers(&id)?;
        let size = layers.iter().map(|l| l.size).sum();
        let mut data = BTreeMap::new();
        if let Some((top, below)) = layers.split_last() {
            let dir = self.layout.cache_dir(&top.cache_id);
            if !below.is_empty() {
                let lower: Vec<String> = below
                    .iter()
                    .rev()
                    .map(|l| {
                        self.layout
                            .cache_dir(&l.cache_id)
                            .join("diff")
                            .display()
                            .to_string()
                    })
                    .collect();
                data.insert("LowerDir".into(), lower.join(":"));
            }
            for (k, sub) in [
                ("MergedDir", "merged"),
                ("UpperDir", "diff"),
                ("WorkDir", "work"),
            ] {
                data.insert(k.into(), dir.join(sub).display().to_string());
            }
        }
        let mut metadata = BTreeMap::new();
        if let Some(t) = self.images.last_updated(&id) {
            metadata.insert("LastTagTime".into(), t);
        }
        Ok(ImageInspect {
            repo_tags: self.repo_tags(&id),
            repo_digests: self.repo_digests(&id),
            parent: self.images.parent(&id).unwrap_or_default(),
            comment: cfg.comment.clone().unwrap_or_default(),
            created: cfg.created.clone().unwrap_or_default(),
            container: cfg.container.clone().unwrap_or_default(),
            container_config: cfg.container_config.clone(),
            docker_version: cfg.docker_version.clone().unwrap_or_default(),
            author: cfg.author.clone().unwrap_or_default(),
            config: cfg.config.clone(),
            architecture: cfg.architecture.clone(),
            variant: cfg.variant.clone(),
            os: cfg.os.clone(),
            size,
            virtual_size: size,
            graph_driver: GraphDriver {
                name: "overlay2".into(),
                data,
            },
            root_fs: RootFsInfo {
                kind: "layers".into(),
                layers: cfg.rootfs.diff_ids.clone(),
            },
            metadata,
            id,
        })
    }

    /// `docker history`, newest first, with Docker's `<missing>` for layers that have no
    /// local image of their own.
    pub fn history(&self, image: &str) -> Result<Vec<HistoryItem>, StoreError> {
        let id = self.resolve(image)?;
        let cfg = self.image_config(&id)?;
        let layers = self.image_layers(&id)?;
        let mut out = Vec::new();
        let mut layer_idx = 0usize;
        for h in &cfg.history {
            let size = if h.empty_layer {
                0
            } else {
                let s = layers.get(layer_idx).map(|l| l.size).unwrap_or(0);
                layer_idx += 1;
                s
            };
            out.push(HistoryItem {
                id: "<missing>".into(),
                created: unix_secs(h.created.as_deref()),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        out.reverse();
        // Walk the parent chain: each image owns the newest entries down to its parent's count.
        let mut cur = Some(id);
        let mut idx = 0usize;
        while let Some(img) = cur {
            let Some(item) = out.get_mut(idx) else { break };
            item.id = img.clone();
            item.tags = self.repo_tags(&img);
            let parent = self.images.parent(&img).filter(|p| self.images.exists(p));
            let parent_len = parent
                .as_ref()
                .and_then(|p| self.image_config(p).ok())
                .map(|c| c.history.len())
                .unwrap_or(0);
            idx = out.len().saturating_sub(parent_len);
            cur = parent;
        }
        Ok(out)
    }

    /// `docker images` summaries (all images; filtering is the caller's).
    pub fn list(&self, uses: Option<&[ImageUse]>) -> Result<Vec<ImageSummary>, StoreError> {
        let mut counts: HashMap<&str, i64> = HashMap::new();
        if let Some(u) = uses {
            for x in u {
                *counts.entry(x.image_id.as_str()).or_insert(0) += 1;
            }
        }
        let mut out = Vec::new();
        for id in self.image_ids()? {
            let Ok(cfg) = self.image_config(&id) else {
                continue;
            };
            let size = self.image_size(&id).unwrap_or(0);
            out.push(ImageSummary {
                parent_id: self.images.parent(&id).unwrap_or_default(),
                repo_tags: self.repo_tags(&id),
                repo_digests: self.repo_digests(&id),
                created: unix_secs(cfg.created.as_deref()),
                size,
                shared_size: -1,
                virtual_size: size,
                labels: cfg.labels(),
                containers: if uses.is_some() {
                    counts.get(id.as_str()).copied().unwrap_or(0)
                } else {
                    -1
                },
                id,
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}
