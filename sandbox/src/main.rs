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
        /// How writes are made durable before they are answered: group (group commit, the
        /// default), per-write (one flush per write), relaxed (no wait; loses confirmed writes
        /// on a crash — for measuring what durability costs only).
        #[arg(long, value_enum, default_value = "group")]
        durability: carepass_sandbox::durable::DurabilityMode,
        /// The payment channel's URL (a `carepass-sandbox channel`); without it an embedded
        /// channel runs beside the platform, its database in DATA/channel.
        #[arg(long, value_name = "URL")]
        channel: Option<String>,
        /// How long the platform waits for the channel's answer (ms) before the outcome is
        /// unknown and it asks again later with the same key.
        #[arg(long, default_value_t = 1000, value_name = "MS")]
        channel_timeout_ms: u64,
        /// How long the embedded channel keeps the "times out" test cards waiting (ms).
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        channel_hang_ms: u64,
    },
    /// Serve a payment channel (the bank card acquirer stand-in) alone, until stopped.
    Channel {
        #[arg(long, default_value = "127.0.0.1:8788")]
        listen: SocketAddr,
        /// Directory of the channel's database.
        #[arg(long)]
        data: PathBuf,
        /// How long the "times out" test cards keep the caller waiting (ms).
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        hang_ms: u64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// The clinic role, against a running sandbox.
    Clinic {
        #[command(subcommand)]
        command: ClinicCommand,
    },
}

#[derive(Subcommand)]
enum ClinicCommand {
    /// Issue a bill to a patient; prints the new bill's id.
    IssueBill {
        #[arg(long, env = "CAREPASS_SERVER")]
        server: String,
        #[arg(long, env = "CAREPASS_ADMIN_TOKEN")]
        admin_token: String,
        /// The patient's phone.
        #[arg(long)]
        phone: String,
        /// A JSON array of items ({item_code, name, category: A|B|C, quantity, unit_price_fen});
        /// without it, a realistic demo prescription.
        #[arg(long)]
        items: Option<PathBuf>,
    },
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
        Command::Clinic { command: ClinicCommand::IssueBill { server, admin_token, phone, items } } => {
            let items = match items {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not a JSON array of items: {e}", path.display()))?
                }
                None => carepass_sandbox::seed::demo_bill_items(),
            };
            let request = carepass_sandbox::seed::demo_bill_request(&phone, items);
            let client = carepass_core::io::net::PlatformClient::new(
                &server,
                std::sync::Arc::new(carepass_core::SystemClock),
                &Default::default(),
            )
            .map_err(|e| e.to_string())?;
            let bill: carepass_core::wire::Bill =
                client.post("admin/v1/bills", &request, Some(&admin_token)).await.map_err(|e| e.to_string())?;
            println!("{}", bill.bill_id);
            Ok(())
        }
        Command::Channel { listen, data, hang_ms } => {
            let running =
                carepass_sandbox::channel::start_channel(listen, &data, std::time::Duration::from_millis(hang_ms))
                    .await
                    .map_err(|e| e.to_string())?;
            println!("listening on {}", running.url());
            use std::io::Write;
            let _ = std::io::stdout().flush();
            shutdown_signal().await;
            running.stop().await;
            Ok(())
        }
        Command::Serve {
            listen,
            data,
            seed,
            admin_token,
            durability,
            channel,
            channel_timeout_ms,
            channel_hang_ms,
        } => {
            let channel = carepass_sandbox::ChannelSetup {
                url: channel,
                timeout: std::time::Duration::from_millis(channel_timeout_ms),
                hang: std::time::Duration::from_millis(channel_hang_ms),
                ..Default::default()
            };
            let config = SandboxConfig {
                data_dir: data,
                demo_seed: matches!(seed, Some(Seed::Demo)),
                admin_token,
                durability,
                channel,
            };
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
