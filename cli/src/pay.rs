//! `carepass pay` (quote a bill, show what each source pays, confirm, pay), `carepass
//! payments` (list, resuming any payment whose answer was lost), `carepass confirm` (the
//! bank's code), `carepass cash-due` (pay what a declined capture left) and `carepass
//! receipts` (verified e-receipts, optionally as SVG cards). The flow and its rules are the
//! core's; this file asks and prints.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use carepass_core::domain::payment::{Channel, PaymentStatus};
use carepass_core::wire::Payment;
use carepass_core::{CarePass, CoreError, QuoteOptions};

use crate::explain;

pub struct PayArgs {
    pub bill: String,
    pub channel: Option<String>,
    pub no_account: bool,
    /// Acting for a relative: your own personal account pays what theirs leaves (家庭共济).
    pub mutual_aid: bool,
    pub yes: bool,
}

fn parse_channel(text: &str) -> Result<Channel, String> {
    // Accept a bare card number as well as `card:<number>`.
    let text = if text.bytes().all(|b| b.is_ascii_digit() || b == b' ') && !text.is_empty() {
        format!("card:{}", text.replace(' ', ""))
    } else {
        text.to_string()
    };
    Channel::parse(&text).map_err(|e| format!("--channel: {e} (use card:<number>, credit or none)"))
}

fn status_word(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Processing => "processing",
        PaymentStatus::RequiresAction => "needs the bank's code",
        PaymentStatus::Succeeded => "paid",
        PaymentStatus::Failed => "failed (nothing charged)",
        PaymentStatus::CashDue => "insurance paid, cash still due",
        PaymentStatus::PartlyRefunded => "partly refunded",
        PaymentStatus::Refunded => "refunded",
    }
}

/// One line per payment, for people.
pub fn describe(p: &Payment) -> String {
    let mut line = format!(
        "{}  {}  {}  fund {} · account {} · mutual aid {} · cash {} ({})",
        p.payment_id,
        p.bill_id,
        status_word(p.status),
        p.insurance.fund_fen,
        p.insurance.personal_account_fen,
        p.insurance.mutual_aid_fen,
        p.cash.amount_fen,
        p.cash.channel
    );
    if let Some(f) = &p.failure {
        line.push_str(&format!(" — {}", f.message));
    }
    if p.status == PaymentStatus::CashDue {
        line.push_str(&format!(
            " — {} due: carepass cash-due {} --channel card:<number>",
            p.cash.due_fen, p.payment_id
        ));
    }
    if let Some(a) = &p.action {
        line.push_str(&format!(" — {}: carepass confirm {} --code <code>", a.message, p.payment_id));
    }
    crate::text::clean(&line).into_owned()
}

pub async fn pay(app: &CarePass, args: PayArgs, subject: Option<&str>) -> Result<(), String> {
    let channel = match &args.channel {
        Some(c) => parse_channel(c)?,
        None => Channel::None,
    };
    let options = QuoteOptions { use_account: !args.no_account, channel, mutual_aid: args.mutual_aid };
    let quote = match app.quote(&args.bill, &options, subject).await {
        Ok(q) => q,
        Err(CoreError::QuoteRefused(carepass_core::domain::payment::QuoteRefusal::Legs(_)))
            if options.channel.is_none() =>
        {
            return Err("part of this bill is paid in cash: add --channel card:<number> (or credit)".into());
        }
        Err(e @ CoreError::PaymentOutcomeUnknown { .. }) => {
            return Err(format!("{}\nrun `carepass payments` to check it again", explain(e)));
        }
        Err(e) => return Err(explain(e)),
    };
    let legs = &quote.legs;
    println!("bill {}: total {}", quote.bill_id, quote.settlement.total);
    println!("  pooled fund (统筹)        {}", legs.insurance.fund);
    println!("  personal account (个账)   {}", legs.insurance.personal_account);
    if legs.insurance.mutual_aid.0 > 0 {
        println!("  family mutual aid (共济)  {}", legs.insurance.mutual_aid);
    }
    println!("  you pay (自费)            {} via {}", legs.cash.amount, legs.cash.channel.masked());
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err("confirm with --yes (stdin is not a terminal)".into());
        }
        print!("pay this? [y/N] ");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).map_err(|e| e.to_string())?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err("not paid".into());
        }
    }
    match app.pay(&quote.quote_id, subject).await {
        Ok(payment) => {
            println!("{}", describe(&payment));
            match payment.status {
                PaymentStatus::Failed => Err("the payment failed; nothing was charged".into()),
                _ => Ok(()),
            }
        }
        Err(e @ CoreError::PaymentOutcomeUnknown { .. }) => {
            Err(format!("{}\nrun `carepass payments` to check it again", explain(e)))
        }
        Err(e) => Err(explain(e)),
    }
}

pub async fn list(app: &CarePass, offline: bool, subject: Option<&str>) -> Result<(), String> {
    if !offline {
        app.resume_payments().await.map_err(explain)?;
        // Refresh the ones still moving.
        for p in app.payments(subject).map_err(explain)? {
            if matches!(p.status, PaymentStatus::Processing | PaymentStatus::RequiresAction) {
                app.payment(&p.payment_id, subject).await.map_err(explain)?;
            }
        }
    }
    let unresolved = app.payments_unresolved().map_err(explain)?;
    for p in app.payments(subject).map_err(explain)? {
        println!("{}", describe(&p));
    }
    if unresolved > 0 {
        println!(
            "{unresolved} payment request(s) still waiting for the platform's answer (sent again on the next run)"
        );
    }
    Ok(())
}

pub async fn confirm(app: &CarePass, payment_id: &str, code: &str, subject: Option<&str>) -> Result<(), String> {
    let p = app.confirm_payment(payment_id, code, subject).await.map_err(explain)?;
    println!("{}", describe(&p));
    if p.status == PaymentStatus::Failed {
        return Err("the payment failed; nothing was charged".into());
    }
    Ok(())
}

pub async fn cash_due(app: &CarePass, payment_id: &str, channel: &str, subject: Option<&str>) -> Result<(), String> {
    let p = app.pay_cash_due(payment_id, &parse_channel(channel)?, subject).await.map_err(explain)?;
    println!("{}", describe(&p));
    Ok(())
}

pub async fn receipts(app: &CarePass, svg_dir: Option<&Path>, subject: Option<&str>) -> Result<(), String> {
    let receipts = app.receipts(subject).await.map_err(explain)?;
    if receipts.is_empty() {
        println!("no receipts yet");
    }
    for v in receipts {
        let r = &v.receipt;
        let kind = match r.kind {
            carepass_core::domain::payment::receipt::ReceiptKind::Original => "receipt",
            carepass_core::domain::payment::receipt::ReceiptKind::WriteOff => "write-off",
        };
        println!(
            "{}",
            crate::text::clean(&format!(
                "{kind} {} {} check {}  {}  total {} (fund {}, account {}, cash {})  verified",
                r.receipt_code, r.receipt_number, r.check_code, r.payee, r.total, r.fund, r.personal_account, r.cash
            ))
        );
        if let Some(dir) = svg_dir {
            std::fs::create_dir_all(dir).map_err(|e| format!("--svg {}: {e}", dir.display()))?;
            let path = dir.join(format!("{}-{}.svg", r.receipt_code, r.receipt_number));
            std::fs::write(&path, r.svg()).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("  card: {}", path.display());
        }
    }
    Ok(())
}

/// Parses an amount in yuan (`12.50`, `12`), never through floats.
fn parse_yuan(flag: &str, text: &str) -> Result<carepass_core::Fen, String> {
    carepass_core::Fen::parse_yuan(text.trim()).map_err(|e| format!("{flag}: {e} (write yuan, e.g. 12.50)"))
}

/// `carepass credit`: the credit pay-later line and what is due when.
pub async fn credit_show(app: &CarePass, json: bool) -> Result<(), String> {
    let line = app.credit_line().await.map_err(explain)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&line).map_err(|e| e.to_string())?);
    } else {
        print_credit(&line);
    }
    Ok(())
}

/// `carepass credit sign --limit YUAN`: signs the agreement with this device's key.
pub async fn credit_sign(app: &CarePass, limit: &str, yes: bool) -> Result<(), String> {
    let limit = parse_yuan("--limit", limit)?;
    if !yes {
        confirm_or_stop(&format!(
            "Sign a credit pay-later agreement for {limit}, each use due in 30 days, with this device's key? [y/N] "
        ))?;
    }
    let line = app.sign_credit_agreement(limit).await.map_err(explain)?;
    println!("credit agreement signed");
    print_credit(&line);
    Ok(())
}

/// `carepass credit repay AMOUNT --channel card:N`: repays, oldest use first, exactly once.
pub async fn credit_repay(app: &CarePass, amount: &str, channel: &str) -> Result<(), String> {
    let amount = parse_yuan("AMOUNT", amount)?;
    let channel = parse_channel(channel)?;
    let line = app.repay_credit(&channel, amount).await.map_err(explain)?;
    println!("repaid {amount}");
    print_credit(&line);
    Ok(())
}

fn print_credit(line: &carepass_core::wire::CreditLine) {
    if !line.signed {
        println!("no credit agreement: carepass credit sign --limit <yuan>");
        return;
    }
    println!(
        "credit line {} · used {} · available {} · {} days to repay each use",
        line.limit_fen, line.used_fen, line.available_fen, line.term_days
    );
    for d in &line.draws {
        let open = carepass_core::Fen(d.amount_fen.0 - d.repaid_fen.0);
        if open.0 > 0 {
            let due = chrono_date(d.due_at_ms);
            println!("  {}  {} drawn, {} still owed, due {due}", d.payment_id, d.amount_fen, open);
        }
    }
}

/// A UTC date for a due date (yyyy-mm-dd), without a date library.
fn chrono_date(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Asks y/N on a terminal; anything else (or no terminal) stops.
fn confirm_or_stop(question: &str) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err("not confirmed: pass --yes to go ahead without asking".into());
    }
    print!("{question}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| e.to_string())?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err("not confirmed; nothing was done".into())
    }
}

/// One item a cashier charges: `CODE:NAME:CATEGORY:QUANTITY:PRICE` (category A, B or C;
/// price per unit in yuan).
pub fn parse_counter_item(text: &str) -> Result<carepass_core::wire::NewBillItem, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [code, name, category, quantity, price] = parts[..] else {
        return Err(format!(
            "--item {text:?}: write CODE:NAME:CATEGORY:QUANTITY:PRICE, e.g. 860101:布洛芬缓释胶囊:A:2:12.50"
        ));
    };
    let category = match category.trim() {
        "A" | "a" => carepass_core::domain::settlement::ItemCategory::A,
        "B" | "b" => carepass_core::domain::settlement::ItemCategory::B,
        "C" | "c" => carepass_core::domain::settlement::ItemCategory::C,
        other => return Err(format!("--item {text:?}: the category {other:?} is A, B or C")),
    };
    let quantity: u32 = quantity
        .trim()
        .parse()
        .ok()
        .filter(|q| *q > 0)
        .ok_or_else(|| format!("--item {text:?}: the quantity is a whole number above 0"))?;
    Ok(carepass_core::wire::NewBillItem {
        item_code: code.trim().to_string(),
        name: name.trim().to_string(),
        category,
        quantity,
        unit_price_fen: parse_yuan("--item price", price)?,
    })
}

/// `carepass counter`: a cashier's one-code charge (一码付). Sends the scanned code and the
/// items; the platform bills the code's holder, whose phone then pays it in one confirmation.
pub async fn counter(
    server: &str,
    token: &str,
    payload: &str,
    purpose: &str,
    merchant: &str,
    items: &[String],
) -> Result<carepass_core::wire::CounterCharge, String> {
    if items.is_empty() {
        return Err("give at least one --item CODE:NAME:CATEGORY:QUANTITY:PRICE".into());
    }
    if !matches!(purpose, "pharmacy_purchase" | "outpatient_settlement") {
        return Err(format!("--purpose {purpose:?}: a counter charges pharmacy_purchase or outpatient_settlement"));
    }
    let items = items.iter().map(|i| parse_counter_item(i)).collect::<Result<Vec<_>, _>>()?;
    let client = carepass_core::io::net::PlatformClient::new(
        server,
        std::sync::Arc::new(carepass_core::SystemClock),
        &Default::default(),
    )
    .map_err(|e| e.to_string())?;
    let request = carepass_core::wire::CounterChargeRequest {
        payload: payload.trim().to_string(),
        purpose: purpose.to_string(),
        merchant: merchant.to_string(),
        items,
    };
    client.post("v1/counter/charges", &request, Some(token)).await.map_err(|e| e.to_string())
}
