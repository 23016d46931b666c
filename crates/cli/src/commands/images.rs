//! Image commands: `images`, `pull`, `push`, `rmi`, `tag`, `save`, `load`, `import`, `history`,
//! `image prune`, `build`.

use berth_client::{body, query};
use hyper::Method;
use tokio::io::AsyncWriteExt;

use super::ps::{go_time, short_id};
use super::{Ctx, filters_json};
use crate::cli::{
    HistoryArgs, ImagePruneArgs, ImagesArgs, ImportArgs, LoadArgs, NameArgs, PullArgs, RmiArgs,
    SaveArgs, TagArgs,
};
use crate::error::{CliError, Result};
use crate::format::Format;
use crate::format::units::{ellipsis, human_duration, human_size};
use crate::output;
use crate::progress;
use crate::template::Value;
use crate::tty;

/// Docker's default `images` table.
pub const DEFAULT_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// Field → column title.
pub fn header() -> Value {
    Value::map(
        [
            ("ID", "IMAGE ID"),
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("Digest", "DIGEST"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("Size", "SIZE"),
            ("Containers", "CONTAINERS"),
            ("VirtualSize", "VIRTUAL SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    )
}

/// Splits `repo:tag` at the last colon after the last slash.
pub fn split_tag(r: &str) -> (&str, &str) {
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (&r[..slash + i], &r[slash + i + 1..]),
        None => (r, ""),
    }
}

/// Docker's normalized reference (`busybox` → `docker.io/library/busybox:latest`).
pub fn normalize(r: &str) -> String {
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let (repo, tag) = split_tag(name);
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        repo.to_owned()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    match (digest, tag) {
        (Some(d), _) => format!("{full}@{d}"),
        (None, "") => format!("{full}:latest"),
        (None, t) => format!("{full}:{t}"),
    }
}

/// Rows for one `/images/json` entry: one per tag, or `<none>` rows.
pub fn rows(img: &Value, trunc: bool, now: i64) -> Vec<Value> {
    let id = img.get("Id").and_then(Value::as_str).unwrap_or("");
    let id_shown = if trunc { short_id(id) } else { id.to_owned() };
    let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let size = img.get("Size").and_then(Value::as_i64).unwrap_or(0);
    let shared = img.get("SharedSize").and_then(Value::as_i64).unwrap_or(-1);
    let containers = img.get("Containers").and_then(Value::as_i64).unwrap_or(-1);
    let tags: Vec<&str> = match img.get("RepoTags") {
        Some(Value::List(l)) => l
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "<none>:<none>")
            .collect(),
        _ => Vec::new(),
    };
    let digests: Vec<&str> = match img.get("RepoDigests") {
        Some(Value::List(l)) => l.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mk = |repo: &str, tag: &str, digest: &str| {
        Value::map([
            ("ID", Value::str(id_shown.clone())),
            ("Repository", Value::str(repo)),
            ("Tag", Value::str(tag)),
            ("Digest", Value::str(digest)),
            (
                "CreatedSince",
                Value::Str(format!("{} ago", human_duration(now - created))),
            ),
            ("CreatedAt", Value::Str(go_time(created))),
            ("Size", Value::Str(human_size(size as f64))),
            ("VirtualSize", Value::Str(human_size(size as f64))),
            (
                "Containers",
                Value::Str(if containers < 0 {
                    "N/A".into()
                } else {
                    containers.to_string()
                }),
            ),
            (
                "SharedSize",
                Value::Str(if shared < 0 {
                    "N/A".into()
                } else {
                    human_size(shared as f64)
                }),
            ),
            (
                "UniqueSize",
                Value::Str(if shared < 0 {
                    "N/A".into()
                } else {
                    human_size((size - shared) as f64)
                }),
            ),
        ])
    };
    let digest_of = |repo: &str| -> String {
        digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, dg)| dg.to_owned())
            })
            .unwrap_or_else(|| "<none>".to_owned())
    };
    if tags.is_empty() {
        let (repo, dg) = match digests.first().and_then(|d| d.split_once('@')) {
            Some((r, d)) => (r, d.to_owned()),
            None => ("<none>", "<none>".to_owned()),
        };
        return vec![mk(repo, "<none>", &dg)];
    }
    tags.iter()
        .map(|t| {
            let (repo, tag) = split_tag(t);
            mk(repo, tag, &digest_of(repo))
        })
        .collect()
}

/// `images`.
pub async fn images(ctx: &Ctx, a: ImagesArgs) -> Result<i32> {
    let default = if a.quiet {
        "{{.ID}}".to_owned()
    } else if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
            .to_owned()
    } else {
        DEFAULT_TABLE.to_owned()
    };
    let fmt = Format::new(if a.quiet { None } else { a.format.as_deref() }, &default)?
        .context("*formatter.ImageContext");
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    if a.all {
        q.push(("all", "1".into()));
    }
    if let Some(f) = filters_json(&filters)? {
        q.push(("filters", f));
    }
    let list = ctx
        .get_value(&format!("/images/json{}", query::encode(&q)))
        .await?;
    let now = chrono::Utc::now().timestamp();
    let mut out: Vec<Value> = match list {
        Value::List(l) => l.iter().flat_map(|i| rows(i, !a.no_trunc, now)).collect(),
        _ => Vec::new(),
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        out.retain(|r| seen.insert(r.get("ID").map(Value::go_string).unwrap_or_default()));
    }
    output::out(&fmt.render(&out, &header())?);
    Ok(0)
}

/// Pulls `reference` with progress (used by `pull` and by `run` for a missing image).
pub async fn pull_image(
    ctx: &Ctx,
    reference: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<()> {
    // The docker CLI asks for the fully qualified name (`docker.io/library/busybox`).
    let full = normalize(reference);
    let (name, tag) = match full.split_once('@') {
        Some((n, d)) => (n.to_owned(), d.to_owned()),
        None => {
            let (r, t) = split_tag(&full);
            (
                r.to_owned(),
                if t.is_empty() {
                    "latest".to_owned()
                } else {
                    t.to_owned()
                },
            )
        }
    };
    let mut q = vec![("fromImage", name), ("tag", tag)];
    if let Some(p) = platform {
        q.push(("platform", p.to_owned()));
    }
    let stream = ctx
        .client
        .json_lines(
            Method::POST,
            &format!("/images/create{}", query::encode(&q)),
            body::empty(),
            None,
        )
        .await?;
    // `run` shows pull progress on stderr so stdout stays the container's.
    let tty = if to_stderr {
        tty::stderr_is_tty()
    } else {
        tty::stdout_is_tty()
    };
    progress::display(stream, tty, quiet, to_stderr).await?;
    Ok(())
}

/// `pull`.
pub async fn pull(ctx: &Ctx, a: PullArgs) -> Result<i32> {
    let reference = if a.name.contains('@') || !split_tag(&a.name).1.is_empty() || a.all_tags {
        a.name.clone()
    } else {
        if !a.quiet {
            output::outln("Using default tag: latest");
        }
        format!("{}:latest", a.name)
    };
    pull_image(ctx, &reference, a.platform.as_deref(), a.quiet, false).await?;
    output::outln(&normalize(&reference));
    Ok(0)
}

/// `push`.
pub async fn push(ctx: &Ctx, a: NameArgs) -> Result<i32> {
    let (name, tag) = split_tag(&a.name);
    let q = if tag.is_empty() {
        String::new()
    } else {
        query::encode(&[("tag", tag)])
    };
    let stream = ctx
        .client
        .json_lines(
            Method::POST,
            &format!("/images/{}/push{q}", query::path_segment(name)),
            body::empty(),
            None,
        )
        .await?;
    progress::display(stream, tty::stdout_is_tty(), a.quiet, false).await?;
    if a.quiet {
        output::outln(&a.name);
    }
    Ok(0)
}

/// `rmi`.
pub async fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<i32> {
    let mut failed = Vec::new();
    for img in &a.images {
        let mut q = Vec::new();
        if a.force {
            q.push(("force", "1"));
        }
        if a.no_prune {
            q.push(("noprune", "1"));
        }
        match ctx
            .delete_value(&format!(
                "/images/{}{}",
                query::path_segment(img),
                query::encode(&q)
            ))
            .await
        {
            Ok(Value::List(items)) => {
                for it in items {
                    if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
                        output::outln(&format!("Untagged: {u}"));
                    }
                    if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
                        output::outln(&format!("Deleted: {d}"));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Msg(failed.join("\n")))
    }
}

/// `tag`.
pub async fn tag(ctx: &Ctx, a: TagArgs) -> Result<i32> {
    let (repo, tag) = split_tag(&a.target);
    let tag = if tag.is_empty() { "latest" } else { tag };
    ctx.client
        .post_bytes::<()>(
            &format!(
                "/images/{}/tag{}",
                query::path_segment(&a.source),
                query::encode(&[("repo", repo), ("tag", tag)])
            ),
            None,
        )
        .await?;
    Ok(0)
}

/// `save`.
pub async fn save(ctx: &Ctx, a: SaveArgs) -> Result<i32> {
    if a.output.is_none() && tty::stdout_is_tty() {
        return Err(CliError::Msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let q: Vec<(&str, &str)> = a.images.iter().map(|i| ("names", i.as_str())).collect();
    let mut s = ctx
        .client
        .send(
            Method::GET,
            &format!("/images/get{}", query::encode(&q)),
            body::empty(),
            None,
        )
        .await?;
    let mut file = match &a.output {
        Some(p) => Some(tokio::fs::File::create(p).await.map_err(|e| {
            CliError::io(
                format!("failed to save image: unable to create file {p}"),
                e,
            )
        })?),
        None => None,
    };
    while let Some(chunk) = s.chunk().await? {
        match file.as_mut() {
            Some(f) => f
                .write_all(&chunk)
                .await
                .map_err(|e| CliError::io("failed to save image", e))?,
            None => output::out_bytes(&chunk),
        }
    }
    Ok(0)
}

/// `load`.
pub async fn load(ctx: &Ctx, a: LoadArgs) -> Result<i32> {
    let reader: Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> = match &a.input {
        Some(p) => Box::new(
            tokio::fs::File::open(p)
                .await
                .map_err(|e| CliError::io(format!("open {p}"), e))?,
        ),
        None => {
            if tty::stdin_is_tty() {
                return Err(CliError::Msg(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            Box::new(tokio::io::stdin())
        }
    };
    let q = if a.quiet { "?quiet=1" } else { "?quiet=0" };
    let stream = ctx
        .client
        .json_lines(
            Method::POST,
            &format!("/images/load{q}"),
            body::reader(reader),
            Some("application/x-tar"),
        )
        .await?;
    progress::display(stream, tty::stdout_is_tty(), false, false).await?;
    Ok(0)
}

/// `import`.
pub async fn import(ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    let mut q: Vec<(&str, String)> = vec![("fromSrc", "-".into())];
    let reader: Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> = if a.source == "-" {
        Box::new(tokio::io::stdin())
    } else if a.source.contains("://") {
        q[0].1 = a.source.clone();
        Box::new(tokio::io::empty())
    } else {
        Box::new(
            tokio::fs::File::open(&a.source)
                .await
                .map_err(|e| CliError::io(format!("open {}", a.source), e))?,
        )
    };
    if let Some(r) = &a.repo {
        let (repo, tag) = split_tag(r);
        q.push(("repo", repo.to_owned()));
        if !tag.is_empty() {
            q.push(("tag", tag.to_owned()));
        }
    }
    if let Some(m) = &a.message {
        q.push(("message", m.clone()));
    }
    for c in &a.change {
        q.push(("changes", c.clone()));
    }
    if let Some(p) = &a.platform {
        q.push(("platform", p.clone()));
    }
    let stream = ctx
        .client
        .json_lines(
            Method::POST,
            &format!("/images/create{}", query::encode(&q)),
            body::reader(reader),
            Some("application/x-tar"),
        )
        .await?;
    progress::display(stream, false, false, false).await?;
    Ok(0)
}

/// `history`.
pub async fn history(ctx: &Ctx, a: HistoryArgs) -> Result<i32> {
    let default = if a.quiet {
        "{{.ID}}"
    } else {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
    };
    let fmt = Format::new(if a.quiet { None } else { a.format.as_deref() }, default)?;
    let list = ctx
        .get_value(&format!(
            "/images/{}/history",
            query::path_segment(&a.image)
        ))
        .await?;
    let now = chrono::Utc::now().timestamp();
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = match list {
        Value::List(l) => l
            .iter()
            .map(|h| {
                let id = h.get("Id").and_then(Value::as_str).unwrap_or("<missing>");
                let id = if id == "<missing>" || !trunc {
                    id.to_owned()
                } else {
                    short_id(id)
                };
                let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
                let by = h
                    .get("CreatedBy")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .replace('\t', " ");
                let size = h.get("Size").and_then(Value::as_i64).unwrap_or(0);
                Value::map([
                    ("ID", Value::Str(id)),
                    (
                        "CreatedSince",
                        Value::Str(if a.human {
                            format!("{} ago", human_duration(now - created))
                        } else {
                            go_time(created)
                        }),
                    ),
                    ("CreatedAt", Value::Str(go_time(created))),
                    (
                        "CreatedBy",
                        Value::Str(if trunc { ellipsis(&by, 45) } else { by }),
                    ),
                    (
                        "Size",
                        Value::Str(if a.human {
                            human_size(size as f64)
                        } else {
                            size.to_string()
                        }),
                    ),
                    (
                        "Comment",
                        Value::Str(
                            h.get("Comment")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        ),
                    ),
                ])
            })
            .collect(),
        _ => Vec::new(),
    };
    let header = Value::map(
        [
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedAt", "CREATED AT"),
            ("CreatedBy", "CREATED BY"),
            ("Size", "SIZE"),
            ("Comment", "COMMENT"),
        ]
        .map(|(k, v)| (k, Value::str(v))),
    );
    output::out(&fmt.render(&rows, &header)?);
    Ok(0)
}

/// `image prune`.
pub async fn prune(ctx: &Ctx, a: ImagePruneArgs) -> Result<i32> {
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let q = filters_json(&filters)?
        .map(|f| query::encode(&[("filters", f)]))
        .unwrap_or_default();
    let v: Value = ctx.post_value(&format!("/images/prune{q}")).await?;
    if let Some(Value::List(items)) = v.get("ImagesDeleted") {
        if !items.is_empty() {
            output::outln("Deleted Images:");
        }
        for it in items {
            if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
                output::outln(&format!("untagged: {u}"));
            }
            if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
                output::outln(&format!("deleted: {d}"));
            }
        }
        output::outln("");
    }
    let reclaimed = v.get("SpaceReclaimed").and_then(Value::as_i64).unwrap_or(0);
    output::outln(&format!(
        "Total reclaimed space: {}",
        human_size(reclaimed as f64)
    ));
    Ok(0)
}

/// `build`: berthd answers 501 until it has a builder; its message is what the user sees.
pub async fn build(ctx: &Ctx) -> Result<i32> {
    ctx.client.post_bytes::<()>("/build", None).await?;
    Err(CliError::Msg(
        "the daemon accepted a build without a context; nothing was built".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            split_tag("localhost:5000/a/b:1"),
            ("localhost:5000/a/b", "1")
        );
        assert_eq!(split_tag("localhost:5000/a"), ("localhost:5000/a", ""));
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalize("localhost:5000/x"), "localhost:5000/x:latest");
    }

    #[test]
    fn image_rows_like_docker() {
        let img: Value = serde_json::from_str(
            r#"{"Id":"sha256:6fd955f66c231c1a946653170d096a28ac2b2052a02080c0b84ec082a07f7d12","RepoTags":["busybox:latest","busybox:1"],"Created":0,"Size":4261000,"SharedSize":-1,"Containers":-1}"#,
        )
        .unwrap();
        let f = Format::new(None, DEFAULT_TABLE).unwrap();
        let out = f.render(&rows(&img, true, 3 * 86400), &header()).unwrap();
        insta::assert_snapshot!(out, @r"
        REPOSITORY   TAG       IMAGE ID       CREATED      SIZE
        busybox      latest    6fd955f66c23   3 days ago   4.26MB
        busybox      1         6fd955f66c23   3 days ago   4.26MB
        ");
    }
}
