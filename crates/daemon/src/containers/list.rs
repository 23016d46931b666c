//! `GET /containers/json`: all/limit/filters, newest first.

use berth_api::models::ContainerSummary;
use berth_api::query::ContainerListQuery;
use berth_api::{ApiError, Filters};

use super::inspect::summary;
use super::record::ContainerRecord;
use crate::daemon::Daemon;

const FILTERS: &[&str] = &[
    "status", "label", "name", "id", "ancestor", "before", "since", "exited", "volume",
];

/// Lists containers per Docker's rules.
pub fn list(daemon: &Daemon, q: &ContainerListQuery) -> Result<Vec<ContainerSummary>, ApiError> {
    let filters = Filters::parse(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(FILTERS)?;
    for s in filters.get("status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s)
        {
            return Err(ApiError::invalid(format!("invalid filter 'status={s}'")));
        }
    }
    let mut recs: Vec<ContainerRecord> = daemon
        .containers
        .all()
        .iter()
        .map(|e| e.snapshot())
        .collect();
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let resolve_created = |key: &str| -> Result<String, ApiError> {
        daemon
            .containers
            .get(key)
            .map(|e| e.with(|r| r.created.clone()))
    };
    let before = filters
        .get("before")
        .first()
        .map(|k| resolve_created(k))
        .transpose()?;
    let since = filters
        .get("since")
        .first()
        .map(|k| resolve_created(k))
        .transpose()?;
    let show_all = q.all
        || q.limit.is_some_and(|l| l > 0)
        || filters.contains("status")
        || filters.contains("exited");
    let mut out = Vec::new();
    for rec in recs {
        let status = rec.state.status();
        if !show_all && status != "running" && status != "paused" {
            continue;
        }
        if filters.contains("status") && !filters.get("status").contains(&status) {
            continue;
        }
        if filters.contains("exited") {
            let ok = status == "exited"
                && filters
                    .get("exited")
                    .iter()
                    .any(|c| c.parse::<i64>().ok() == Some(rec.state.exit_code));
            if !ok {
                continue;
            }
        }
        if filters.contains("id") && !filters.get("id").iter().any(|p| rec.id.starts_with(p)) {
            continue;
        }
        if filters.contains("name") {
            let bare = rec.name.trim_start_matches('/');
            if !filters
                .get("name")
                .iter()
                .any(|n| bare.contains(n.trim_start_matches('/')))
            {
                continue;
            }
        }
        if !filters.match_labels("label", &rec.config.labels.clone().unwrap_or_default()) {
            continue;
        }
        if filters.contains("volume")
            && !crate::volumes::mounts::matches_volume_filter(
                &rec.mount_points,
                &filters.get("volume"),
            )
        {
            continue;
        }
        if filters.contains("ancestor") {
            let img = rec.config.image.clone().unwrap_or_default();
            let ok = filters.get("ancestor").iter().any(|a| {
                *a == img
                    || rec.image_id == *a
                    || rec
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(a.trim_start_matches("sha256:"))
                    || (!a.contains(':') && img == format!("{a}:latest"))
            });
            if !ok {
                continue;
            }
        }
        if let Some(b) = &before
            && rec.created >= *b
        {
            continue;
        }
        if let Some(s) = &since
            && rec.created <= *s
        {
            continue;
        }
        out.push(summary(&rec));
        if let Some(l) = q.limit
            && l > 0
            && out.len() as i64 >= l
        {
            break;
        }
    }
    Ok(out)
}
