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
    }
}

/// One line for a person to read.
pub fn describe(bill: &Bill) -> String {
    format!(
        "{}  {:<9} {:>10}  {} · {} · {} ({} items)",
        bill.bill_id,
        state_name(bill.state),
        bill.total_fen.to_string(),
        bill.hospital,
        bill.department,
        bill.doctor,
        bill.items.len()
    )
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

pub async fn list(app: &CarePass, json: bool) -> Result<(), String> {
    if let Err(e) = app.sync_inbox().await {
        eprintln!("carepass: could not sync ({e}); showing the bills on this device");
    }
    let bills = app.bills(None).map_err(explain)?;
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
pub async fn watch(app: &Arc<CarePass>) -> Result<(), String> {
    for change in app.sync_inbox().await.map_err(explain)? {
        print_change(&change);
    }
    let mut updates = app.inbox_stream(None);
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
