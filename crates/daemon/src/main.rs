//! berthd: the Docker Engine API daemon.

use std::process::ExitCode;

use berth_daemon::config::{Config, Flags};
use berth_daemon::daemon::Daemon;
use berth_daemon::{api, containers, images, lock, server};
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTHD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if level == "fatal" { "error" } else { level }));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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
    init_logging(&config.log_level);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(flags, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(flags: Flags, config: Config) -> anyhow::Result<()> {
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
    let daemon = Daemon::new(config, images::open_store_or_unavailable_for(&flags));
    containers::recovery::recover(&daemon).await;

    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let router = api::router(daemon.clone());
    let srv = tokio::spawn(server::serve(listeners, router, rx));
    tracing::info!(hosts = ?daemon.config.hosts, data_root = %daemon.config.data_root.display(), "berthd ready");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match Config::load(&flags) {
                    Ok(c) => tracing::info!(log_level = %c.log_level, "SIGHUP: configuration re-read (listen addresses and roots apply at restart)"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: configuration invalid; keeping the old one"),
                }
            }
        }
    }
    tracing::info!("shutting down: finishing in-flight requests; containers keep running");
    let _ = tx.send(true);
    let _ = srv.await;
    let _ = std::fs::remove_file(pidfile);
    Ok(())
}
