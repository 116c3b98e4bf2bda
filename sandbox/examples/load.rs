//! Load generator for the platform's write paths (`scripts/load.sh`), all in one run:
//!
//! - accepted scans per second: `POST /v1/scans` with fresh valid online-profile codes, as
//!   the scanner terminal (admin token);
//! - bills issued per second: `POST /admin/v1/bills` with the demo bill
//!   (`seed::demo_bill_request`), spread over the ten demo phones;
//!
//! each against a fresh sandbox per durability mode (`group`, the default: durable by group
//! commit; `relaxed`: nothing waits for the disk, the old behaviour; `per-write`: one flush
//! per write), and
//!
//! - the baseline: verification alone, the core's `Verifier` on codes made the same way
//!   (same device-key kind, profile and purpose), in-process, no HTTP, no sled: an in-memory
//!   directory and an in-memory replay set.
//!
//! Concurrency is the same on both sides: `LOAD_CONCURRENCY` (default 16) client tasks, each
//! sending one request at a time over its own keep-alive connection (one `reqwest::Client`,
//! its pool holding that many), and for the baseline the same number of OS threads calling
//! one shared `Verifier`. The server runs on its own tokio runtime and the clients on
//! another, in this process (each `LOAD_THREADS` workers, default: the machine's cores).
//!
//! Each phase: a warm-up (`LOAD_WARMUP_MS`, default 500) whose rate sizes the pool of codes
//! made before the measured part, then `LOAD_SECS` (default 3) measured; a response counts
//! when it completed inside the window. Codes are made before a window starts (signing is
//! not in the measured load); if the pool runs out, codes are made inline and the count is
//! printed (`inline_codes`). The baseline runs before and after the HTTP phases; the ratio
//! `durable scans/s ÷ verification-alone/s` uses their mean.
//!
//! Besides rates, each phase prints this process's CPU time per success (`cpu_us_per_ok`)
//! and the same without the client runtime's threads (`server_cpu_us_per_ok`): on a shared
//! machine those move far less than rates do.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use carepass_core::domain::crypto::{sign_fixed, DeviceKeyStore, SoftwareDeviceKey};
use carepass_core::domain::voucher::format::{self, device_id_to_bytes, CodeBody};
use carepass_core::domain::voucher::rotator::{make_code, CodeSource};
use carepass_core::domain::voucher::verify::{KnownDevice, ReplayCache, Verifier};
use carepass_core::domain::voucher::Purpose;
use carepass_core::wire::{ScanOutcome, ScanRequest};
use carepass_sandbox::durable::DurabilityMode;
use carepass_sandbox::{seed, ChannelSetup, Platform, SandboxConfig};

const SETTLE: Purpose = Purpose::OutpatientSettlement;
const ADMIN_TOKEN: &str = "load-generator-admin-token";
const SCAN_PHONE: &str = "13800000001";
const PERIOD_S: u8 = 30;

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Settings {
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    threads: usize,
}

// ---- codes ------------------------------------------------------------------------------

/// Makes online-profile codes for one enrolled device: exactly `make_code`'s text (checked
/// at start), without the QR matrix, which a scanner never sees.
struct CodeMaker {
    key: SoftwareDeviceKey,
    device_id: [u8; 8],
    nonce: AtomicU32,
}

impl CodeMaker {
    fn new(key: SoftwareDeviceKey, device_id: [u8; 8]) -> CodeMaker {
        CodeMaker { key, device_id, nonce: AtomicU32::new(1) }
    }

    fn text(&self, now_ms: i64) -> String {
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let body = CodeBody {
            link: None,
            purpose: SETTLE,
            period_s: PERIOD_S,
            step: (now_ms.div_euclid(PERIOD_S as i64 * 1000)) as u32,
            nonce,
            device_id: self.device_id,
            certificate: None,
        };
        let signature = sign_fixed(&self.key, &body.message()).expect("signing");
        format::to_text(&format::assemble(&body, &signature))
    }

    /// The same code as the core's `make_code` would make (but for the signature, which is
    /// randomised): same body, same length.
    fn check_against_make_code(&self, now_ms: i64) {
        let source = CodeSource { keys: &self.key, device_id: self.device_id, certificate: None, period_s: PERIOD_S };
        let n = self.nonce.load(Ordering::Relaxed);
        let reference = make_code(&source, SETTLE, false, None, now_ms, n.to_be_bytes()).expect("make_code");
        let ours = self.text(now_ms);
        let (a, b) = (format::parse_text(&reference.text).unwrap(), format::parse_text(&ours).unwrap());
        assert_eq!(a.body, b.body, "the load generator's codes are make_code's");
        assert_eq!(reference.text.len(), ours.len());
    }

    /// `n` codes, made on every core; `wrap` turns a code's text into what is sent.
    fn batch(&self, n: usize, now_ms: i64, threads: usize, wrap: &(dyn Fn(String) -> String + Sync)) -> Vec<String> {
        let per = n.div_ceil(threads.max(1));
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads.max(1))
                .map(|i| {
                    let count = per.min(n.saturating_sub(i * per));
                    s.spawn(move || (0..count).map(|_| wrap(self.text(now_ms))).collect::<Vec<_>>())
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        })
    }
}

fn scan_body(text: String) -> String {
    serde_json::to_string(&ScanRequest { payload: text, purpose: SETTLE }).unwrap()
}

/// Items handed out once each, across tasks.
struct Pool {
    items: Vec<String>,
    next: AtomicUsize,
}

impl Pool {
    fn new(items: Vec<String>) -> Arc<Pool> {
        Arc::new(Pool { items, next: AtomicUsize::new(0) })
    }

    fn take(&self) -> Option<&str> {
        self.items.get(self.next.fetch_add(1, Ordering::Relaxed)).map(|s| s.as_str())
    }
}

/// The baseline's replay set: first use wins, in memory, in 64 shards so that 16 threads on
/// a few cores rarely queue behind a holder the scheduler preempted. (The core's
/// `MemoryReplayCache` sweeps its whole map on every call once it holds 4096 entries, which,
/// with every code still unexpired, makes each call O(n): not what verification costs.)
struct MemorySet(Vec<Mutex<HashSet<[u8; 16]>>>);

impl Default for MemorySet {
    fn default() -> Self {
        MemorySet((0..64).map(|_| Mutex::new(HashSet::new())).collect())
    }
}

impl ReplayCache for MemorySet {
    fn first_use(&self, key: &[u8; 16], _keep_until_ms: i64, _now_ms: i64) -> Result<bool, String> {
        // The key ends with the nonce, a counter here: its last byte spreads the shards.
        let shard = &self.0[key[15] as usize % self.0.len()];
        let mut seen = shard.lock().map_err(|_| "poisoned".to_string())?;
        Ok(seen.insert(*key))
    }
}

/// This process's CPU time (user + system, all threads), in µs; `/proc/self/stat` ticks,
/// assumed 100 a second. Zero where there is no procfs.
fn cpu_us() -> u64 {
    stat_cpu_us(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// User + system time in a `stat` line, in µs.
fn stat_cpu_us(stat: &str) -> u64 {
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // After the command name come the fields from the state (3rd, 1-based) on: utime is
    // the 14th, stime the 15th.
    (ticks(11) + ticks(12)) * 10_000
}

/// CPU time of this process's live threads named `name` (the client runtime's), in µs.
fn threads_cpu_us(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|stat| stat.split_once('(').and_then(|(_, r)| r.rsplit_once(')')).is_some_and(|(comm, _)| comm == name))
        .map(|stat| stat_cpu_us(&stat))
        .sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join("/")
}

// ---- tallies ----------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    ok: u64,
    rejected: u64,
    limited: u64,
    other_status: u64,
    errors: u64,
    inline_codes: u64,
    latencies_us: Vec<u32>,
    reasons: BTreeMap<String, u64>,
    first_problem: Option<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.rejected += o.rejected;
        self.limited += o.limited;
        self.other_status += o.other_status;
        self.errors += o.errors;
        self.inline_codes += o.inline_codes;
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.reasons {
            *self.reasons.entry(k).or_default() += v;
        }
        if self.first_problem.is_none() {
            self.first_problem = o.first_problem;
        }
    }

    fn problem(&mut self, what: String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(what);
        }
    }

    fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

struct Measured {
    per_s: f64,
    tally: Tally,
    /// This process's CPU time in the window (server and client threads), per success.
    cpu_us_per_ok: f64,
    /// The same without the client runtime's threads: what the platform (or, for the
    /// baseline, the verifier) spent.
    server_cpu_us_per_ok: f64,
}

/// CPU times at a window's start: the process's and the client threads'.
struct CpuMark(u64, u64);

impl CpuMark {
    fn now() -> CpuMark {
        CpuMark(cpu_us(), threads_cpu_us(CLIENT_THREADS))
    }
}

const CLIENT_THREADS: &str = "client";

fn measured(tally: Tally, window: Duration, before: CpuMark) -> Measured {
    let after = CpuMark::now();
    let cpu = after.0.saturating_sub(before.0) as f64;
    let client = after.1.saturating_sub(before.1) as f64;
    let per = |v: f64| if tally.ok == 0 { 0.0 } else { v / tally.ok as f64 };
    Measured {
        per_s: tally.ok as f64 / window.as_secs_f64(),
        cpu_us_per_ok: per(cpu),
        server_cpu_us_per_ok: per((cpu - client).max(0.0)),
        tally,
    }
}

fn report(phase: &str, mode: &str, m: &mut Measured) {
    let (p50, p99) = (m.tally.percentile_ms(0.5), m.tally.percentile_ms(0.99));
    let t = &m.tally;
    let reasons: Vec<String> = t.reasons.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!(
        "load detail phase={phase} mode={mode} per_s={:.0} ok={} rejected={} http_429={} other_status={} errors={} \
         inline_codes={} p50_ms={p50:.2} p99_ms={p99:.2} cpu_us_per_ok={:.0} server_cpu_us_per_ok={:.0} loadavg={}{}{}",
        m.per_s,
        t.ok,
        t.rejected,
        t.limited,
        t.other_status,
        t.errors,
        t.inline_codes,
        m.cpu_us_per_ok,
        m.server_cpu_us_per_ok,
        loadavg(),
        if reasons.is_empty() { String::new() } else { format!(" reasons={}", reasons.join(",")) },
        t.first_problem.as_ref().map(|p| format!(" first_problem={p:?}")).unwrap_or_default(),
    );
}

// ---- HTTP load --------------------------------------------------------------------------

#[derive(Clone)]
enum Work {
    Scans { url: String, pool: Arc<Pool>, maker: Arc<CodeMaker>, platform: Arc<Platform> },
    Bills { url: String, bodies: Arc<Vec<String>> },
}

async fn http_worker(client: reqwest::Client, work: Work, index: usize, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let mut n = index;
    while Instant::now() < deadline {
        let (url, body) = match &work {
            Work::Scans { url, pool, maker, platform } => match pool.take() {
                Some(b) => (url, b.to_string()),
                None => {
                    t.inline_codes += 1;
                    (url, scan_body(maker.text(platform.now_ms())))
                }
            },
            Work::Bills { url, bodies } => {
                n += 1;
                (url, bodies[n % bodies.len()].clone())
            }
        };
        let started = Instant::now();
        let sent = client
            .post(url.as_str())
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(r) => {
                let status = r.status();
                r.bytes().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        let done = Instant::now();
        if done > deadline {
            break; // completed outside the window: not counted
        }
        t.latencies_us.push((done - started).as_micros().min(u32::MAX as u128) as u32);
        match answer {
            Err(e) => {
                t.errors += 1;
                t.problem(format!("transport: {e}"));
            }
            Ok((status, bytes)) if status == 200 => match &work {
                Work::Scans { .. } => match serde_json::from_slice::<ScanOutcome>(&bytes) {
                    Ok(o) if o.accepted => t.ok += 1,
                    Ok(o) => {
                        t.rejected += 1;
                        *t.reasons.entry(o.reason.unwrap_or_default()).or_default() += 1;
                    }
                    Err(e) => {
                        t.errors += 1;
                        t.problem(format!("scan answer: {e}"));
                    }
                },
                Work::Bills { .. } => t.ok += 1,
            },
            Ok((status, bytes)) => {
                if status == 429 {
                    t.limited += 1;
                } else {
                    t.other_status += 1;
                }
                t.problem(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
            }
        }
    }
    t
}

fn http_window(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    work: &Work,
    s: &Settings,
    window: Duration,
) -> Measured {
    let cpu_before = CpuMark::now();
    rt.block_on(async {
        let started = Instant::now();
        let deadline = started + window;
        let tasks: Vec<_> =
            (0..s.concurrency).map(|i| tokio::spawn(http_worker(client.clone(), work.clone(), i, deadline))).collect();
        let mut tally = Tally::default();
        for task in tasks {
            tally.merge(task.await.expect("worker"));
        }
        measured(tally, window, cpu_before)
    })
}

/// Warm-up, then (for scans) a pool sized on the warm-up's rate, then the measured window.
fn http_phase(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    mut work: Work,
    s: &Settings,
    name: &str,
    mode: &str,
) -> Measured {
    if let Work::Scans { pool, maker, platform, .. } = &mut work {
        let guess = (20_000.0 * s.warmup.as_secs_f64()) as usize + 1_000;
        *pool = Pool::new(maker.batch(guess, platform.now_ms(), s.threads, &scan_body));
    }
    let warm = http_window(rt, client, &work, s, s.warmup);
    if warm.tally.ok == 0 {
        let mut warm = warm;
        report(&format!("{name}_warmup"), mode, &mut warm);
        panic!("nothing succeeded in the warm-up of {name} ({mode})");
    }
    if let Work::Scans { pool, maker, platform, .. } = &mut work {
        let need = (warm.per_s * s.window.as_secs_f64() * 2.0) as usize + 2_000;
        *pool = Pool::new(maker.batch(need, platform.now_ms(), s.threads, &scan_body));
    }
    let mut m = http_window(rt, client, &work, s, s.window);
    report(name, mode, &mut m);
    m
}

struct ModeFigures {
    scans: f64,
    bills: f64,
    scans_cpu_us: f64,
    bills_cpu_us: f64,
    scans_server_cpu_us: f64,
    bills_server_cpu_us: f64,
}

fn run_mode(
    server: &tokio::runtime::Runtime,
    clients: &tokio::runtime::Runtime,
    mode: DurabilityMode,
    s: &Settings,
) -> ModeFigures {
    let name = match mode {
        DurabilityMode::Group => "group",
        DurabilityMode::PerWrite => "per-write",
        DurabilityMode::Relaxed => "relaxed",
    };
    let base = std::env::var_os("LOAD_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new().prefix("carepass-load-").tempdir_in(base).expect("temp dir");
    let config = SandboxConfig {
        data_dir: dir.path().to_path_buf(),
        demo_seed: true,
        admin_token: Some(ADMIN_TOKEN.into()),
        durability: mode,
        channel: ChannelSetup::default(),
    };
    let sandbox = server
        .block_on(carepass_sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)), config))
        .expect("sandbox starts");
    assert_eq!(sandbox.platform.durability(), mode);
    let platform = sandbox.platform.clone();

    // A device enrolled for the scanning phone, directly on the platform.
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    let public_key = B64.encode(key.public_key().unwrap());
    let grant = platform
        .enrol(SCAN_PHONE, seed::SANDBOX_CODE, &public_key, "load generator", "terminal")
        .unwrap_or_else(|e| panic!("enrol: {}", e.message));
    let maker = Arc::new(CodeMaker::new(key, device_id_to_bytes(&grant.device_id).unwrap()));
    maker.check_against_make_code(platform.now_ms());

    let client = clients.block_on(async {
        reqwest::Client::builder()
            .pool_max_idle_per_host(s.concurrency)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client")
    });
    let url = sandbox.url();
    let scans = Work::Scans {
        url: format!("{url}/v1/scans"),
        pool: Pool::new(Vec::new()),
        maker: maker.clone(),
        platform: platform.clone(),
    };
    let scans = http_phase(clients, &client, scans, s, "scans", name);
    let bodies: Vec<String> = seed::demo_persons()
        .iter()
        .map(|p| serde_json::to_string(&seed::demo_bill_request(&p.phone, seed::demo_bill_items())).unwrap())
        .collect();
    let bills = Work::Bills { url: format!("{url}/admin/v1/bills"), bodies: Arc::new(bodies) };
    let bills = http_phase(clients, &client, bills, s, "bills", name);

    drop(client);
    server.block_on(sandbox.stop());
    drop(platform);
    ModeFigures {
        scans: scans.per_s,
        bills: bills.per_s,
        scans_cpu_us: scans.cpu_us_per_ok,
        bills_cpu_us: bills.cpu_us_per_ok,
        scans_server_cpu_us: scans.server_cpu_us_per_ok,
        bills_server_cpu_us: bills.server_cpu_us_per_ok,
    }
}

// ---- verification alone -----------------------------------------------------------------

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn verify_window(
    verifier: &Verifier,
    directory: &HashMap<[u8; 8], KnownDevice>,
    pool: &Pool,
    maker: &CodeMaker,
    s: &Settings,
    window: Duration,
) -> Measured {
    let cpu_before = CpuMark::now();
    let deadline = Instant::now() + window;
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..s.concurrency)
            .map(|_| {
                scope.spawn(move || {
                    let mut t = Tally::default();
                    let mut inline: String;
                    while Instant::now() < deadline {
                        let text = match pool.take() {
                            Some(text) => text,
                            None => {
                                t.inline_codes += 1;
                                inline = maker.text(now_ms());
                                &inline
                            }
                        };
                        let started = Instant::now();
                        let verdict = verifier.verify(text, SETTLE, now_ms(), directory);
                        let done = Instant::now();
                        if done > deadline {
                            break;
                        }
                        t.latencies_us.push((done - started).as_micros().min(u32::MAX as u128) as u32);
                        match verdict {
                            Ok(_) => t.ok += 1,
                            Err(r) => {
                                t.rejected += 1;
                                *t.reasons.entry(r.code().to_string()).or_default() += 1;
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        for h in handles {
            tally.merge(h.join().unwrap());
        }
    });
    measured(tally, window, cpu_before)
}

fn verify_only(s: &Settings, when: &str) -> (f64, f64) {
    let (key, _) = SoftwareDeviceKey::generate().unwrap();
    let public_key = key.public_key().unwrap();
    let device_id = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80];
    let maker = CodeMaker::new(key, device_id);
    maker.check_against_make_code(now_ms());
    let directory = HashMap::from([(device_id, KnownDevice { public_key, revoked: false })]);
    let verifier = Verifier::new(HashMap::new(), 5_000, Arc::new(MemorySet::default()));

    let guess = (60_000.0 * s.warmup.as_secs_f64()) as usize + 1_000;
    let pool = Pool::new(maker.batch(guess, now_ms(), s.threads, &|t| t));
    let warm = verify_window(&verifier, &directory, &pool, &maker, s, s.warmup);
    let need = (warm.per_s * s.window.as_secs_f64() * 1.5) as usize + 2_000;
    let pool = Pool::new(maker.batch(need, now_ms(), s.threads, &|t| t));
    let mut m = verify_window(&verifier, &directory, &pool, &maker, s, s.window);
    report(&format!("verify_only_{when}"), &format!("{}_threads", s.concurrency), &mut m);
    (m.per_s, m.cpu_us_per_ok)
}

// ---- main -------------------------------------------------------------------------------

fn runtime(name: &str, threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

fn main() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let s = Settings {
        concurrency: env_num("LOAD_CONCURRENCY", 16),
        warmup: Duration::from_millis(env_num("LOAD_WARMUP_MS", 500)),
        window: Duration::from_millis((env_num("LOAD_SECS", 3.0f64) * 1000.0) as u64),
        threads: env_num("LOAD_THREADS", cores),
    };
    let t0 = Instant::now();
    println!(
        "load settings concurrency={} warmup_ms={} window_s={} runtime_threads={} cores={cores} loadavg={}",
        s.concurrency,
        s.warmup.as_millis(),
        s.window.as_secs_f64(),
        s.threads,
        loadavg()
    );
    let server = runtime("server", s.threads);
    let clients = runtime(CLIENT_THREADS, s.threads);

    // The baseline before and after the HTTP phases (the machine may be shared: the ratio
    // uses their mean, and both are printed).
    let (verify_before, verify_cpu_before) = verify_only(&s, "before");
    if std::env::var_os("LOAD_VERIFY_ONLY").is_some() {
        return;
    }
    let group = run_mode(&server, &clients, DurabilityMode::Group, &s);
    let relaxed = run_mode(&server, &clients, DurabilityMode::Relaxed, &s);
    let per_write = run_mode(&server, &clients, DurabilityMode::PerWrite, &s);
    let (verify_after, verify_cpu_after) = verify_only(&s, "after");
    let verify = (verify_before + verify_after) / 2.0;
    let verify_cpu = (verify_cpu_before + verify_cpu_after) / 2.0;

    println!(
        "load scans_per_s durable={:.0} nondurable={:.0} per_write={:.0} verify_only={:.0} ratio={:.3} \
         (verify_only before={:.0} after={:.0})",
        group.scans,
        relaxed.scans,
        per_write.scans,
        verify,
        group.scans / verify,
        verify_before,
        verify_after
    );
    println!(
        "load bills_per_s durable={:.0} nondurable={:.0} per_write={:.0}",
        group.bills, relaxed.bills, per_write.bills
    );
    // CPU time of this process per success: less sensitive to other load on the machine
    // than rates; the HTTP figures include the in-process clients' own CPU (reqwest, JSON).
    println!(
        "load cpu_us_per_op scans_durable={:.0} scans_nondurable={:.0} scans_per_write={:.0} verify_only={:.0} \
         bills_durable={:.0} bills_nondurable={:.0} bills_per_write={:.0} cpu_ratio={:.3}",
        group.scans_cpu_us,
        relaxed.scans_cpu_us,
        per_write.scans_cpu_us,
        verify_cpu,
        group.bills_cpu_us,
        relaxed.bills_cpu_us,
        per_write.bills_cpu_us,
        verify_cpu / group.scans_cpu_us
    );
    println!(
        "load server_cpu_us_per_op scans_durable={:.0} scans_nondurable={:.0} scans_per_write={:.0} \
         bills_durable={:.0} bills_nondurable={:.0} bills_per_write={:.0} server_cpu_ratio={:.3}",
        group.scans_server_cpu_us,
        relaxed.scans_server_cpu_us,
        per_write.scans_server_cpu_us,
        group.bills_server_cpu_us,
        relaxed.bills_server_cpu_us,
        per_write.bills_server_cpu_us,
        verify_cpu / group.scans_server_cpu_us
    );
    println!("load total_s={:.1}", t0.elapsed().as_secs_f64());
}
