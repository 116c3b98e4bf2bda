//! `carepass-sandbox`: run the sandbox platform, or print its OpenAPI document.

use std::net::SocketAddr;
use std::path::PathBuf;

use carepass_sandbox::SandboxConfig;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "carepass-sandbox", version, about = "The CarePass sandbox platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Seed {
    /// The documented demo city (docs/sandbox.md).
    Demo,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the platform API until stopped (Ctrl-C or SIGTERM).
    Serve {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: SocketAddr,
        /// Directory of the platform's database.
        #[arg(long)]
        data: PathBuf,
        /// Seed the database on first start.
        #[arg(long, value_enum)]
        seed: Option<Seed>,
        /// Bearer token for the admin routes (clinic, pharmacy, test fixtures); off without it.
        #[arg(long, env = "CAREPASS_ADMIN_TOKEN")]
        admin_token: Option<String>,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("carepass-sandbox: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Openapi => {
            println!("{}", carepass_sandbox::openapi_json());
            Ok(())
        }
        Command::Serve { listen, data, seed, admin_token } => {
            let config = SandboxConfig { data_dir: data, demo_seed: matches!(seed, Some(Seed::Demo)), admin_token };
            let running = carepass_sandbox::start(listen, config).await.map_err(|e| e.to_string())?;
            println!("listening on {}", running.url());
            use std::io::Write;
            let _ = std::io::stdout().flush();
            shutdown_signal().await;
            running.stop().await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
