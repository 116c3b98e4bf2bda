//! The family vectors in `tests/vectors/family/` (`docs/family.md` § 9), built by the domain
//! functions and held to the committed files like the payment vectors: `rules.json` (the
//! demo rules the sandbox is seeded with), `cases.json` (linking decisions, authorisation,
//! link moves, mutual aid) and `audit.json` (a chain with its hashes, and tampered copies
//! with the error each must give). `CAREPASS_WRITE_VECTORS=1` writes them.

use std::path::PathBuf;

use carepass_core::domain::family::audit::{verify_chain, AuditAction, AuditEntry, AuditRecord};
use carepass_core::domain::family::link::{Act, Limits};
use carepass_core::domain::family::rules::{LinkRequest, DEMO_RULES_JSON};
use carepass_core::domain::family::{
    ConsentPath, FamilyLink, FamilyRules, LinkMove, LinkStatus, Refusal, Relationship, Scope,
};
use carepass_core::domain::person::{parse_birth_date, InsuranceType};
use carepass_core::Fen;
use carepass_journeys::vectors::{cases, committed, with_count};
use serde_json::{json, Value};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/family")
}

/// 2026-12-01 12:00 China time.
const NOW: i64 = 1_796_097_600_000;
const DAY: i64 = 86_400_000;

fn rules() -> FamilyRules {
    FamilyRules::demo()
}

fn outcome<T>(r: Result<T, Refusal>, ok: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => ok(v),
        Err(e) => json!({ "refused": e.code() }),
    }
}

fn link_view(l: &FamilyLink) -> Value {
    json!({ "status": l.status, "reason": l.reason, "basis": l.basis, "band": l.band,
            "expires_at_ms": l.expires_at_ms })
}

struct Start {
    name: &'static str,
    relationship: Relationship,
    birth: &'static str,
    same_household: bool,
    open: u32,
    already: bool,
    same_person: bool,
}

fn start_cases() -> Vec<Value> {
    let s = |name, relationship, birth, same_household| Start {
        name,
        relationship,
        birth,
        same_household,
        open: 0,
        already: false,
        same_person: false,
    };
    let list = vec![
        s("parent links a child of 9 at once", Relationship::Child, "2017-06-01", true),
        s("parent links a teen of 14 at once", Relationship::Child, "2012-01-20", true),
        s("son links his father of 78: pending", Relationship::Parent, "1948-03-15", true),
        s("spouse links an adult: pending", Relationship::Spouse, "1988-09-30", true),
        s("father not in the household register", Relationship::Parent, "1948-03-15", false),
        s("grandparent cannot link a minor", Relationship::Grandchild, "2017-06-01", true),
        s("parent of a minor in another household", Relationship::Child, "2017-06-01", false),
        s("sibling elsewhere: pending on the principal only", Relationship::Sibling, "1990-01-01", false),
        Start { open: 5, ..s("a sixth link is refused", Relationship::Parent, "1948-03-15", true) },
        Start { open: 4, ..s("a fifth link is allowed", Relationship::Parent, "1948-03-15", true) },
        Start { already: true, ..s("the same principal twice", Relationship::Parent, "1948-03-15", true) },
        Start { same_person: true, ..s("oneself", Relationship::Spouse, "1986-04-12", true) },
    ];
    list.into_iter()
        .map(|c| {
            let req = LinkRequest {
                link_id: "lnk_v",
                principal: if c.same_person { "P1001" } else { "P1002" },
                proxy: "P1001",
                relationship: c.relationship,
                scopes: Scope::ALL.to_vec(),
                limits: Limits::default(),
                principal_birth: parse_birth_date(c.birth).unwrap(),
                same_household: c.same_household,
                proxy_links_open: c.open,
                already_linked: c.already,
            };
            let input = json!({ "relationship": c.relationship, "principal_birth": c.birth,
                                "same_household": c.same_household, "proxy_links_open": c.open,
                                "already_linked": c.already, "self": c.same_person, "now_ms": NOW });
            json!({ "name": c.name, "check": "start_link", "input": input,
                    "expected": outcome(rules().start_link(req, NOW), |l| link_view(&l)) })
        })
        .collect()
}

fn link(status: LinkStatus, band: &str, scopes: &[Scope], limits: Limits) -> FamilyLink {
    let birth = match band {
        "teen" => "2012-01-20",
        "minor" => "2017-06-01",
        _ => "1948-03-15",
    };
    let relationship = if band == "teen" || band == "minor" { Relationship::Child } else { Relationship::Parent };
    let req = LinkRequest {
        link_id: "lnk_v",
        principal: "P1002",
        proxy: "P1001",
        relationship,
        scopes: scopes.to_vec(),
        limits,
        principal_birth: parse_birth_date(birth).unwrap(),
        same_household: true,
        proxy_links_open: 0,
        already_linked: false,
    };
    let mut l = rules().start_link(req, NOW - 30 * DAY).unwrap();
    if status == LinkStatus::Active && l.status == LinkStatus::Pending {
        l = l.apply(LinkMove::Consent(ConsentPath::OwnDevice), &rules(), NOW - 30 * DAY).unwrap();
    }
    if status == LinkStatus::Revoked {
        l = l.apply(LinkMove::Revoke { by_principal: true }, &rules(), NOW - DAY).unwrap();
    }
    l
}

fn authorize_cases() -> Vec<Value> {
    let all = Scope::ALL;
    let capped = Limits { per_payment: Some(Fen(50_000)), per_month: Some(Fen(100_000)) };
    let act =
        |scope, amount: Option<i64>, spent: i64| Act { scope, amount: amount.map(Fen), spent_this_month: Fen(spent) };
    let list: Vec<(&str, Option<FamilyLink>, i64, Act)> = vec![
        ("no link", None, NOW, act(Scope::PayBills, Some(100), 0)),
        (
            "pending link",
            Some(link(LinkStatus::Pending, "elderly", &all, Limits::default())),
            NOW,
            act(Scope::ShowCode, None, 0),
        ),
        (
            "revoked link",
            Some(link(LinkStatus::Revoked, "elderly", &all, Limits::default())),
            NOW,
            act(Scope::ShowCode, None, 0),
        ),
        (
            "active link, code",
            Some(link(LinkStatus::Active, "elderly", &all, Limits::default())),
            NOW,
            act(Scope::ShowCode, None, 0),
        ),
        (
            "active link past its 18 months",
            Some(link(LinkStatus::Active, "elderly", &all, Limits::default())),
            NOW + 560 * DAY,
            act(Scope::ShowCode, None, 0),
        ),
        (
            "scope not granted",
            Some(link(LinkStatus::Active, "elderly", &[Scope::ShowCode], Limits::default())),
            NOW,
            act(Scope::PayBills, Some(1), 0),
        ),
        (
            "teen: codes and payments without assent",
            Some(link(LinkStatus::Active, "teen", &all, Limits::default())),
            NOW,
            act(Scope::PayBills, Some(1), 0),
        ),
        (
            "teen: bill details need assent",
            Some(link(LinkStatus::Active, "teen", &all, Limits::default())),
            NOW,
            act(Scope::ViewBills, None, 0),
        ),
        (
            "teen: prescriptions need assent",
            Some(link(LinkStatus::Active, "teen", &all, Limits::default())),
            NOW,
            act(Scope::ViewPrescriptions, None, 0),
        ),
        (
            "minor: bill details",
            Some(link(LinkStatus::Active, "minor", &all, Limits::default())),
            NOW,
            act(Scope::ViewBills, None, 0),
        ),
        (
            "within both limits",
            Some(link(LinkStatus::Active, "elderly", &all, capped)),
            NOW,
            act(Scope::PayBills, Some(50_000), 50_000),
        ),
        (
            "over the payment limit",
            Some(link(LinkStatus::Active, "elderly", &all, capped)),
            NOW,
            act(Scope::PayBills, Some(50_001), 0),
        ),
        (
            "over the monthly limit",
            Some(link(LinkStatus::Active, "elderly", &all, capped)),
            NOW,
            act(Scope::PayBills, Some(40_000), 60_001),
        ),
    ];
    list.into_iter()
        .map(|(name, l, now, a)| {
            let input = json!({ "link": l, "now_ms": now, "scope": a.scope, "amount": a.amount,
                                "spent_this_month": a.spent_this_month });
            let got = FamilyLink::authorize(l.as_ref(), &rules(), now, a);
            json!({ "name": name, "check": "authorize", "input": input,
                    "expected": outcome(got, |()| json!({ "ok": true })) })
        })
        .collect()
}

fn move_cases() -> Vec<Value> {
    let all = Scope::ALL;
    let pending = link(LinkStatus::Pending, "elderly", &all, Limits::default());
    let active = link(LinkStatus::Active, "elderly", &all, Limits::default());
    let revoked = link(LinkStatus::Revoked, "elderly", &all, Limits::default());
    let teen = link(LinkStatus::Active, "teen", &all, Limits::default());
    let minor = link(LinkStatus::Active, "minor", &all, Limits::default());
    let mut pending_adult = pending.clone();
    pending_adult.band = carepass_core::domain::family::BandName::Adult;
    use carepass_core::domain::family::BandName;
    let list: Vec<(&str, FamilyLink, LinkMove, i64)> = vec![
        ("elderly consents on their device", pending.clone(), LinkMove::Consent(ConsentPath::OwnDevice), NOW),
        ("elderly consents by SMS code", pending.clone(), LinkMove::Consent(ConsentPath::SmsCode), NOW),
        ("adult may not consent by SMS code", pending_adult, LinkMove::Consent(ConsentPath::SmsCode), NOW),
        ("counter verification", pending.clone(), LinkMove::Consent(ConsentPath::Counter), NOW),
        ("consent twice", active.clone(), LinkMove::Consent(ConsentPath::OwnDevice), NOW),
        ("proxy revokes a pending link", pending, LinkMove::Revoke { by_principal: false }, NOW),
        ("principal revokes an active link", active.clone(), LinkMove::Revoke { by_principal: true }, NOW),
        ("revoked is final", revoked.clone(), LinkMove::Consent(ConsentPath::OwnDevice), NOW),
        ("revoked cannot be renewed", revoked, LinkMove::Renew, NOW),
        ("expire before the end", active.clone(), LinkMove::Expire, NOW),
        ("expire after the end", active.clone(), LinkMove::Expire, NOW + 560 * DAY),
        ("renew", active, LinkMove::Renew, NOW),
        ("a parental link has no renewal", minor.clone(), LinkMove::Renew, NOW),
        ("the child turns 14", minor, LinkMove::BandChanged(BandName::Teen), NOW),
        ("the teen turns 18: waits for consent", teen.clone(), LinkMove::BandChanged(BandName::Adult), NOW),
        ("the teen assents to bill details", teen, LinkMove::Assent(vec![Scope::ViewBills, Scope::ManageFamily]), NOW),
    ];
    list.into_iter()
        .map(|(name, l, step, now)| {
            let step_json = match &step {
                LinkMove::Consent(p) => json!({ "consent": p }),
                LinkMove::Renew => json!("renew"),
                LinkMove::Revoke { by_principal } => json!({ "revoke": { "by_principal": by_principal } }),
                LinkMove::Expire => json!("expire"),
                LinkMove::BandChanged(b) => json!({ "band_changed": b }),
                LinkMove::Assent(s) => json!({ "assent": s }),
            };
            let got = l.apply(step, &rules(), now);
            json!({ "name": name, "check": "move", "input": { "link": l, "move": step_json, "now_ms": now },
                    "expected": outcome(got, |n| json!({ "link": link_view(&n), "assented": n.assented,
                        "effective_scopes": n.effective_scopes(&rules(), now) })) })
        })
        .collect()
}

fn mutual_aid_cases() -> Vec<Value> {
    use InsuranceType::*;
    let date = |d: &str| {
        let day = parse_birth_date(d).unwrap();
        day.and_hms_opt(4, 0, 0).unwrap().and_utc().timestamp_millis()
    };
    let list = vec![
        ("son pays for his father, same city", Relationship::Parent, EmployeeActive, "419900", "419902", NOW),
        ("a resident has no personal account to give", Relationship::Parent, Resident, "419900", "419900", NOW),
        ("sibling before July 2024", Relationship::Sibling, EmployeeActive, "419900", "419900", date("2024-06-30")),
        ("sibling from July 2024", Relationship::Sibling, EmployeeActive, "419900", "419900", date("2024-07-01")),
        (
            "another province before the nationwide date",
            Relationship::Child,
            EmployeeActive,
            "419900",
            "429900",
            date("2025-12-31"),
        ),
        (
            "another province from January 2026",
            Relationship::Child,
            EmployeeActive,
            "419900",
            "429900",
            date("2026-01-01"),
        ),
        (
            "another city of the province in 2024",
            Relationship::Spouse,
            EmployeeRetired,
            "419900",
            "410100",
            date("2024-06-01"),
        ),
    ];
    list.into_iter()
        .map(|(name, rel, scheme, giver, receiver, now)| {
            let got = rules().mutual_aid(rel, scheme, giver, receiver, now);
            json!({ "name": name, "check": "mutual_aid",
                    "input": { "relationship": rel, "giver_scheme": scheme, "giver_region": giver,
                               "receiver_region": receiver, "now_ms": now },
                    "expected": outcome(got, |()| json!({ "ok": true })) })
        })
        .collect()
}

fn audit_chain() -> Vec<AuditRecord> {
    let steps = [
        (AuditAction::LinkRequested, None, ""),
        (AuditAction::LinkActivated, None, ""),
        (AuditAction::CodeScanned, None, "pharmacy_counter"),
        (AuditAction::PaymentMade, Some(Fen(31_240)), "pay_0001"),
        (AuditAction::LinkRevoked, None, ""),
    ];
    let mut out: Vec<AuditRecord> = Vec::new();
    for (i, (action, amount, reference)) in steps.into_iter().enumerate() {
        let entry = AuditEntry {
            at_ms: NOW + i as i64 * 60_000,
            principal: "P1002".into(),
            actor: if action == AuditAction::LinkRevoked { "P1002".into() } else { "P1001".into() },
            link_id: "lnk_v".into(),
            action,
            amount,
            reference: reference.into(),
        };
        let r = AuditRecord::chain(out.last(), entry);
        out.push(r);
    }
    out
}

fn audit_cases() -> Vec<Value> {
    let chain = audit_chain();
    let verdict = |records: &[AuditRecord]| match verify_chain("P1002", records) {
        Ok(head) => json!({ "ok": true, "head": head }),
        Err(e) => json!({ "error": format!("{e:?}") }),
    };
    let mut amount = chain.clone();
    amount[3].amount = Some(Fen(1));
    let mut dropped = chain.clone();
    dropped.remove(2);
    let mut actor = chain.clone();
    actor[2].actor = "P1004".into();
    vec![
        json!({ "name": "the untouched chain", "records": chain, "expected": verdict(&chain) }),
        json!({ "name": "an amount changed", "records": amount, "expected": verdict(&amount) }),
        json!({ "name": "a record dropped", "records": dropped, "expected": verdict(&dropped) }),
        json!({ "name": "the actor changed", "records": actor, "expected": verdict(&actor) }),
    ]
}

#[test]
fn the_rules_vector_is_the_demo_rules() {
    let file = std::fs::read_to_string(dir().join("rules.json")).unwrap();
    assert_eq!(file, DEMO_RULES_JSON, "tests/vectors/family/rules.json differs from the demo rules in the core");
    assert_eq!(FamilyRules::from_json(&file).unwrap(), FamilyRules::demo());
}

#[test]
fn decision_vectors_hold() {
    let mut all = start_cases();
    all.extend(authorize_cases());
    all.extend(move_cases());
    all.extend(mutual_aid_cases());
    let doc = committed(&dir(), "cases.json", with_count(json!({ "rules_version": 1, "cases": all })));
    let list = cases(&doc);
    // Spot-check the outcomes the rules promise, so a wrong regeneration cannot pass.
    let by_name = |n: &str| list.iter().find(|c| c["name"] == n).unwrap_or_else(|| panic!("{n}"))["expected"].clone();
    assert_eq!(by_name("parent links a child of 9 at once")["status"], "active");
    assert_eq!(by_name("son links his father of 78: pending")["status"], "pending");
    assert_eq!(by_name("a sixth link is refused")["refused"], "too_many_links");
    assert_eq!(by_name("teen: bill details need assent")["refused"], "scope_missing");
    assert_eq!(by_name("over the monthly limit")["refused"], "over_monthly_limit");
    assert_eq!(by_name("adult may not consent by SMS code")["refused"], "consent_path_not_allowed");
    assert_eq!(by_name("the teen turns 18: waits for consent")["link"]["reason"], "came_of_age");
    assert_eq!(by_name("another province before the nationwide date")["refused"], "mutual_aid_region");
    assert_eq!(by_name("the teen assents to bill details")["assented"], json!(["view_bills"]));
}

#[test]
fn audit_vectors_hold() {
    let doc = committed(&dir(), "audit.json", with_count(json!({ "principal": "P1002", "cases": audit_cases() })));
    for case in cases(&doc) {
        let records: Vec<AuditRecord> = serde_json::from_value(case["records"].clone()).unwrap();
        let ok = verify_chain("P1002", &records).is_ok();
        assert_eq!(ok, case["expected"]["ok"] == true, "{}", case["name"]);
    }
}

#[test]
fn changing_the_data_changes_the_behaviour() {
    // The same child of 12 under two rule sets: the demo rules (teen from 14) give the parent
    // bill details; rules with the teen band from 12 do not, with no code change.
    let text =
        DEMO_RULES_JSON.replace("\"from_age\": 14", "\"from_age\": 12").replace("\"version\": 1", "\"version\": 2");
    let strict = FamilyRules::from_json(&text).unwrap();
    let birth = parse_birth_date("2014-06-01").unwrap();
    let req = |rules: &FamilyRules| {
        let req = LinkRequest {
            link_id: "lnk_v",
            principal: "P1",
            proxy: "P2",
            relationship: Relationship::Child,
            scopes: Scope::ALL.to_vec(),
            limits: Limits::default(),
            principal_birth: birth,
            same_household: true,
            proxy_links_open: 0,
            already_linked: false,
        };
        rules.start_link(req, NOW).unwrap()
    };
    let act = Act { scope: Scope::ViewBills, amount: None, spent_this_month: Fen::ZERO };
    let demo_link = req(&rules());
    assert_eq!(FamilyLink::authorize(Some(&demo_link), &rules(), NOW, act), Ok(()));
    let strict_link = req(&strict);
    assert_eq!(strict_link.rules_version, 2);
    assert_eq!(
        FamilyLink::authorize(Some(&strict_link), &strict, NOW, act),
        Err(Refusal::ScopeMissing(Scope::ViewBills))
    );
    // Five links by the demo rules; two by rules that say two.
    let two =
        FamilyRules::from_json(&DEMO_RULES_JSON.replace("\"max_links_per_proxy\": 5", "\"max_links_per_proxy\": 2"))
            .unwrap();
    let mut r = LinkRequest {
        proxy_links_open: 2,
        ..LinkRequest {
            link_id: "l",
            principal: "P1",
            proxy: "P2",
            relationship: Relationship::Child,
            scopes: vec![],
            limits: Limits::default(),
            principal_birth: birth,
            same_household: true,
            proxy_links_open: 0,
            already_linked: false,
        }
    };
    assert!(rules().start_link(r.clone(), NOW).is_ok());
    assert_eq!(two.start_link(r.clone(), NOW), Err(Refusal::TooManyLinks));
    r.proxy_links_open = 1;
    assert!(two.start_link(r, NOW).is_ok());
}

#[test]
fn bad_rules_are_refused_with_a_reason() {
    for (from, to) in [
        ("\"from_age\": 0", "\"from_age\": 3"),
        ("\"from_age\": 65", "\"from_age\": 14"),
        ("\"max_links_per_proxy\": 5", "\"max_links_per_proxy\": 0"),
        ("\"from\": \"2026-01-01\"", "\"from\": \"2026-13-01\""),
        ("\"band\": \"teen\"", "\"band\": \"minor\""),
    ] {
        assert!(FamilyRules::from_json(&DEMO_RULES_JSON.replace(from, to)).is_err(), "{from} -> {to}");
    }
    assert!(FamilyRules::from_json("{").is_err());
}
