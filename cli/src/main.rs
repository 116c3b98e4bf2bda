//! `carepass`: the terminal shell on the CarePass core, and the demo journey a newcomer runs
//! first. Each command is a thin wrapper over `carepass_core::CarePass`; the demo starts an
//! embedded sandbox platform on loopback.

mod bills;
mod demo;
mod family;
mod keys;
mod pay;
mod pharmacy;
mod text;
mod voucher;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use carepass_core::io::net::ClientOptions;
use carepass_core::{CarePass, Config, CoreError, Profile, SystemClock};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "carepass",
    version,
    about = "CarePass in the terminal: the patient's insurance app on the CarePass core"
)]
struct Cli {
    /// Platform URL (https, or http to loopback for the sandbox).
    #[arg(long, global = true, env = "CAREPASS_SERVER")]
    server: Option<String>,
    /// Directory of this terminal "phone"'s encrypted store.
    #[arg(long, global = true, env = "CAREPASS_DATA")]
    data: Option<PathBuf>,
    /// Act for a relative you hold a family link to (their person id, e.g. P1002): their
    /// code, bills, payments, prescriptions and orders (see `carepass family list`).
    #[arg(long = "as", global = true, value_name = "PERSON")]
    as_person: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in: enrol this device for the phone's owner, or sign in again if already enrolled.
    Login {
        /// The phone number the insurance account is registered to (11 digits, e.g. 13800000001).
        #[arg(long)]
        phone: String,
        /// The SMS verification code (123456 in the sandbox).
        #[arg(long)]
        code: String,
    },
    /// Show who is signed in (asks the platform; --offline reads the store only).
    Whoami {
        /// Read the profile stored on this phone; no network.
        #[arg(long)]
        offline: bool,
    },
    /// Sign out and wipe this profile's local data.
    Logout,
    /// Show the rotating e-voucher code (live, redrawn at each rotation, until Ctrl-C).
    Code {
        /// registration, outpatient_settlement, pharmacy_purchase or prescription_download.
        #[arg(long)]
        purpose: String,
        /// Print the payload and the QR version once instead of drawing live.
        #[arg(long)]
        once: bool,
        /// The offline profile (carries the device certificate).
        #[arg(long)]
        offline: bool,
        /// With --once: also write the QR code as a PNG.
        #[arg(long, requires = "once")]
        png: Option<PathBuf>,
    },
    /// Sync and list the pending-bill inbox, or watch it live.
    Bills {
        /// One JSON array (each bill with id, state, total_fen, …).
        #[arg(long)]
        json: bool,
        /// Keep the live stream open and print each bill as it arrives, until Ctrl-C.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
        /// List the bills on this device without asking the platform.
        #[arg(long, conflicts_with = "watch")]
        offline: bool,
        /// Print this process's peak resident memory (kB) last (Linux; for measurements).
        #[arg(long, hide = true)]
        report_memory: bool,
    },
    /// Push hand-over, as the app's push service would do it: register a token, or hand a
    /// received push (its data map as JSON) to the core.
    Push {
        #[command(subcommand)]
        command: PushCommand,
    },
    /// Rank nearby pharmacies for a prescription by what you pay after insurance.
    Pharmacies {
        /// Where you are: latitude in decimal degrees (WGS-84), e.g. 30.5952.
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// Where you are: longitude in decimal degrees (WGS-84), e.g. 114.2999.
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// Prescription id (default: your newest prescription).
        #[arg(long)]
        rx: Option<String>,
        /// Home delivery to --lat/--lon (only pharmacies that deliver there; fee included).
        #[arg(long)]
        delivery: bool,
        /// Maximum distance in km (default 5).
        #[arg(long)]
        max_km: Option<f64>,
        /// Only pharmacies open now.
        #[arg(long)]
        open_now: bool,
        /// One JSON array in rank order.
        #[arg(long)]
        json: bool,
    },
    /// Order a prescription from a pharmacy for pickup or delivery.
    Order {
        /// The pharmacy's id (see `carepass pharmacies`).
        #[arg(long)]
        pharmacy: String,
        /// Prescription id (default: your newest prescription).
        #[arg(long)]
        rx: Option<String>,
        /// Collect it at the pharmacy (one of --pickup or --delivery).
        #[arg(
            long,
            conflicts_with_all = ["delivery", "address", "phone", "lat", "lon"],
            required_unless_present = "delivery"
        )]
        pickup: bool,
        /// Have it delivered to --address (needs --address and --phone).
        #[arg(long, requires_all = ["address", "phone"])]
        delivery: bool,
        /// Delivery address.
        #[arg(long)]
        address: Option<String>,
        /// Contact phone for the courier.
        #[arg(long)]
        phone: Option<String>,
        /// Delivery location, latitude in decimal degrees (default: where you last ranked
        /// pharmacies).
        #[arg(long, allow_hyphen_values = true, requires = "lon")]
        lat: Option<f64>,
        /// Delivery location, longitude in decimal degrees.
        #[arg(long, allow_hyphen_values = true, requires = "lat")]
        lon: Option<f64>,
    },
    /// Your prescriptions, newest first.
    Prescriptions {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Your pharmacy orders, newest first.
    Orders {
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Pay a bill: shows what the pooled fund, the personal account and you pay, then pays
    /// it in one confirmation (exactly once, even if the connection drops).
    Pay {
        /// The bill's id (see `carepass bills`).
        bill: String,
        /// How you pay your cash part: card:<number> (a bare number works too) or credit.
        /// Needed only when something is left for cash.
        #[arg(long)]
        channel: Option<String>,
        /// Do not use the personal account (pay the patient's share in cash).
        #[arg(long)]
        no_account: bool,
        /// With --as: your own personal account pays what the relative's leaves (家庭共济,
        /// where the family rules allow it).
        #[arg(long)]
        mutual_aid: bool,
        /// Pay without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// List your payments; any payment whose answer was lost is checked again first.
    Payments {
        /// Only what is on this phone (no network).
        #[arg(long)]
        offline: bool,
    },
    /// Give the bank's code for a payment that needs it.
    Confirm {
        /// The payment's id (see `carepass payments`).
        payment: String,
        /// The code the bank sent you (1 to 16 digits).
        #[arg(long)]
        code: String,
    },
    /// Pay the cash still due on a payment (the insurance paid; your card was declined).
    CashDue {
        /// The payment's id (see `carepass payments`).
        payment: String,
        /// The card that pays what is due: card:<number>.
        #[arg(long)]
        channel: String,
    },
    /// Your e-receipts, each verified (signature, check code, amounts).
    Receipts {
        /// Also write each receipt as an SVG card into this directory.
        #[arg(long, value_name = "DIR")]
        svg: Option<PathBuf>,
    },
    /// Credit pay-later (信用就医): show your credit line, sign the agreement, repay.
    Credit {
        #[command(subcommand)]
        command: Option<CreditCommand>,
        /// Print the credit line as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Act as a cashier (一码付): charge items to the patient whose code was scanned; their
    /// phone gets the bill and pays it in one confirmation.
    Counter {
        /// The scanned payload (CP1:…).
        payload: String,
        /// pharmacy_purchase or outpatient_settlement.
        #[arg(long, default_value = "pharmacy_purchase")]
        purpose: String,
        /// The pharmacy or hospital charging.
        #[arg(long, default_value = "CarePass demo pharmacy")]
        merchant: String,
        /// An item: CODE:NAME:CATEGORY:QUANTITY:PRICE (category A, B or C; unit price in
        /// yuan), e.g. 860101:布洛芬缓释胶囊:A:2:12.50. Repeat for more items.
        #[arg(long = "item", value_name = "ITEM", required = true)]
        items: Vec<String>,
        /// The cashier terminal's credential (the sandbox's admin token).
        #[arg(long, env = "CAREPASS_SCANNER_TOKEN")]
        scanner_token: String,
    },
    /// Act as a scanner terminal: verify a scanned code with the platform.
    Scan {
        /// The scanned payload (CP1:…).
        payload: String,
        /// What the code is scanned for: registration, outpatient_settlement,
        /// pharmacy_purchase or prescription_download.
        #[arg(long)]
        purpose: String,
        /// The scanner terminal's credential (the sandbox's admin token).
        #[arg(long, env = "CAREPASS_SCANNER_TOKEN")]
        scanner_token: String,
    },
    /// Family proxies (亲情账户): act for a relative, answer their requests, read who acted
    /// for you.
    Family {
        #[command(subcommand)]
        command: FamilyCommand,
    },
    /// Run the whole journey against an embedded sandbox and explain each step. It uses a
    /// temporary phone and never touches your data, config or CAREPASS_* settings.
    Demo {
        /// Run against this platform instead of an embedded sandbox (only this flag counts:
        /// the global --server and CAREPASS_SERVER are ignored here).
        #[arg(long = "platform", value_name = "URL")]
        platform: Option<String>,
        /// The scanner credential for that platform (the sandbox's admin token).
        #[arg(long, requires = "platform", value_name = "TOKEN")]
        scanner_token: Option<String>,
    },
}

#[derive(Subcommand)]
enum FamilyCommand {
    /// Ask to act for a relative. A minor child in your household is linked at once; anyone
    /// else consents on their own phone (or by a code, or at a service counter).
    Link {
        /// The relative's phone number (11 digits).
        #[arg(long)]
        phone: String,
        /// What they are to you: parent, child, spouse, sibling, grandparent or grandchild.
        #[arg(long)]
        relationship: String,
        /// What you may do, comma-separated (default all): show_code, view_bills, pay_bills,
        /// order_medicine, view_prescriptions, manage_family.
        #[arg(long)]
        scopes: Option<String>,
        /// Most you may pay for them at once, in yuan.
        #[arg(long, value_name = "YUAN")]
        per_payment: Option<String>,
        /// Most you may pay for them in a month, in yuan.
        #[arg(long, value_name = "YUAN")]
        per_month: Option<String>,
    },
    /// Relatives waiting for your consent to act for you.
    Requests,
    /// Consent, on your own phone, to a relative acting for you.
    Approve {
        /// The link's id (see `carepass family requests`).
        link: String,
    },
    /// For a relative without a smartphone: send a consent code to their phone.
    SendCode {
        /// The link's id (lnk_…, see `carepass family list`).
        link: String,
    },
    /// Enter the code your relative read out to you.
    EnterCode {
        /// The link's id (lnk_…, see `carepass family list`).
        link: String,
        /// The 6-digit code your relative read out (123456 in the sandbox).
        #[arg(long)]
        code: String,
    },
    /// End a link, at once (either side).
    Revoke {
        /// The link's id (lnk_…, see `carepass family list`).
        link: String,
    },
    /// Renew a relative's link to you for another period (only you can).
    Renew {
        /// The link's id (lnk_…, see `carepass family list`).
        link: String,
    },
    /// As a teen: let your parent see what you choose (view_bills, view_prescriptions).
    Assent {
        /// The link's id (lnk_…, see `carepass family list`).
        link: String,
        /// Comma-separated scopes; empty withdraws.
        #[arg(long)]
        scopes: String,
    },
    /// Your links, both ways.
    List {
        /// One JSON object: acting_for and acted_for_by.
        #[arg(long)]
        json: bool,
    },
    /// Everything done on your behalf and every change to your links, verified as a chain.
    Audit {
        /// One JSON array of the records.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CreditCommand {
    /// Sign the credit agreement (each use is due in 30 days) with this device's key.
    Sign {
        /// The credit limit in yuan (up to 5000).
        #[arg(long)]
        limit: String,
        /// Sign without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Repay an amount (yuan) from a card, oldest use first, exactly once.
    Repay {
        /// How much, in yuan (e.g. 20.00).
        amount: String,
        /// The card that repays: card:<number>.
        #[arg(long)]
        channel: String,
    },
}

#[derive(Subcommand)]
enum PushCommand {
    /// Register this device's push token so the platform relays doorbells to it.
    Register {
        /// fcm, apns, huawei or xiaomi.
        #[arg(long)]
        service: String,
        /// The token the push service gave the app.
        #[arg(long)]
        token: String,
    },
    /// Hand a received push to the core: verifies the doorbell and pulls the bill.
    Handle {
        /// A file holding the push's data map as a JSON object of strings ("-" for stdin).
        #[arg(long, default_value = "-")]
        file: PathBuf,
        /// Act as an app extension (the iOS Notification Service Extension): never open the
        /// database, leave the pull for the app.
        #[arg(long)]
        extension: bool,
        /// Print this process's peak resident memory (kB) last (Linux; for measurements).
        #[arg(long, hide = true)]
        report_memory: bool,
    },
}

/// A closed output pipe (`carepass bills | head -1`) ends the process quietly with the
/// status a shell gives a SIGPIPE death (141), instead of a panic on the next print. SIGPIPE
/// itself stays ignored (as Rust sets it): a signal would also kill the process on a write to
/// a network peer that went away, where an error is wanted.
fn quiet_pipes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to std") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default(info)
    }));
}

fn main() -> ExitCode {
    quiet_pipes();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("carepass: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("carepass: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Demo { platform, scanner_token } => return demo::run(platform.clone(), scanner_token.clone()).await,
        Command::Scan { payload, purpose, scanner_token } => {
            let server = cli.server.as_deref().ok_or("no platform URL: pass --server URL or set CAREPASS_SERVER")?;
            let outcome = voucher::scan(server, scanner_token, payload, voucher::parse_purpose(purpose)?).await?;
            println!("{}", voucher::describe_outcome(&outcome));
            return if outcome.accepted { Ok(()) } else { Err("the code was rejected".into()) };
        }
        Command::Counter { payload, purpose, merchant, items, scanner_token } => {
            let server = cli.server.as_deref().ok_or("no platform URL: pass --server URL or set CAREPASS_SERVER")?;
            let charge = pay::counter(server, scanner_token, payload, purpose, merchant, items).await?;
            return match (charge.accepted, charge.bill) {
                (true, Some(bill)) => {
                    let holder = charge.holder.map(|h| h.name).unwrap_or_default();
                    println!(
                        "{}",
                        text::clean(&format!(
                            "charged: bill {} for {holder}, total {} — it is on their phone to pay",
                            bill.bill_id, bill.total_fen
                        ))
                    );
                    Ok(())
                }
                _ => Err(text::clean(&format!(
                    "the code was rejected: {}",
                    charge.reason.as_deref().unwrap_or("unknown")
                ))
                .into_owned()),
            };
        }
        _ => {}
    }
    if let Command::Push { command: PushCommand::Handle { file, extension, report_memory } } = &cli.command {
        let app = open_with(cli.server.clone(), cli.data.clone(), *extension)?;
        bills::handle_push(&app, file).await?;
        if *report_memory {
            report_peak_memory();
        }
        return Ok(());
    }
    let app = open(cli.server, cli.data)?;
    let subject = cli.as_person.as_deref();
    if subject.is_some() && !offline_only(&cli.command) {
        // Acting for a relative: the links as the platform has them now (a consent given or
        // withdrawn on the relative's phone since).
        if let Err(e) = app.refresh_family().await {
            eprintln!("carepass: could not refresh the family links ({}); using those on this device", explain(e));
        }
    }
    match cli.command {
        Command::Login { phone, code } => {
            let profile = app.sign_in(&phone, &code).await.map_err(explain)?;
            println!("signed in as {}", describe(&profile));
        }
        Command::Whoami { offline } => {
            let profile = if offline {
                app.current_profile().map_err(explain)?
            } else {
                Some(app.refresh_profile().await.map_err(explain)?)
            };
            match profile {
                Some(p) => println!("{}", describe(&p)),
                None => return Err("no one is signed in".into()),
            }
        }
        Command::Logout => {
            let out = app.logout().await.map_err(explain)?;
            if out.revoked_at_platform {
                println!("signed out; this profile's local data is wiped");
            } else {
                println!(
                    "signed out on this device and its local data is wiped, but the platform did not confirm \
                     the session's end (unreachable?): it ends by itself when its tokens expire, or revoke this \
                     device from another one"
                );
            }
        }
        Command::Code { purpose, once, offline, png } => {
            let purpose = voucher::parse_purpose(&purpose)?;
            if once {
                voucher::once(&app, purpose, offline, png.as_deref(), subject).await?;
            } else {
                voucher::live(&app, purpose, offline, subject).await?;
            }
        }
        Command::Bills { json, watch, offline, report_memory } => {
            if watch {
                bills::watch(&app, subject).await?;
            } else {
                bills::list(&app, json, offline, subject).await?;
            }
            if report_memory {
                report_peak_memory();
            }
        }
        Command::Push { command: PushCommand::Register { service, token } } => {
            app.register_push_token(&service, &token).await.map_err(explain)?;
            println!("push token registered ({service})");
        }
        Command::Push { command: PushCommand::Handle { .. } } => unreachable!("handled above"),
        Command::Pharmacies { lat, lon, rx, delivery, max_km, open_now, json } => {
            pharmacy::rank(&app, pharmacy::RankArgs { lat, lon, rx, delivery, max_km, open_now, json }, subject)
                .await?;
        }
        Command::Order { pharmacy: id, rx, pickup: _, delivery, address, phone, lat, lon } => {
            pharmacy::order(
                &app,
                pharmacy::OrderArgs { pharmacy: id, rx, delivery, address, phone, lat, lon },
                subject,
            )
            .await?;
        }
        Command::Prescriptions { json } => pharmacy::prescriptions(&app, json, subject).await?,
        Command::Orders { json } => pharmacy::orders(&app, json, subject).await?,
        Command::Pay { bill, channel, no_account, mutual_aid, yes } => {
            pay::pay(&app, pay::PayArgs { bill, channel, no_account, mutual_aid, yes }, subject).await?;
        }
        Command::Payments { offline } => pay::list(&app, offline, subject).await?,
        Command::Confirm { payment, code } => pay::confirm(&app, &payment, &code, subject).await?,
        Command::CashDue { payment, channel } => pay::cash_due(&app, &payment, &channel, subject).await?,
        Command::Receipts { svg } => pay::receipts(&app, svg.as_deref(), subject).await?,
        Command::Family { command } => family::run(&app, family_action(command)).await?,
        Command::Credit { command: None, json } => pay::credit_show(&app, json).await?,
        Command::Credit { command: Some(CreditCommand::Sign { limit, yes }), .. } => {
            pay::credit_sign(&app, &limit, yes).await?
        }
        Command::Credit { command: Some(CreditCommand::Repay { amount, channel }), .. } => {
            pay::credit_repay(&app, &amount, &channel).await?
        }
        Command::Demo { .. } | Command::Scan { .. } | Command::Counter { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// Commands that were asked not to use the network.
fn offline_only(command: &Command) -> bool {
    matches!(command, Command::Bills { offline: true, .. } | Command::Payments { offline: true })
}

fn family_action(command: FamilyCommand) -> family::FamilyAction {
    use family::FamilyAction as A;
    match command {
        FamilyCommand::Link { phone, relationship, scopes, per_payment, per_month } => {
            A::Link { phone, relationship, scopes, per_payment, per_month }
        }
        FamilyCommand::Requests => A::Requests,
        FamilyCommand::Approve { link } => A::Approve(link),
        FamilyCommand::SendCode { link } => A::SendCode(link),
        FamilyCommand::EnterCode { link, code } => A::EnterCode { link, code },
        FamilyCommand::Revoke { link } => A::Revoke(link),
        FamilyCommand::Renew { link } => A::Renew(link),
        FamilyCommand::Assent { link, scopes } => A::Assent { link, scopes },
        FamilyCommand::List { json } => A::List { json },
        FamilyCommand::Audit { json } => A::Audit { json },
    }
}

/// Opens the core with the terminal's secret store (a 0600 file beside the data).
pub(crate) fn open(server: Option<String>, data: Option<PathBuf>) -> Result<Arc<CarePass>, String> {
    open_with(server, data, false)
}

fn open_with(server: Option<String>, data: Option<PathBuf>, extension: bool) -> Result<Arc<CarePass>, String> {
    let server = server.ok_or("no platform URL: pass --server URL or set CAREPASS_SERVER")?;
    let data = match data {
        Some(d) => d,
        None => default_data_dir()?,
    };
    open_config(&server, data, extension)
}

/// Opens a core whose data key lives under `config` (the demo keeps both in its scratch
/// space, so it never touches the user's).
pub(crate) fn open_at(server: &str, data: PathBuf, config: &std::path::Path) -> Result<Arc<CarePass>, String> {
    open_in(server, data, config, false)
}

fn open_config(server: &str, data: PathBuf, extension: bool) -> Result<Arc<CarePass>, String> {
    open_in(server, data, &keys::config_dir()?, extension)
}

fn open_in(
    server: &str,
    data: PathBuf,
    config_dir: &std::path::Path,
    extension: bool,
) -> Result<Arc<CarePass>, String> {
    let secrets = keys::secret_store(&data, config_dir)?;
    let config = Config { client: ClientOptions::default(), extension, ..Config::new(server, data, "terminal") };
    CarePass::open(config, &secrets, None, Arc::new(SystemClock)).map_err(explain)
}

/// `peak-rss-kb N`: the process's high-water resident memory (Linux `VmHWM`).
fn report_peak_memory() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
        Some(v) => println!("peak-rss-kb {}", v.trim().trim_end_matches(" kB").trim()),
        None => println!("peak-rss-kb unknown"),
    }
}

fn default_data_dir() -> Result<PathBuf, String> {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("carepass"));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".local/share/carepass"))
        .ok_or_else(|| "no data directory: pass --data DIR or set CAREPASS_DATA".into())
}

pub(crate) fn describe(p: &Profile) -> String {
    let scheme = match p.insurance_type {
        carepass_core::wire::InsuranceType::EmployeeActive => "employee insurance (in work)",
        carepass_core::wire::InsuranceType::EmployeeRetired => "employee insurance (retired)",
        carepass_core::wire::InsuranceType::Resident => "resident insurance",
    };
    crate::text::clean(&format!(
        "{} ({}), {} years, {}, pooling region {} {}, device {}",
        p.name, p.phone_masked, p.age, scheme, p.pooling_region, p.pooling_region_name, p.device_id
    ))
    .into_owned()
}

/// A core error as one line for a person (platform messages cleaned before printing).
pub(crate) fn explain(e: CoreError) -> String {
    text::clean(&e.to_string()).into_owned()
}
