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

pub async fn pay(app: &CarePass, args: PayArgs) -> Result<(), String> {
    let channel = match &args.channel {
        Some(c) => parse_channel(c)?,
        None => Channel::None,
    };
    let options = QuoteOptions { use_account: !args.no_account, channel };
    let quote = match app.quote(&args.bill, &options, None).await {
        Ok(q) => q,
        Err(CoreError::QuoteRefused(carepass_core::domain::payment::QuoteRefusal::Legs(_)))
            if options.channel.is_none() =>
        {
            return Err("part of this bill is paid in cash: add --channel card:<number> (or credit)".into());
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
    match app.pay(&quote.quote_id, None).await {
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

pub async fn list(app: &CarePass, offline: bool) -> Result<(), String> {
    if !offline {
        app.resume_payments().await.map_err(explain)?;
        // Refresh the ones still moving.
        for p in app.payments(None).map_err(explain)? {
            if matches!(p.status, PaymentStatus::Processing | PaymentStatus::RequiresAction) {
                app.payment(&p.payment_id, None).await.map_err(explain)?;
            }
        }
    }
    let unresolved = app.payments_unresolved().map_err(explain)?;
    for p in app.payments(None).map_err(explain)? {
        println!("{}", describe(&p));
    }
    if unresolved > 0 {
        println!(
            "{unresolved} payment request(s) still waiting for the platform's answer (sent again on the next run)"
        );
    }
    Ok(())
}

pub async fn confirm(app: &CarePass, payment_id: &str, code: &str) -> Result<(), String> {
    let p = app.confirm_payment(payment_id, code, None).await.map_err(explain)?;
    println!("{}", describe(&p));
    if p.status == PaymentStatus::Failed {
        return Err("the payment failed; nothing was charged".into());
    }
    Ok(())
}

pub async fn cash_due(app: &CarePass, payment_id: &str, channel: &str) -> Result<(), String> {
    let p = app.pay_cash_due(payment_id, &parse_channel(channel)?, None).await.map_err(explain)?;
    println!("{}", describe(&p));
    Ok(())
}

pub async fn receipts(app: &CarePass, svg_dir: Option<&Path>) -> Result<(), String> {
    let receipts = app.receipts(None).await.map_err(explain)?;
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
