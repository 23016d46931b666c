//! One module per group of commands; [`dispatch`] maps the parsed command line to them.

pub mod containers;
pub mod exec;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod objects;
pub mod ps;
pub mod run;
pub mod streams;
pub mod system;

use berth_client::{Client, ClientError, Host};
use serde_json::Value;

use crate::cli::{
    Cli, Cmd, ContainerCmd, ContainerMgmt, ImageCmd, NetworkCmd, SystemCmd, VolumeCmd,
};
use crate::error::{CliError, Result};
use crate::template;

/// What every command gets: the daemon client.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The client, version negotiated.
    pub client: Client,
}

impl Ctx {
    /// Connects (lazily: a ping to learn the API version).
    pub async fn connect(host_flag: Option<&str>) -> Result<Ctx> {
        let host = Host::select(host_flag).map_err(|e| CliError::Client(ClientError::Host(e)))?;
        let mut client = Client::new(host);
        if let Ok(v) = std::env::var("DOCKER_API_VERSION")
            && !v.is_empty()
        {
            client.set_api_version(v);
        } else {
            match client.negotiate().await {
                Ok(_) => {}
                Err(e @ ClientError::Connect { .. }) => return Err(e.into()),
                // A daemon that answers the ping badly: proceed unversioned, the real request
                // will report what is wrong (as the docker CLI does).
                Err(_) => {}
            }
        }
        Ok(Ctx { client })
    }

    /// `GET` → template value.
    pub async fn get_value(&self, path: &str) -> Result<template::Value> {
        let b = self.client.get_bytes(path).await?;
        serde_json::from_slice(&b)
            .map_err(|e| CliError::Msg(format!("decoding the daemon's answer to {path}: {e}")))
    }

    /// `DELETE` → template value (empty answers are `null`).
    pub async fn delete_value(&self, path: &str) -> Result<template::Value> {
        let b = self.client.delete(path).await?;
        decode_value(&b, path)
    }

    /// `POST` without a body → template value (empty answers are `null`).
    pub async fn post_value(&self, path: &str) -> Result<template::Value> {
        let b = self.client.post_bytes::<()>(path, None).await?;
        decode_value(&b, path)
    }

    /// `GET` → serde_json value.
    pub async fn get_json(&self, path: &str) -> Result<Value> {
        Ok(self.client.get_json(path).await?)
    }
}

fn decode_value(b: &[u8], path: &str) -> Result<template::Value> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(template::Value::Null);
    }
    serde_json::from_slice(b)
        .map_err(|e| CliError::Msg(format!("decoding the daemon's answer to {path}: {e}")))
}

/// Docker's `--filter k=v` list as the API's JSON map of lists.
pub fn filters_json(filters: &[String]) -> Result<Option<String>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            return Err(CliError::Msg(
                "bad format of filter (expected name=value)".into(),
            ));
        };
        m.entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.to_owned());
    }
    // Docker sends {"key":{"value":true}}; berthd and dockerd accept both encodings.
    let obj: serde_json::Map<String, Value> = m
        .into_iter()
        .map(|(k, vs)| {
            (
                k,
                Value::Object(vs.into_iter().map(|v| (v, Value::Bool(true))).collect()),
            )
        })
        .collect();
    Ok(Some(Value::Object(obj).to_string()))
}

/// Runs a parsed command line; returns the exit status.
pub async fn dispatch(cli: Cli) -> Result<i32> {
    let Some(cmd) = cli.cmd else {
        return Ok(0);
    };
    let host = cli.host.as_deref();
    match cmd {
        Cmd::Completion(a) => completion(&a.shell),
        Cmd::Version(a) => system::version(host, a).await,
        Cmd::Container(c) => container(host, *c).await,
        Cmd::ContainerMgmt(c) => match c {
            ContainerMgmt::Common(c) => container(host, *c).await,
            ContainerMgmt::Ls(a) => ps::ps(&Ctx::connect(host).await?, a).await,
            ContainerMgmt::Prune(a) => {
                lifecycle::container_prune(&Ctx::connect(host).await?, a).await
            }
            ContainerMgmt::Inspect(a) => {
                inspect::typed(&Ctx::connect(host).await?, "container", a).await
            }
        },
        other => {
            let ctx = Ctx::connect(host).await?;
            match other {
                Cmd::Images(a) => images::images(&ctx, a).await,
                Cmd::Pull(a) => images::pull(&ctx, a).await,
                Cmd::Push(a) => images::push(&ctx, a).await,
                Cmd::Rmi(a) => images::rmi(&ctx, a).await,
                Cmd::Tag(a) => images::tag(&ctx, a).await,
                Cmd::Save(a) => images::save(&ctx, a).await,
                Cmd::Load(a) => images::load(&ctx, a).await,
                Cmd::Import(a) => images::import(&ctx, a).await,
                Cmd::History(a) => images::history(&ctx, a).await,
                Cmd::Build(_) => images::build(&ctx).await,
                Cmd::Inspect(a) => inspect::inspect(&ctx, a).await,
                Cmd::Login(a) => system::login(&ctx, a).await,
                Cmd::Logout(a) => system::logout(a).await,
                Cmd::Info(a) => system::info(&ctx, a).await,
                Cmd::Events(a) => system::events(&ctx, a).await,
                Cmd::Image(c) => match c {
                    ImageCmd::Ls(a) => images::images(&ctx, a).await,
                    ImageCmd::Rm(a) => images::rmi(&ctx, a).await,
                    ImageCmd::Prune(a) => images::prune(&ctx, a).await,
                    ImageCmd::Inspect(a) => inspect::typed(&ctx, "image", a).await,
                    ImageCmd::History(a) => images::history(&ctx, a).await,
                    ImageCmd::Tag(a) => images::tag(&ctx, a).await,
                    ImageCmd::Save(a) => images::save(&ctx, a).await,
                    ImageCmd::Load(a) => images::load(&ctx, a).await,
                    ImageCmd::Import(a) => images::import(&ctx, a).await,
                    ImageCmd::Pull(a) => images::pull(&ctx, a).await,
                    ImageCmd::Push(a) => images::push(&ctx, a).await,
                    ImageCmd::Build(_) => images::build(&ctx).await,
                },
                Cmd::Network(c) => match c {
                    NetworkCmd::Ls(a) => objects::network_ls(&ctx, a).await,
                    NetworkCmd::Create(a) => objects::network_create(&ctx, a).await,
                    NetworkCmd::Rm(a) => objects::network_rm(&ctx, a).await,
                    NetworkCmd::Inspect(a) => inspect::typed(&ctx, "network", a).await,
                    NetworkCmd::Connect(a) => objects::network_connect(&ctx, a).await,
                    NetworkCmd::Disconnect(a) => objects::network_disconnect(&ctx, a).await,
                    NetworkCmd::Prune(a) => objects::network_prune(&ctx, a).await,
                },
                Cmd::Volume(c) => match c {
                    VolumeCmd::Ls(a) => objects::volume_ls(&ctx, a).await,
                    VolumeCmd::Create(a) => objects::volume_create(&ctx, a).await,
                    VolumeCmd::Rm(a) => objects::volume_rm(&ctx, a).await,
                    VolumeCmd::Inspect(a) => inspect::typed(&ctx, "volume", a).await,
                    VolumeCmd::Prune(a) => objects::volume_prune(&ctx, a).await,
                },
                Cmd::System(c) => match c {
                    SystemCmd::Df(a) => system::df(&ctx, a).await,
                    SystemCmd::Prune(a) => system::prune(&ctx, a).await,
                    SystemCmd::Info(a) => system::info(&ctx, a).await,
                    SystemCmd::Events(a) => system::events(&ctx, a).await,
                },
                Cmd::Version(_)
                | Cmd::Container(_)
                | Cmd::ContainerMgmt(_)
                | Cmd::Completion(_) => Ok(0),
            }
        }
    }
}

async fn container(host: Option<&str>, c: ContainerCmd) -> Result<i32> {
    // run/create map their connection errors to 125 themselves.
    if let ContainerCmd::Run(a) = c {
        return run::run(host, a).await;
    }
    if let ContainerCmd::Create(a) = c {
        return run::create_cmd(host, a).await;
    }
    let ctx = Ctx::connect(host).await?;
    match c {
        ContainerCmd::Run(_) | ContainerCmd::Create(_) => Ok(0),
        ContainerCmd::Start(a) => run::start(&ctx, a).await,
        ContainerCmd::Stop(a) => lifecycle::stop(&ctx, a, "stop").await,
        ContainerCmd::Restart(a) => lifecycle::stop(&ctx, a, "restart").await,
        ContainerCmd::Kill(a) => lifecycle::kill(&ctx, a).await,
        ContainerCmd::Rm(a) => lifecycle::rm(&ctx, a).await,
        ContainerCmd::Ps(a) => ps::ps(&ctx, a).await,
        ContainerCmd::Logs(a) => logs::logs(&ctx, a).await,
        ContainerCmd::Exec(a) => exec::exec(&ctx, a).await,
        ContainerCmd::Attach(a) => run::attach_cmd(&ctx, a).await,
        ContainerCmd::Wait(a) => lifecycle::wait(&ctx, a).await,
        ContainerCmd::Rename(a) => lifecycle::rename(&ctx, a).await,
        ContainerCmd::Top(a) => containers::top(&ctx, a).await,
        ContainerCmd::Stats(a) => containers::stats(&ctx, a).await,
        ContainerCmd::Pause(a) => lifecycle::simple(&ctx, a, "pause").await,
        ContainerCmd::Unpause(a) => lifecycle::simple(&ctx, a, "unpause").await,
        ContainerCmd::Update(a) => containers::update(&ctx, a).await,
        ContainerCmd::Cp(a) => containers::cp(&ctx, a).await,
        ContainerCmd::Diff(a) => containers::diff(&ctx, a).await,
        ContainerCmd::Commit(a) => containers::commit(&ctx, a).await,
        ContainerCmd::Export(a) => containers::export(&ctx, a).await,
        ContainerCmd::Port(a) => containers::port(&ctx, a).await,
    }
}

/// `completion SHELL`: the script clap_complete generates from the command definitions.
fn completion(shell: &str) -> Result<i32> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let sh = match shell {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => return Err(CliError::Msg(format!("unsupported shell type \"{other}\""))),
    };
    let mut buf = Vec::new();
    clap_complete::generate(sh, &mut crate::cli::Cli::command(), "berth", &mut buf);
    crate::output::out_bytes(&buf);
    Ok(0)
}
