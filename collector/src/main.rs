//! `consentry-collector`: parses the command line, starts the server, prints where it listens
//! and how to trust its certificate, and shuts down gracefully on SIGINT or SIGTERM.
//!
//! Human-facing lines go to stderr; the structured JSON log goes to stdout
//! (filter with `CONSENTRY_LOG`, e.g. `CONSENTRY_LOG=debug`).

use clap::Parser;
use consentry_collector::commands;
use consentry_collector::config::{Cli, Settings};
use consentry_collector::keys::AdminTokenSource;
use consentry_collector::server::{self, Running};
use consentry_collector::tls::{LocalCa, SPKI_FILE};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(command) = cli.command.take() {
        return commands::run(command, &cli);
    }
    init_logging();
    let fault_injection = cli.fault_injection;
    let data_dir = cli.data_dir.clone();
    let settings = match Settings::from_cli(cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("consentry-collector: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("consentry-collector: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match server::start(settings).await {
            Ok(running) => running,
            Err(e) => {
                eprintln!("consentry-collector: {e}");
                return ExitCode::FAILURE;
            }
        };
        announce(&running, &data_dir, fault_injection);
        let signal = wait_for_signal().await;
        tracing::info!(signal, "shutdown requested");
        match running.shutdown().await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(error = %e, "unclean shutdown");
                ExitCode::FAILURE
            }
        }
    })
}

fn init_logging() {
    let filter =
        EnvFilter::try_from_env("CONSENTRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only if a subscriber is already set, which nothing else here does.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

fn announce(running: &Running, data_dir: &std::path::Path, fault_injection: bool) {
    if let (Some(LocalCa::Created), Some(ca)) = (&running.local_ca, &running.ca_path) {
        let ca = ca.display();
        eprintln!("TLS: created a local development CA and a certificate for localhost, 127.0.0.1 and ::1.");
        eprintln!("  The CA's private key was discarded after signing: trusting it admits only this certificate.");
        eprintln!("  To trust it:");
        eprintln!("    Debian/Ubuntu:  sudo cp {ca} /usr/local/share/ca-certificates/consentry-local-ca.crt && sudo update-ca-certificates");
        eprintln!("    Chromium/NSS:   certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n consentry-local-ca -i {ca}");
        eprintln!("    macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}");
        eprintln!("    Node.js:        NODE_EXTRA_CA_CERTS={ca}");
        eprintln!("    curl:           curl --cacert {ca} ...");
    } else if let Some(ca) = &running.ca_path {
        eprintln!("TLS: local development CA reused: {}", ca.display());
    }
    if let Some(pin) = &running.spki_pin {
        eprintln!(
            "TLS: SPKI pin {pin} (in {}): chromium --ignore-certificate-errors-spki-list={pin}",
            data_dir.join(SPKI_FILE).display()
        );
    }
    match &running.admin_token_source {
        AdminTokenSource::Given => {
            eprintln!("admin token: as given (--admin-token / CONSENTRY_ADMIN_TOKEN)")
        }
        AdminTokenSource::Stored(path) => eprintln!("admin token: in {}", path.display()),
        AdminTokenSource::Created(path) => {
            eprintln!("admin token: generated, in {}", path.display())
        }
    }
    if fault_injection {
        eprintln!(
            "fault injection is ON: /v1/admin/faults and /v1/admin/reset are enabled (tests only)"
        );
    }
    eprintln!(
        "consentry-collector {} listening on {} (environments: {})",
        env!("CARGO_PKG_VERSION"),
        running.url,
        running.environments.join(", ")
    );
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
