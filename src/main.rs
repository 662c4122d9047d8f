use clap::Parser;
use ecca::cli::output::tell;
use ecca::cli::{Cli, Setup};
use std::process::ExitCode;

fn main() -> ExitCode {
    ecca::install_tls_provider();
    let _ = color_eyre::install();
    let cli = Cli::parse();
    // Logs go to rolling files in the data dir: nothing is printed to the terminal by logging.
    let _log_guard = Setup::resolve(&cli)
        .ok()
        .and_then(|s| init_logging(&s.data_dir));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tell(&format!("error: could not start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    // A reader that left early (`ecca tasks | head -1`) is not a failure: the command has
    // stopped printing and finished its work, and exits 0 like other tools that handle it.
    match runtime.block_on(ecca::cli::main(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tell(&format!("error: {message}"));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(data_dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    ecca::store::create_private_dir(data_dir).ok()?;
    let dir = data_dir.join("logs");
    ecca::store::create_private_dir(&dir).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("ecca")
        .filename_suffix("log")
        .max_log_files(14)
        .build(&dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ECCA_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Some(guard)
}
