//! `docker rmi` and `docker image prune` with Docker's conflict rules and response items.

use std::collections::HashSet;

use serde::Serialize;

use crate::reference::{self, Reference};
use crate::store::{ImageUse, Store, StoreError, lookup_form};

/// One line of a delete response (`{"Untagged": ".."}` or `{"Deleted": ".."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DeleteResponseItem {
    /// A reference was removed (familiar form).
    Untagged(String),
    /// An image id or layer chain id was deleted.
    Deleted(String),
}

fn short(id: &str) -> String {
    crate::ids::hex_of(id).chars().take(12).collect()
}

#[derive(Clone, Copy)]
struct Mask {
    child: bool,
    running: bool,
    refs: bool,
    stopped: bool,
}

const HARD: Mask = Mask {
    child: true,
    running: true,
    refs: false,
    stopped: false,
};

struct Conflict {
    hard: bool,
    used: bool,
    message: String,
}

impl Conflict {
    fn into_error(self, image_id: &str) -> StoreError {
        let force = if self.hard {
            "cannot be forced"
        } else {
            "must be forced"
        };
        StoreError::Conflict(format!(
            "conflict: unable to delete {} ({force}) - {}",
            short(image_id),
            self.message
        ))
    }
}

impl Store {
    fn check_conflict(&self, id: &str, m: Mask, uses: &[ImageUse]) -> Option<Conflict> {
        if m.child && !self.images.children(id).is_empty() {
            return Some(Conflict {
                hard: true,
                used: false,
                message: "image has dependent child images".into(),
            });
        }
        if m.running
            && let Some(u) = uses.iter().find(|u| u.running && u.image_id == id)
        {
            return Some(Conflict {
                hard: true,
                used: true,
                message: format!(
                    "image is being used by running container {}",
                    short(&u.container_id)
                ),
            });
        }
        if m.refs && !self.references(id).is_empty() {
            return Some(Conflict {
                hard: false,
                used: false,
                message: "image is referenced in multiple repositories".into(),
            });
        }
        if m.stopped
            && let Some(u) = uses.iter().find(|u| !u.running && u.image_id == id)
        {
            return Some(Conflict {
                hard: false,
                used: true,
                message: format!(
                    "image is being used by stopped container {}",
                    short(&u.container_id)
                ),
            });
        }
        None
    }

    /// `docker rmi`: remove a reference, and the image when nothing else refers to it, with
    /// Docker's rules (`force` ignores soft conflicts; `noprune` keeps untagged parents).
    /// `uses` lists the containers and the images they were created from.
    pub fn delete(
        &self,
        image_ref: &str,
        force: bool,
        noprune: bool,
        uses: &[ImageUse],
    ) -> Result<Vec<DeleteResponseItem>, StoreError> {
        let _gc = self.gc.write().unwrap_or_else(|e| e.into_inner());
        let id = self.resolve(image_ref)?;
        let mut records = Vec::new();
        let mut repo_refs = self.references(&id);
        let mut removed_repository_ref = false;
        if !crate::store::is_id_prefix_of(&id, image_ref) {
            if !force && let Some(u) = uses.iter().find(|u| u.image_id == id) {
                return Err(StoreError::Conflict(format!(
                    "conflict: unable to remove repository reference {image_ref:?} (must force) - container {} is using its referenced image {}",
                    short(&u.container_id),
                    short(&id)
                )));
            }
            let parsed = lookup_form(reference::parse_normalized(image_ref)?);
            self.remove_ref(&parsed)?;
            records.push(DeleteResponseItem::Untagged(parsed.familiar_string()));
            repo_refs = self.references(&id);
            if parsed.digest().is_none() {
                let same_repo_tag = repo_refs
                    .iter()
                    .any(|r| r.digest().is_none() && r.name() == parsed.name());
                if !same_repo_tag {
                    let mut remaining = Vec::new();
                    for r in repo_refs {
                        if r.digest().is_some() && r.name() == parsed.name() {
                            self.remove_ref(&r)?;
                            records.push(DeleteResponseItem::Untagged(r.familiar_string()));
                        } else {
                            remaining.push(r);
                        }
                    }
                    repo_refs = remaining;
                }
            }
            if !repo_refs.is_empty() {
                return Ok(records);
            }
            removed_repository_ref = true;
        } else if is_single_reference(&repo_refs) {
            let mask = Mask {
                refs: false,
                stopped: !force,
                ..HARD
            };
            if let Some(c) = self.check_conflict(&id, mask, uses) {
                return Err(c.into_error(&id));
            }
            for r in repo_refs {
                self.remove_ref(&r)?;
                records.push(DeleteResponseItem::Untagged(r.familiar_string()));
            }
        }
        self.delete_helper(
            &id,
            &mut records,
            force,
            !noprune,
            removed_repository_ref,
            uses,
        )?;
        Ok(records)
    }

    fn delete_helper(
        &self,
        id: &str,
        records: &mut Vec<DeleteResponseItem>,
        force: bool,
        prune: bool,
        quiet: bool,
        uses: &[ImageUse],
    ) -> Result<(), StoreError> {
        let mask = Mask {
            refs: !force,
            stopped: !force,
            ..HARD
        };
        if let Some(c) = self.check_conflict(id, mask, uses) {
            let dangling = self.references(id).is_empty();
            if quiet && (!dangling || c.used) {
                return Ok(());
            }
            return Err(c.into_error(id));
        }
        let parent = self.images.parent(id);
        for r in self.references(id) {
            self.remove_ref(&r)?;
            records.push(DeleteResponseItem::Untagged(r.familiar_string()));
        }
        let removed = self.remove_image(id)?;
        records.push(DeleteResponseItem::Deleted(id.to_string()));
        for l in removed {
            records.push(DeleteResponseItem::Deleted(l.chain_id));
        }
        match parent {
            Some(p) if prune && self.images.exists(&p) => {
                self.delete_helper(&p, records, false, true, true, uses)
            }
            _ => Ok(()),
        }
    }

    /// Delete an image's config and release the layers nothing else references (top down).
    /// Caller holds `gc` exclusively.
    fn remove_image(&self, id: &str) -> Result<Vec<crate::layer_store::LayerInfo>, StoreError> {
        let cfg = self.images.get(id)?;
        self.images.delete(id)?;
        let Some(top) = cfg.top_chain_id() else {
            return Ok(Vec::new());
        };
        let used = self.referenced_chains()?;
        let mut removed = Vec::new();
        let mut cur = Some(top);
        while let Some(c) = cur {
            if used.contains(&c) || !self.layers.exists(&c) {
                break;
            }
            let info = self.layers.remove(&c)?;
            cur = info.parent.clone();
            removed.push(info);
        }
        Ok(removed)
    }

    /// Chain ids used by any image or container (whole chains).
    pub(crate) fn referenced_chains(&self) -> Result<HashSet<String>, StoreError> {
        let mut tops = Vec::new();
        for id in self.images.list()? {
            if let Ok(cfg) = self.images.get(&id) {
                tops.extend(cfg.top_chain_id());
            }
        }
        for cid in self.container_ids() {
            if let Ok(rec) = self.container_layers(&cid) {
                tops.extend(rec.parent);
            }
        }
        let mut out = HashSet::new();
        for t in tops {
            let mut cur = Some(t);
            while let Some(c) = cur {
                if !out.insert(c.clone()) {
                    break;
                }
                cur = self.layers.get(&c).ok().and_then(|l| l.parent);
            }
        }
        Ok(out)
    }

    /// `docker image prune`: delete images no container uses; only untagged ones (without
    /// children) when `dangling_only`. Returns the delete items and the bytes reclaimed.
    pub fn prune(
        &self,
        dangling_only: bool,
        uses: &[ImageUse],
    ) -> Result<(Vec<DeleteResponseItem>, u64), StoreError> {
        let mut records = Vec::new();
        let mut reclaimed = 0u64;
        loop {
            let mut progressed = false;
            for id in self.image_ids()? {
                if !self.images.exists(&id)
                    || uses.iter().any(|u| u.image_id == id)
                    || !self.images.children(&id).is_empty()
                {
                    continue;
                }
                let refs = self.references(&id);
                if dangling_only && !refs.is_empty() {
                    continue;
                }
                let sizes: std::collections::HashMap<String, u64> = self
                    .image_layers(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| (l.chain_id, l.size))
                    .collect();
                let items = {
                    let _gc = self.gc.write().unwrap_or_else(|e| e.into_inner());
                    let mut items = Vec::new();
                    for r in refs {
                        self.remove_ref(&r)?;
                        items.push(DeleteResponseItem::Untagged(r.familiar_string()));
                    }
                    match self.delete_helper(&id, &mut items, true, false, false, uses) {
                        Ok(()) => {}
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                    items
                };
                for it in &items {
                    if let DeleteResponseItem::Deleted(c) = it {
                        reclaimed += sizes.get(c).copied().unwrap_or(0);
                    }
                }
                records.extend(items);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        Ok((records, reclaimed))
    }
}

/// Docker's `isSingleReference`: at most one tag, and digests only of that tag's repository.
fn is_single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let mut single: Option<&Reference> = None;
    let mut canonical = HashSet::new();
    for r in refs {
        if r.digest().is_some() {
            canonical.insert(r.name());
        } else if single.is_none() {
            single = Some(r);
        } else {
            return false;
        }
    }
    let single = single.unwrap_or(&refs[0]);
    canonical.len() == 1 && canonical.contains(&single.name())
}
