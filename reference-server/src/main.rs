//! The `reference-server` binary: `serve` (the default) runs the server.

use std::io::Write;

use clap::{Parser, Subcommand};
use reference_server::auth::{Role, TokenStore};
use reference_server::import::Checkpoints;
use reference_server::{Application, Config};
use tracing_subscriber::EnvFilter;

// mimalloc: the webhook path allocates per request (HTTP, JSON, the projection), and under
// load glibc's allocator took a fifth of the server's CPU (see docs/benchmarks.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// OpenPhone (Quo) reference server: durable webhook ingestion on SQLite or PostgreSQL.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The settings, for every command: given before or after the command's name.
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Rebuild the normalized records from the raw event log (idempotent).
    Replay {
        /// Only events received at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
        /// Report what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Import the history the OpenPhone API holds (resumable: rerun it to continue).
    Import {
        /// Only messages and calls created at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
        /// Only these phone number ids (PN...); repeat the flag for several.
        #[arg(long = "phone-number")]
        phone_numbers: Vec<String>,
        /// Forget the saved progress and start over.
        #[arg(long)]
        restart: bool,
    },
    /// Compare the API with what was stored since a time and insert what is missing.
    Reconcile {
        /// From this time (RFC 3339); default: 48 hours ago.
        #[arg(long, value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
    },
    /// Export resolved threads not exported yet: to JSON Lines files, and to a model whose
    /// insights wait for review.
    Export {
        /// Write a JSON Lines file of the threads not yet written, in this directory.
        #[arg(long)]
        to: Option<std::path::PathBuf>,
        /// Send the threads not yet sent to this provider (`anthropic`, `openai`, `gemini`).
        #[arg(long)]
        llm: Option<String>,
        /// Print what would be exported, and export nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export the raw event log, or replay an export to an endpoint.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Create, list and revoke the bearer tokens of the management API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Write raw events (exact bytes, oldest first) as JSON Lines.
    Export {
        /// The file to write; standard output when omitted.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Only events of this type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only events received at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        since: Option<time::OffsetDateTime>,
    },
    /// Post every event of an export file to an endpoint, re-signed with a `whsec_` secret.
    Replay {
        /// The export file.
        file: std::path::PathBuf,
        /// The endpoint, e.g. http://127.0.0.1:8080/api/openphone/webhook.
        #[arg(long)]
        to: String,
        /// The secret the endpoint verifies with.
        #[arg(long, env = "REPLAY_SECRET", hide_env_values = true)]
        secret: reference_server::config::Redacted,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        /// A label, such as who or what uses it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a token by its id (the part after `rs_`, as `token list` shows it).
    Revoke {
        /// The token's id.
        id: String,
    },
    /// List tokens (ids, roles, labels; never the secrets).
    List,
}

fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| "expected an RFC 3339 time, e.g. 2026-04-01T00:00:00Z".to_owned())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // LOG_FORMAT=json: one JSON object per line, for log collectors.
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let Cli { command, config } = Cli::parse();
    let result = match command {
        Some(Command::Serve) | None => serve(config).await,
        Some(Command::Replay { since, dry_run }) => replay(config, since, dry_run).await,
        Some(Command::Token { command }) => token(&config, command).await,
        Some(Command::Import {
            since,
            phone_numbers,
            restart,
        }) => import(config, since, phone_numbers, restart).await,
        Some(Command::Reconcile { since }) => reconcile(config, since).await,
        Some(Command::Events { command }) => events(&config, command).await,
        Some(Command::Export { to, llm, dry_run }) => export(config, to, llm, dry_run).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let mut causes = reference_server::causes(&error).into_iter();
            eprintln!("error: {}", causes.next().unwrap_or_default());
            for cause in causes {
                eprintln!("  caused by: {cause}");
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

/// Ctrl-C (or `SIGTERM`) asks the export to end before its next batch to the model; a second
/// Ctrl-C quits at once (the batch in hand is then sent again by the next run). The handlers
/// are installed before this returns, so a signal cannot come before them.
fn stop_on_signals()
-> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, reference_server::Error> {
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stopping.clone();
    let stop = move || {
        eprintln!(
            "stopping after the batch in hand (Ctrl-C again to quit now; that batch is then sent again by the next run)"
        );
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |error: std::io::Error| {
            reference_server::Error::Command(format!("cannot handle signals: {error}"))
        };
        let mut interrupt = signal(SignalKind::interrupt()).map_err(handler)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(handler)?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            stop();
            interrupt.recv().await;
            std::process::exit(130);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop();
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
    Ok(stopping)
}

async fn export(
    config: Config,
    to: Option<std::path::PathBuf>,
    llm: Option<String>,
    dry_run: bool,
) -> Result<(), reference_server::Error> {
    if to.is_none() && llm.is_none() {
        return Err(reference_server::Error::Config(
            "nothing to export to: give --to DIR and/or --llm PROVIDER".to_owned(),
        ));
    }
    let settings = config.knowledge_settings(llm.as_deref())?;
    let store = config.open_store().await?;
    let stopping = stop_on_signals()?;
    let options = knowledge_export::ExportOptions {
        to_dir: to,
        llm: llm.is_some(),
        dry_run,
        stop: knowledge_export::StopWhen::new(move || {
            stopping.load(std::sync::atomic::Ordering::SeqCst)
        }),
    };
    let report = reference_server::knowledge::run_export(
        &store,
        &settings,
        &options,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .map_err(reference_server::Error::Command)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if report.failed_batches > 0 {
        return Err(reference_server::Error::Command(format!(
            "{} batch(es) failed; their threads stay unexported (see GET /api/v1/export-failures)",
            report.failed_batches
        )));
    }
    if report.stopped {
        return Err(reference_server::Error::Command(
            "stopped before the end; the threads not sent wait for the next run".to_owned(),
        ));
    }
    Ok(())
}

async fn replay(
    config: Config,
    since: Option<time::OffsetDateTime>,
    dry_run: bool,
) -> Result<(), reference_server::Error> {
    let store = config.open_store().await?;
    // Progress on standard error, at most every two seconds.
    let mut shown = std::time::Instant::now();
    let mut progress = |so_far: &reference_server::store::ReplayReport| {
        if shown.elapsed() >= std::time::Duration::from_secs(2) {
            shown = std::time::Instant::now();
            eprintln!(
                "{} raw deliveries so far ({} projected)",
                so_far.deliveries, so_far.projected
            );
        }
    };
    let report = store.replay(since, dry_run, &mut progress).await?;
    let mut out = format!(
        "{} {} raw deliveries: {} projected, {} not events\n",
        if dry_run { "dry run over" } else { "replayed" },
        report.deliveries,
        report.projected,
        report.unparsed
    );
    out.push_str(&format!(
        "  {:<18} {:>9}    {:>9}{}\n",
        "table",
        "rows",
        "after",
        if dry_run {
            "  new or changed  removed or changed"
        } else {
            ""
        }
    ));
    for table in &report.tables {
        out.push_str(&format!(
            "  {:<18} {:>9} -> {:>9}",
            table.table, table.before, table.after
        ));
        if let Some((new, removed)) = table.differing {
            out.push_str(&format!("  {new:>14}  {removed:>18}"));
        }
        out.push('\n');
    }
    for (id, why) in &report.refused {
        out.push_str(&format!(
            "delivery {id} left unprojected: the database refused its records ({why})\n"
        ));
    }
    if dry_run {
        out.push_str("nothing was changed (dry run)\n");
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    Ok(())
}

async fn import(
    config: Config,
    since: Option<time::OffsetDateTime>,
    phone_numbers: Vec<String>,
    restart: bool,
) -> Result<(), reference_server::Error> {
    let client = config.openphone_client()?.ok_or_else(|| {
        reference_server::Error::Config("OPENPHONE_API_KEY is required to import".to_owned())
    })?;
    let store = config.open_store().await?;
    if restart {
        store.reset_import("import").await?;
    }
    let importer = reference_server::import::Importer::new(
        client,
        store,
        reference_server::ingest::system_clock(),
        reference_server::import::ImportOptions {
            since,
            phone_numbers,
            checkpoint: "import".to_owned(),
            only_missing: false,
        },
    );
    let report = run_with_progress(&importer).await?;
    print_report("import", &report);
    Ok(())
}

async fn reconcile(
    config: Config,
    since: Option<time::OffsetDateTime>,
) -> Result<(), reference_server::Error> {
    let client = config.openphone_client()?.ok_or_else(|| {
        reference_server::Error::Config("OPENPHONE_API_KEY is required to reconcile".to_owned())
    })?;
    let store = config.open_store().await?;
    let since =
        since.unwrap_or_else(|| time::OffsetDateTime::now_utc() - time::Duration::hours(48));
    let report = reference_server::reconcile::reconcile(
        &client,
        &store,
        reference_server::ingest::system_clock(),
        since,
        "reconcile-cli",
    )
    .await?;
    print_report("reconciliation", &report);
    Ok(())
}

async fn run_with_progress(
    importer: &reference_server::import::Importer,
) -> Result<reference_server::import::ImportReport, reference_server::Error> {
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (done, finished) = tokio::sync::oneshot::channel();
    let progress = tokio::spawn(reference_server::import::show_progress(
        importer.progress.clone(),
        terminal,
        std::time::Duration::from_secs(if terminal { 1 } else { 10 }),
        finished,
    ));
    let result = importer.run().await;
    let _ = done.send(());
    let _ = progress.await;
    Ok(result?)
}

fn print_report(what: &str, report: &reference_server::import::ImportReport) {
    let mut out = format!(
        "{what}: {} requests in {:.1} s ({:.2}/s)\n  {:<12} {:>9} {:>9} {:>9}\n",
        report.requests,
        report.seconds,
        report.rate(),
        "kind",
        "checked",
        "created",
        "present"
    );
    for (kind, counts) in &report.kinds {
        out.push_str(&format!(
            "  {kind:<12} {:>9} {:>9} {:>9}\n",
            counts.checked, counts.created, counts.already_present
        ));
    }
    if report.failures.is_empty() {
        out.push_str("  no failures\n");
    } else {
        out.push_str(&format!("  {} failures:\n", report.failures.len()));
        for failure in &report.failures {
            out.push_str(&format!("    {failure}\n"));
        }
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
}

async fn events(config: &Config, command: EventsCommand) -> Result<(), reference_server::Error> {
    use reference_server::forward;
    match command {
        EventsCommand::Export {
            out,
            event_type,
            since,
        } => {
            let store = config.open_store().await?;
            let mut writer: Box<dyn std::io::Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let written = forward::export(&store, event_type.as_deref(), since, &mut *writer)
                .await
                .map_err(|error| {
                    reference_server::Error::Command(format!("export failed: {error}"))
                })?;
            writer.flush()?;
            eprintln!("exported {written} events");
        }
        EventsCommand::Replay { file, to, secret } => {
            let url = to.parse::<reqwest::Url>().map_err(|error| {
                reference_server::Error::Config(format!("--to is not a URL: {error}"))
            })?;
            let host = url.host_str().unwrap_or_default().to_owned();
            let target = forward::parse_targets(&format!("{url}={}", secret.0), &[host])
                .map_err(reference_server::Error::Config)?
                .remove(0);
            let mut input = std::io::BufReader::new(std::fs::File::open(&file)?);
            let outcome =
                forward::replay_file(&mut input, &target, time::OffsetDateTime::now_utc())
                    .await
                    .map_err(|error| {
                        reference_server::Error::Command(format!("replay stopped: {error}"))
                    })?;
            eprintln!(
                "replayed: {} accepted, {} failed",
                outcome.accepted,
                outcome.failed.len()
            );
            for failure in &outcome.failed {
                eprintln!("  {failure}");
            }
            if !outcome.failed.is_empty() {
                return Err(reference_server::Error::Command(format!(
                    "{} events were not accepted",
                    outcome.failed.len()
                )));
            }
        }
    }
    Ok(())
}

async fn token(config: &Config, command: TokenCommand) -> Result<(), reference_server::Error> {
    let now = time::OffsetDateTime::now_utc();
    let out = match command {
        TokenCommand::Create { role, name } => {
            let store = config.open_store().await?;
            let token = store.create_token(role, name.as_deref(), now).await?;
            eprintln!(
                "created token {} with role {}; it is shown once, store it now:",
                token.id, token.role
            );
            format!("{}\n", token.token)
        }
        TokenCommand::Revoke { id } => {
            let store = config.open_store().await?;
            let id = id.trim_start_matches("rs_");
            if !store.revoke_token(id, now).await? {
                return Err(reference_server::Error::NotFound("live token with this id"));
            }
            format!("revoked token {id}\n")
        }
        TokenCommand::List => {
            let store = config.open_store().await?;
            let mut out = format!(
                "{:<12}  {:<8}  {:<20}  {:<20}  name\n",
                "id", "role", "created", "revoked"
            );
            for token in store.tokens().await? {
                let format = |time: time::OffsetDateTime| {
                    time.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                };
                out.push_str(&format!(
                    "{:<12}  {:<8}  {:<20}  {:<20}  {}\n",
                    token.id,
                    token.role,
                    format(
                        token
                            .created_at
                            .replace_nanosecond(0)
                            .unwrap_or(token.created_at)
                    ),
                    token
                        .revoked_at
                        .map(format)
                        .unwrap_or_else(|| "-".to_owned()),
                    token.name.unwrap_or_default()
                ));
            }
            out
        }
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    Ok(())
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
