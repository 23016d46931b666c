//! `berth`: a drop-in `docker` command that talks only HTTP (Docker Engine API v1.41) to
//! berthd. Same subcommands, flags, output and exit codes as the docker CLI.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod cli;
mod commands;
mod error;
mod format;
mod opts;
mod output;
mod progress;
mod template;
mod tty;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::error::CliError;

/// The command path (`berth run`) from clap's usage text.
fn command_path(err: &clap::Error) -> String {
    let usage = match err.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => String::new(),
    };
    let line = usage
        .lines()
        .find(|l| l.contains("berth"))
        .unwrap_or("berth");
    let after = line.trim_start_matches("Usage:").trim();
    after
        .split_whitespace()
        .take_while(|w| {
            !w.starts_with('[')
                && !w.starts_with('<')
                && !w.starts_with('-')
                && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn usage_line(err: &clap::Error) -> String {
    match err.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => {
            let s = s.to_string();
            let body = s.trim().trim_start_matches("Usage:").trim().to_owned();
            format!("Usage:  {body}")
        }
        _ => String::new(),
    }
}

/// Prints a parse error the way the docker CLI does; returns the exit status.
fn usage_error(err: clap::Error) -> i32 {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return 0;
        }
        _ => {}
    }
    let cmd = {
        let c = command_path(&err);
        if c.is_empty() { "berth".to_owned() } else { c }
    };
    let usage = usage_line(&err);
    let invalid = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    let (msg, code) = match err.kind() {
        ErrorKind::UnknownArgument => {
            let flag = invalid.split('=').next().unwrap_or("").to_owned();
            if flag.starts_with("--") {
                (format!("unknown flag: {flag}"), 125)
            } else {
                (
                    format!(
                        "unknown shorthand flag: '{}' in {flag}",
                        flag.trim_start_matches('-').chars().next().unwrap_or('?')
                    ),
                    125,
                )
            }
        }
        ErrorKind::InvalidSubcommand => {
            let sub = match err.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => invalid.clone(),
            };
            output::errln(&format!(
                "berth: unknown command: {cmd} {sub}\n\nRun '{cmd} --help' for more information"
            ));
            return 1;
        }
        ErrorKind::MissingRequiredArgument => {
            output::errln(&format!(
                "berth: '{cmd}' requires at least 1 argument\n\n{usage}\n\nSee '{cmd} --help' for more information"
            ));
            return 1;
        }
        ErrorKind::MissingSubcommand => {
            output::errln(&format!(
                "berth: '{cmd}' requires a subcommand\n\nSee '{cmd} --help' for more information"
            ));
            return 1;
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let value = match err.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            (
                format!("invalid argument \"{value}\" for \"{invalid}\" flag"),
                125,
            )
        }
        _ => {
            let text = err.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_owned();
            (first, 125)
        }
    };
    if usage.is_empty() {
        output::errln(&format!("{msg}\n\nRun '{cmd} --help' for more information"));
    } else {
        output::errln(&format!(
            "{msg}\n\n{usage}\n\nRun '{cmd} --help' for more information"
        ));
    }
    code
}

/// Prints a command error (Docker's wording) and returns the exit status.
fn report(err: &CliError) -> i32 {
    let msg = err.to_string();
    if !msg.is_empty() {
        output::errln(&msg);
    }
    err.exit_code()
}

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => std::process::exit(usage_error(e)),
    };
    if cli.version {
        output::outln(&format!("berth version {}", commands::system::VERSION));
        std::process::exit(0);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::errln(&format!("berth: starting the async runtime: {e}"));
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => report(&e),
    };
    tty::restore_all();
    // Exit without dropping the runtime: a blocked stdin reader thread must not keep us alive.
    std::process::exit(code);
}
