//! `carepass bills`: sync and list the inbox (`--json` for one JSON array), or keep the live
//! stream open and print each bill as it arrives (`--watch`). The inbox itself is the core's.

use carepass_core::domain::bills::InboxChange;
use carepass_core::wire::{Bill, BillState};
use std::sync::Arc;

use carepass_core::CarePass;

use crate::explain;

fn state_name(state: BillState) -> &'static str {
    match state {
        BillState::Pending => "pending",
        BillState::Paying => "paying",
        BillState::Paid => "paid",
        BillState::Failed => "failed",
        BillState::Expired => "expired",
        BillState::Cancelled => "cancelled",
        BillState::Refunded => "refunded",
        BillState::CashDue => "cash due",
        BillState::PartlyRefunded => "part-refunded",
    }
}

/// One line for a person to read.
pub fn describe(bill: &Bill) -> String {
    crate::text::clean(&format!(
        "{}  {:<9} {:>10}  {} · {} · {} ({} items)",
        bill.bill_id,
        state_name(bill.state),
        bill.total_fen.to_string(),
        bill.hospital,
        bill.department,
        bill.doctor,
        bill.items.len()
    ))
    .into_owned()
}

fn to_json(bill: &Bill) -> serde_json::Value {
    serde_json::json!({
        "id": bill.bill_id,
        "state": state_name(bill.state),
        "total_fen": bill.total_fen.0,
        "person_id": bill.person_id,
        "visit_id": bill.visit_id,
        "hospital": bill.hospital,
        "department": bill.department,
        "doctor": bill.doctor,
        "created_at_ms": bill.created_at_ms,
        "due_at_ms": bill.due_at_ms,
        "items": bill.items,
    })
}

pub async fn list(app: &CarePass, json: bool, offline: bool, subject: Option<&str>) -> Result<(), String> {
    if !offline {
        match app.sync_inbox().await {
            Ok(_) => {}
            // Nothing to show either: one line that says what to do.
            Err(carepass_core::CoreError::NotSignedIn) => {
                return Err("no one is signed in: carepass login --phone <number> --code <sms code>".into())
            }
            Err(e) => eprintln!("carepass: could not sync ({}); showing the bills on this device", explain(e)),
        }
    }
    let bills = app.bills(subject).map_err(explain)?;
    if json {
        let array: Vec<serde_json::Value> = bills.iter().map(to_json).collect();
        println!("{}", serde_json::Value::Array(array));
    } else if bills.is_empty() {
        println!("no bills");
    } else {
        for bill in &bills {
            println!("{}", describe(bill));
        }
    }
    Ok(())
}

/// `bills --watch`: the core's inbox stream, printing each change as it arrives, until
/// Ctrl-C. The store is held only while a change is applied, so other commands on the same
/// data directory run meanwhile.
pub async fn watch(app: &Arc<CarePass>, subject: Option<&str>) -> Result<(), String> {
    for change in app.sync_inbox().await.map_err(explain)? {
        print_change(&change);
    }
    let mut updates = app.inbox_stream(subject.map(str::to_string));
    println!("watching for new bills (Ctrl-C to stop)");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            update = updates.next() => match update {
                Some(Ok(update)) => {
                    for change in &update.changes {
                        print_change(change);
                    }
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                }
                Some(Err(e)) => return Err(explain(e)),
                None => return Ok(()),
            },
        }
    }
}

fn print_change(change: &InboxChange) {
    match change {
        InboxChange::Added(b) => println!("new     {}", describe(b)),
        InboxChange::Updated(b) => println!("updated {}", describe(b)),
    }
}

/// `push handle`: hands a push's data map to the core, as the app's push service callback
/// would, and says what it did.
pub async fn handle_push(app: &CarePass, file: &std::path::Path) -> Result<(), String> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?
    };
    let data: std::collections::HashMap<String, String> =
        serde_json::from_str(&text).map_err(|e| format!("the push data is not a JSON object of strings: {e}"))?;
    match app.handle_push(&data).await.map_err(explain)? {
        carepass_core::domain::bills::PushOutcome::Pulled(changes) => {
            for change in &changes {
                print_change(change);
            }
        }
        carepass_core::domain::bills::PushOutcome::AlreadySeen => println!("already seen"),
        carepass_core::domain::bills::PushOutcome::NotYetReadable => {
            println!("not readable yet; the next sync pulls it")
        }
    }
    Ok(())
}
