//! `carepass family …`: link a relative, answer a link request, revoke, list, read the audit
//! trail (verified as a chain by the core). Rules live in the core; this only words things.

use carepass_core::domain::family::{LinkStatus, Relationship, Scope};
use carepass_core::wire::{AuditRecord, LinkView};
use carepass_core::{CarePass, Fen};

use crate::explain;
use crate::text::clean;

/// What the terminal was asked to do.
pub enum FamilyAction {
    Link {
        phone: String,
        relationship: String,
        scopes: Option<String>,
        per_payment: Option<String>,
        per_month: Option<String>,
    },
    Requests,
    Approve(String),
    SendCode(String),
    EnterCode {
        link: String,
        code: String,
    },
    Revoke(String),
    Renew(String),
    Assent {
        link: String,
        scopes: String,
    },
    List {
        json: bool,
    },
    Audit {
        json: bool,
    },
}

fn parse_relationship(text: &str) -> Result<Relationship, String> {
    Relationship::parse(text).ok_or_else(|| {
        let names: Vec<&str> = Relationship::ALL.iter().map(|r| r.as_str()).collect();
        format!("--relationship: {text:?} is not one of {}", names.join(", "))
    })
}

fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Scope::parse(s).ok_or_else(|| {
                let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("--scopes: {s:?} is not one of {}", names.join(", "))
            })
        })
        .collect()
}

fn parse_yuan(flag: &str, text: &Option<String>) -> Result<Option<Fen>, String> {
    text.as_deref()
        .map(|t| Fen::parse_yuan(t).map_err(|e| format!("{flag}: {e} (an amount in yuan, e.g. 500.00)")))
        .transpose()
}

fn scopes_text(scopes: &[Scope]) -> String {
    if scopes.is_empty() {
        return "nothing yet".into();
    }
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// One line about a link, from `me`'s side.
pub fn describe(view: &LinkView, me: &str) -> String {
    let l = &view.link;
    let (other, role) = if l.proxy == me {
        (&view.principal_name, format!("you act for your {}", l.relationship.as_str()))
    } else {
        (&view.proxy_name, format!("acts for you (you are their {})", l.relationship.as_str()))
    };
    let status = match l.status {
        LinkStatus::Pending => {
            let paths: Vec<&str> = view
                .consent_paths
                .iter()
                .map(|p| match p {
                    carepass_core::wire::ConsentPath::OwnDevice => "on their own phone",
                    carepass_core::wire::ConsentPath::SmsCode => "by a code sent to their phone",
                    carepass_core::wire::ConsentPath::Counter => "at a service counter",
                })
                .collect();
            format!("waiting for consent ({})", paths.join(", "))
        }
        LinkStatus::Active => format!("active: may {}", scopes_text(&view.effective_scopes)),
        LinkStatus::Expired => "expired: only the principal can renew it".into(),
        LinkStatus::Revoked => "revoked".into(),
    };
    clean(&format!(
        "{} {other} ({}) — {role}; {status}",
        l.link_id,
        if l.proxy == me { &l.principal } else { &l.proxy }
    ))
    .into_owned()
}

fn audit_line(r: &AuditRecord) -> String {
    // China time, as the platform's days are counted.
    let when = carepass_core::domain::clock::ms_to_time(r.at_ms.saturating_add(8 * 3_600_000)).format("%Y-%m-%d %H:%M");
    let amount = r.amount.map(|a| format!(" {a}")).unwrap_or_default();
    let reference = if r.reference.is_empty() { String::new() } else { format!(" ({})", r.reference) };
    clean(&format!(
        "#{:<3} {when}  {:<20} by {} under {}{amount}{reference}",
        r.seq,
        r.action.as_str(),
        r.actor,
        if r.link_id.is_empty() { "-" } else { &r.link_id }
    ))
    .into_owned()
}

pub async fn run(app: &CarePass, action: FamilyAction) -> Result<(), String> {
    let me = app.current_profile().map_err(explain)?.ok_or("no one is signed in")?.person_id;
    match action {
        FamilyAction::Link { phone, relationship, scopes, per_payment, per_month } => {
            let relationship = parse_relationship(&relationship)?;
            let scopes = scopes.as_deref().map(parse_scopes).transpose()?;
            let limits = carepass_core::wire::Limits {
                per_payment: parse_yuan("--per-payment", &per_payment)?,
                per_month: parse_yuan("--per-month", &per_month)?,
            };
            let view = app.link_relative(&phone, relationship, scopes, limits).await.map_err(explain)?;
            println!("{}", describe(&view, &me));
        }
        FamilyAction::Requests => {
            let overview = app.refresh_family().await.map_err(explain)?;
            let pending: Vec<&LinkView> =
                overview.acted_for_by.iter().filter(|v| v.link.status == LinkStatus::Pending).collect();
            if pending.is_empty() {
                println!("no one is waiting for your consent");
            }
            for v in pending {
                println!("{}", describe(v, &me));
            }
        }
        FamilyAction::Approve(link) => println!("{}", describe(&app.approve_link(&link).await.map_err(explain)?, &me)),
        FamilyAction::SendCode(link) => {
            let s = app.send_link_code(&link).await.map_err(explain)?;
            println!("a code was sent to your relative's phone; ask them to read it to you (valid {s} s), then: carepass family enter-code {link} --code <code>");
        }
        FamilyAction::EnterCode { link, code } => {
            println!("{}", describe(&app.confirm_link_code(&link, &code).await.map_err(explain)?, &me))
        }
        FamilyAction::Revoke(link) => println!("{}", describe(&app.revoke_link(&link).await.map_err(explain)?, &me)),
        FamilyAction::Renew(link) => println!("{}", describe(&app.renew_link(&link).await.map_err(explain)?, &me)),
        FamilyAction::Assent { link, scopes } => {
            let view = app.assent_link(&link, parse_scopes(&scopes)?).await.map_err(explain)?;
            println!("{}", describe(&view, &me));
        }
        FamilyAction::List { json } => {
            let overview = match app.refresh_family().await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!(
                        "carepass: could not reach the platform ({}); showing the links on this device",
                        explain(e)
                    );
                    app.family().map_err(explain)?
                }
            };
            if json {
                println!("{}", serde_json::to_string(&overview).map_err(|e| e.to_string())?);
                return Ok(());
            }
            if overview.acting_for.is_empty() && overview.acted_for_by.is_empty() {
                println!("no family links: carepass family link --phone <relative's phone> --relationship <parent|child|spouse|…>");
            }
            for v in overview.acting_for.iter().chain(&overview.acted_for_by) {
                println!("{}", describe(v, &me));
            }
        }
        FamilyAction::Audit { json } => {
            let audit = app.family_audit().await.map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string(&audit.records).map_err(|e| e.to_string())?);
                return Ok(());
            }
            println!("{} records, chain verified (head {})", audit.records.len(), &audit.head[..16]);
            for r in &audit.records {
                println!("{}", audit_line(r));
            }
        }
    }
    Ok(())
}
