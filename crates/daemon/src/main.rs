//! berthd: the Docker Engine API daemon.

use std::process::ExitCode;

use berth_daemon::config::{Config, Flags};
use berth_daemon::daemon::Daemon;
use berth_daemon::{api, containers, lock, networks, server};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

/// Lets SIGHUP change the log level.
type LogHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

fn level_filter(level: &str) -> tracing_subscriber::EnvFilter {
    // netlink-packet-route warns about every kernel attribute newer than itself: noise.
    let level = if level == "fatal" { "error" } else { level };
    tracing_subscriber::EnvFilter::new(format!("{level},netlink_packet_route=error"))
}

fn init_logging(level: &str) -> Option<LogHandle> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let from_env = tracing_subscriber::EnvFilter::try_from_env("BERTHD_LOG").ok();
    let pinned = from_env.is_some();
    let (filter, handle) =
        tracing_subscriber::reload::Layer::new(from_env.unwrap_or_else(|| level_filter(level)));
    let ok = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init()
        .is_ok();
    // BERTHD_LOG pins the filter; otherwise SIGHUP may change it.
    (ok && !pinned).then_some(handle)
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    let config = match Config::load(&flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e}");
            return ExitCode::from(1);
        }
    };
    let log_handle = init_logging(&config.log_level);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if !config.registry_mirrors.is_empty() {
        tracing::warn!(
            mirrors = ?config.registry_mirrors,
            "registry mirrors are not supported yet; pulls go to the registry named in the reference"
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(flags, config, log_handle)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(flags: Flags, config: Config, log_handle: Option<LogHandle>) -> anyhow::Result<()> {
    use anyhow::Context;
    for d in [&config.data_root, &config.exec_root] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::create_dir_all(config.data_root.join("containers"))
        .context("creating the containers dir")?;
    let _lock = lock::DataRootLock::acquire(&config.data_root)?;
    std::fs::write(&config.pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing pid file {}", config.pidfile.display()))?;
    let listeners = server::bind(&config.hosts)?;
    let pidfile = config.pidfile.clone();
    let (store, warnings) =
        berth_image::Store::open(&config.data_root, berth_image::StoreOptions::default())
            .context("opening the image store")?;
    for w in warnings {
        tracing::warn!(object = %w.object, "image store: {}", w.message);
    }
    let daemon = Daemon::new(config, store);
    for w in daemon
        .networks
        .init(&daemon.config)
        .await
        .map_err(|e| anyhow::anyhow!("setting up networking: {}", e.message))?
    {
        tracing::warn!("{w}");
    }
    containers::recovery::recover(&daemon).await;
    networks::recovery::reassert(&daemon).await;
    daemon.networks.spawn_docker_user_refresher();

    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let router = api::router(daemon.clone());
    let srv = tokio::spawn(server::serve(listeners, router, rx));
    tokio::spawn(berth_daemon::idle::shed_when_quiet());
    tracing::info!(hosts = ?daemon.config.hosts, data_root = %daemon.config.data_root.display(), "berthd ready");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match Config::load(&flags) {
                    Ok(c) => {
                        if let Some(h) = &log_handle
                            && let Err(e) = h.reload(level_filter(&c.log_level))
                        {
                            tracing::warn!(error = %e, "SIGHUP: changing the log level failed");
                        }
                        tracing::info!(log_level = %c.log_level, "SIGHUP: configuration reloaded (log level applied; listen addresses, roots and runtimes apply at restart)");
                    }
                    Err(e) => tracing::error!(error = %e, "SIGHUP: configuration invalid; keeping the old one"),
                }
            }
        }
    }
    tracing::info!("shutting down: finishing in-flight requests; containers keep running");
    daemon.shutting_down.send_replace(true);
    let _ = tx.send(true);
    let _ = srv.await;
    let left = daemon
        .background
        .wait_idle(std::time::Duration::from_secs(10))
        .await;
    if left > 0 {
        tracing::warn!(
            tasks = left,
            "shutting down with clean-up still running; the next start finishes it"
        );
    }
    let _ = std::fs::remove_file(pidfile);
    Ok(())
}
