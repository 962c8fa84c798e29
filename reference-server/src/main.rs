//! The `reference-server` binary: `serve` (the default) runs the server.

use clap::{Parser, Subcommand};
use reference_server::{Application, Config};
use tracing_subscriber::EnvFilter;

/// OpenPhone (Quo) reference server: durable webhook ingestion on SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(Config),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    match serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), reference_server::Error> {
    let app = Application::build(&config).await?;
    let address = app.local_addr()?;
    let database = app.store().backend();
    // Written without `println!`: a closed stdout (a supervisor that stopped reading) must not
    // take the server down.
    let mut banner =
        format!("reference-server listening on http://{address} (database: {database})\n");
    for path in reference_server::app::WEBHOOK_PATHS {
        banner.push_str(&format!("  webhooks: POST http://{address}{path}\n"));
    }
    banner.push_str(&format!("  health:   GET  http://{address}/healthz\n"));
    let mut stdout = std::io::stdout();
    let _ = std::io::Write::write_all(&mut stdout, banner.as_bytes());
    let _ = std::io::Write::flush(&mut stdout);
    app.run_until_stopped(shutdown_signal()).await
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
