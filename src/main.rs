//! skip-action: build only the container images whose inputs changed.
//!
//! The binary is a thin shell around the library modules: parse flags (or `INPUT_*` from the
//! composite action), run one command, turn an error into a message and an exit code
//! (2 = fix your input, 1 = something failed).

use std::process::ExitCode;

use skip_action::{cli, commands, error, github};

use clap::Parser as _;

fn main() -> ExitCode {
    cli::scrub_empty_inputs();
    init_tracing();
    let cli = match cli::Cli::try_parse_from(cli::effective_args()) {
        Ok(c) => c,
        Err(e) => {
            if e.use_stderr() {
                // A bad flag value is quoted back: it may come from an untrusted input.
                eprint!("{}", github::defuse_commands(&e.render().to_string()));
            } else {
                let _ = e.print();
            }
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        cli::Command::Hash(a) => commands::hash::run(a),
        cli::Command::Inputs(a) => commands::inputs::run(a),
        cli::Command::Decide(a) => commands::decide::run(a),
        cli::Command::Promote(a) => commands::promote::run(a),
        cli::Command::Bake(a) => commands::bake::run(a),
        cli::Command::Schema => commands::schema::run(),
        cli::Command::Stamp(a) => commands::stamp::run(a),
        cli::Command::Merge(a) => commands::merge::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let msg = format!("{err:#}");
            github::error(&msg);
            eprintln!("error: {}", github::defuse_commands(&msg));
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// Logs go to stderr (stdout carries results). `SKIP_ACTION_LOG` or `RUST_LOG` set the filter;
/// the default shows warnings and a few timing lines.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("SKIP_ACTION_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour())
        .with_target(false)
        .without_time()
        .init();
}

/// ANSI colour only where it is rendered: a terminal, or a GitHub Actions log (which renders
/// it although stderr is a pipe there). Files, pipes and other CI logs get plain text.
fn log_colour() -> bool {
    use std::io::IsTerminal as _;
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") || std::io::stderr().is_terminal()
}
