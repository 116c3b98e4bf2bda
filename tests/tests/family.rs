//! Family proxies end to end, over real HTTP to the sandbox (`docs/family.md`): linking with
//! each consent path, acting for a relative (their bills on the proxy's phone, with doorbells;
//! paying them from the relative's personal account), revocation taking effect at once, age
//! transitions on platform time, limits, every escalation refused with its reason, and the
//! audit chain the relative reads (tampering detected).

use std::sync::Arc;

use carepass_core::domain::family::{LinkStatus, Refusal, Relationship, Scope};
use carepass_core::domain::payment::Channel;
use carepass_core::io::secrets::MemorySecretStore;
use carepass_core::wire::{AuditAction, Limits, PlatformCode};
use carepass_core::{CarePass, CoreError, Fen, QuoteOptions};
use carepass_journeys::*;
use reqwest::StatusCode;

const SON: &str = "13800000001"; // P1001 张伟, 40
const FATHER: &str = "13800000002"; // P1002 张建国, 78
const DAUGHTER: &str = "13800000003"; // P1003 张小雨, 9
const WIFE: &str = "13800000004"; // P1004 李娜, 38
const STRANGER: &str = "13800000007"; // P3001 陈静, another household and province
const DAY_MS: i64 = 86_400_000;

struct Phone {
    app: Arc<CarePass>,
    _dir: tempfile::TempDir,
}

async fn phone_of(platform: &TestPlatform, number: &str) -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let app = phone(&platform.url(), dir.path(), &MemorySecretStore::new());
    app.enrol(number, CODE).await.unwrap();
    Phone { app, _dir: dir }
}

fn card() -> QuoteOptions {
    QuoteOptions { use_account: true, channel: Channel::parse("card:4242424242424242").unwrap(), mutual_aid: false }
}

async fn balance(platform: &TestPlatform, person: &str) -> Fen {
    let a: serde_json::Value =
        platform.admin().get(&format!("admin/v1/accounts/{person}"), Some(ADMIN_TOKEN)).await.expect("account");
    Fen(a["account_balance_fen"].as_i64().expect("a balance"))
}

/// A raw request as a forged client would send it: the phone's own token, any subject.
async fn raw(platform: &TestPlatform, app: &CarePass, person: &str, path: &str, subject: &str) -> (StatusCode, String) {
    let token = stored_tokens(app, person).access_token;
    let response = http()
        .get(format!("{}/{path}", platform.url()))
        .bearer_auth(token)
        .header("x-carepass-subject", subject)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

fn http() -> reqwest::Client {
    carepass_core::io::net::install_crypto_provider();
    reqwest::Client::new()
}

fn refusal(e: CoreError) -> Refusal {
    match e {
        CoreError::Family(r) => r,
        other => panic!("expected a family refusal, got {other:?}"),
    }
}

/// Son links his father (pending), the father consents on his own phone; a bill for the
/// father reaches the son's phone with a doorbell to the son's device; the son pays it from
/// the father's personal account; the father's audit lists every step and verifies; a record
/// changed at the platform is detected.
#[tokio::test(flavor = "multi_thread")]
async fn a_son_links_his_father_sees_and_pays_his_bill_and_the_father_reads_the_audit() {
    let platform = TestPlatform::start().await;
    let son = phone_of(&platform, SON).await;
    let father = phone_of(&platform, FATHER).await;
    son.app.register_push_token("fcm", "son-token-0123456789").await.unwrap();

    let asked = son.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap();
    assert_eq!(asked.link.status, LinkStatus::Pending);
    assert_eq!(asked.link.principal, "P1002");
    assert!(asked.effective_scopes.is_empty());
    // Before consent the son cannot act for him, in the core or at the platform.
    assert_eq!(refusal(son.app.bills(Some("P1002")).unwrap_err()), Refusal::LinkPending);
    let (status, body) = raw(&platform, &son.app, "P1001", "v1/inbox", "P1002").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("link_pending"), "{body}");

    let requests = father.app.refresh_family().await.unwrap();
    assert_eq!(requests.acted_for_by.len(), 1);
    let approved = father.app.approve_link(&asked.link.link_id).await.unwrap();
    assert_eq!(approved.link.status, LinkStatus::Active);
    assert!(approved.link.expires_at_ms.is_some(), "an adult's consent has an end");
    son.app.refresh_family().await.unwrap();
    assert_eq!(son.app.relatives().unwrap().len(), 1);

    let outbox_before = platform.outbox(0).await.cursor;
    let bill = platform.issue_bill(FATHER, None).await;
    // The doorbell for the father's log goes to the son's device too.
    let pushes = platform.outbox(outbox_before).await.pushes;
    assert!(pushes.iter().any(|p| p.person_id == "P1002" && p.push.token == "son-token-0123456789"), "{pushes:?}");
    son.app.sync_inbox().await.unwrap();
    let seen = son.app.bills(Some("P1002")).unwrap();
    assert_eq!(seen.iter().map(|b| b.bill_id.as_str()).collect::<Vec<_>>(), vec![bill.bill_id.as_str()]);
    assert!(son.app.bills(None).unwrap().is_empty(), "the father's bill is not the son's");

    let father_before = balance(&platform, "P1002").await;
    let son_before = balance(&platform, "P1001").await;
    let quote = son.app.quote(&bill.bill_id, &card(), Some("P1002")).await.unwrap();
    assert_eq!(quote.subject, "P1002");
    assert_eq!(quote.actor, "P1001");
    assert_eq!(quote.link_id.as_deref(), Some(asked.link.link_id.as_str()));
    let payment = son.app.pay(&quote.quote_id, Some("P1002")).await.unwrap();
    assert_eq!(payment.subject, "P1002");
    let account_part = quote.legs.insurance.personal_account;
    assert!(account_part.0 > 0, "the father's personal account pays first");
    assert_eq!(balance(&platform, "P1002").await, Fen(father_before.0 - account_part.0));
    assert_eq!(balance(&platform, "P1001").await, son_before, "the son's own account is untouched");
    // The e-receipt records both identities, and verifies on the son's phone.
    let mut receipts = Vec::new();
    for _ in 0..100 {
        receipts = son.app.receipts(Some("P1002")).await.unwrap();
        if !receipts.is_empty() {
            break;
        }
        son.app.payment(&payment.payment_id, Some("P1002")).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let receipt = &receipts.first().expect("a receipt").receipt;
    assert_eq!(receipt.payer.person_id, "P1002");
    assert_eq!(receipt.presented_by.as_ref().map(|p| p.name.as_str()), Some("张伟 Zhang Wei"));
    assert_eq!(receipt.link_id.as_deref(), Some(asked.link.link_id.as_str()));

    let audit = father.app.family_audit().await.unwrap();
    let actions: Vec<AuditAction> = audit.records.iter().map(|r| r.action).collect();
    for expected in
        [AuditAction::LinkRequested, AuditAction::LinkActivated, AuditAction::BillsViewed, AuditAction::PaymentMade]
    {
        assert!(actions.contains(&expected), "{expected:?} missing from {actions:?}");
    }
    let paid = audit.records.iter().find(|r| r.action == AuditAction::PaymentMade).unwrap();
    assert_eq!((paid.actor.as_str(), paid.link_id.as_str()), ("P1001", asked.link.link_id.as_str()));
    assert_eq!(paid.reference, payment.payment_id);
    // The son reads only his own trail (empty: nobody acts for him).
    assert!(son.app.family_audit().await.unwrap().records.is_empty());

    // The platform's copy of one record is changed: the father's phone refuses the trail.
    let _: serde_json::Value = platform
        .admin()
        .post(
            "admin/v1/family/audit-tamper",
            &serde_json::json!({ "principal": "P1002", "seq": paid.seq, "amount_fen": 1 }),
            Some(ADMIN_TOKEN),
        )
        .await
        .unwrap_or(serde_json::Value::Null);
    match father.app.family_audit().await {
        Err(CoreError::AuditChain(_)) => {}
        other => panic!("a changed record must be detected: {other:?}"),
    }
}

/// Revocation by the principal takes effect at once: the proxy's next step is refused at the
/// platform (a quote made before is not payable), the relative's bills leave the proxy's
/// phone at its next sync, and the core refuses offline once it knows.
#[tokio::test(flavor = "multi_thread")]
async fn revoking_stops_the_proxy_at_its_next_step() {
    let platform = TestPlatform::start().await;
    let son = phone_of(&platform, SON).await;
    let father = phone_of(&platform, FATHER).await;
    let link = son.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap().link;
    father.app.approve_link(&link.link_id).await.unwrap();
    son.app.refresh_family().await.unwrap();
    let bill = platform.issue_bill(FATHER, None).await;
    son.app.sync_inbox().await.unwrap();
    assert_eq!(son.app.bills(Some("P1002")).unwrap().len(), 1);
    let quote = son.app.quote(&bill.bill_id, &card(), Some("P1002")).await.unwrap();

    let revoked = father.app.revoke_link(&link.link_id).await.unwrap();
    assert_eq!(revoked.link.status, LinkStatus::Revoked);
    // The payment in flight is refused at its next step.
    let refused = son.app.pay(&quote.quote_id, Some("P1002")).await.unwrap_err();
    assert_eq!(refusal(refused), Refusal::NoLink);
    let (status, _) = raw(&platform, &son.app, "P1001", "v1/inbox", "P1002").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The son's next sync drops the father's bills; the core then refuses offline.
    son.app.sync_inbox().await.unwrap();
    assert_eq!(refusal(son.app.bills(Some("P1002")).unwrap_err()), Refusal::LinkRevoked);
    let held = son.app.store().vault.get::<serde_json::Value>("family.P1001").unwrap();
    assert!(held.is_some(), "the links are kept, with the revoked one marked");
    assert!(son.app.relatives().unwrap().is_empty());
    // Revoked is final.
    let again = father.app.approve_link(&link.link_id).await.unwrap_err();
    assert_eq!(refusal(again), Refusal::IllegalMove);
    let trail = father.app.family_audit().await.unwrap();
    let last = trail.records.last().unwrap();
    assert_eq!((last.action, last.actor.as_str()), (AuditAction::LinkRevoked, "P1002"));
}

/// A daughter-in-law links her father-in-law, who has no smartphone: the platform sends a
/// code to his phone, he reads it out, she enters it. A wrong code does not link. A
/// sibling-like relationship the household register cannot vouch for has no SMS path, and an
/// adult (not elderly) cannot consent by SMS either.
#[tokio::test(flavor = "multi_thread")]
async fn an_elderly_relative_without_a_smartphone_consents_by_a_code_he_reads_out() {
    let platform = TestPlatform::start().await;
    let wife = phone_of(&platform, WIFE).await;
    let link = wife.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap().link;
    assert_eq!(wife.app.send_link_code(&link.link_id).await.unwrap(), 300);
    let wrong = wife.app.confirm_link_code(&link.link_id, "654321").await.unwrap_err();
    assert!(
        matches!(&wrong, CoreError::Net(n) if n.platform_code() == Some(PlatformCode::WrongVerificationCode)),
        "{wrong:?}"
    );
    let linked = wife.app.confirm_link_code(&link.link_id, CODE).await.unwrap();
    assert_eq!(linked.link.status, LinkStatus::Active);
    assert_eq!(linked.link.basis, Some(carepass_core::wire::LegalBasis::SmsCode));

    // Her husband (an adult of 40) cannot be linked by a code read out: his own device only.
    let spouse = wife.app.link_relative(SON, Relationship::Spouse, None, Limits::default()).await.unwrap().link;
    assert_eq!(refusal(wife.app.send_link_code(&spouse.link_id).await.unwrap_err()), Refusal::ConsentPathNotAllowed);
    assert_eq!(
        refusal(wife.app.confirm_link_code(&spouse.link_id, CODE).await.unwrap_err()),
        Refusal::ConsentPathNotAllowed
    );
    // A service counter verifies him in person instead.
    let counted: serde_json::Value = platform
        .admin()
        .post(
            &format!("admin/v1/family/links/{}/counter-consent", spouse.link_id),
            &serde_json::json!({}),
            Some(ADMIN_TOKEN),
        )
        .await
        .unwrap();
    assert_eq!(counted["link"]["status"], "active");
    assert_eq!(counted["link"]["basis"], "counter_verification");
}

/// Every escalation is refused with its reason, at the platform whatever the client sends.
#[tokio::test(flavor = "multi_thread")]
async fn every_escalation_is_refused_with_its_reason() {
    let platform = TestPlatform::start().await;
    let son = phone_of(&platform, SON).await;
    let father = phone_of(&platform, FATHER).await;
    let wife = phone_of(&platform, WIFE).await;
    let stranger = phone_of(&platform, STRANGER).await;

    // No link: a stranger naming the son.
    let (status, body) = raw(&platform, &stranger.app, "P3001", "v1/inbox", "P1001").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("no_link"), "{body}");
    // Not in the household register.
    let e = stranger.app.link_relative(SON, Relationship::Sibling, None, Limits::default()).await;
    assert!(e.is_ok(), "a sibling link can be asked for; it waits for the principal");
    let e = stranger.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap_err();
    assert_eq!(refusal(e), Refusal::RelationshipNotVerified);
    // A minor is linked by a parent only.
    let e = father.app.link_relative(DAUGHTER, Relationship::Grandchild, None, Limits::default()).await.unwrap_err();
    assert_eq!(refusal(e), Refusal::MinorNeedsParent);
    // Oneself; twice.
    assert_eq!(
        refusal(son.app.link_relative(SON, Relationship::Spouse, None, Limits::default()).await.unwrap_err()),
        Refusal::SelfLink
    );

    // A link with codes only: bills are refused in the core and at the platform.
    let codes_only = son
        .app
        .link_relative(FATHER, Relationship::Parent, Some(vec![Scope::ShowCode]), Limits::default())
        .await
        .unwrap()
        .link;
    assert_eq!(
        refusal(son.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap_err()),
        Refusal::AlreadyLinked
    );
    father.app.approve_link(&codes_only.link_id).await.unwrap();
    son.app.refresh_family().await.unwrap();
    assert_eq!(refusal(son.app.bills(Some("P1002")).unwrap_err()), Refusal::ScopeMissing(Scope::ViewBills));
    let (status, body) = raw(&platform, &son.app, "P1001", "v1/inbox", "P1002").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("scope_missing") && body.contains("view_bills"), "{body}");
    let (status, body) = raw(&platform, &son.app, "P1001", "v1/prescriptions", "P1002").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A proxy of a proxy: the wife acts for her husband, who acts for his father; she may not
    // reach the father through him.
    let husband = wife.app.link_relative(SON, Relationship::Spouse, None, Limits::default()).await.unwrap().link;
    son.app.approve_link(&husband.link_id).await.unwrap();
    let (status, body) = raw(&platform, &wife.app, "P1004", "v1/inbox", "P1002").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("no_link"), "{body}");
    // Acting for someone, she cannot make links in their name.
    let token = stored_tokens(&wife.app, "P1004").access_token;
    let forged = http()
        .post(format!("{}/v1/family/links", platform.url()))
        .bearer_auth(token)
        .header("x-carepass-subject", "P1001")
        .json(&serde_json::json!({ "principal_phone": FATHER, "relationship": "parent" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.text().await.unwrap().contains("not_the_principal"));
    // Only the principal renews or assents.
    let e = son.app.renew_link(&codes_only.link_id).await.unwrap_err();
    assert_eq!(refusal(e), Refusal::NotThePrincipal);
    // Someone else's link is not found at all.
    let e = stranger.app.revoke_link(&codes_only.link_id).await.unwrap_err();
    assert!(matches!(&e, CoreError::Net(n) if n.platform_code() == Some(PlatformCode::NotFound)), "{e:?}");
}

/// Limits: a payment over the link's per-payment limit is refused; the monthly limit holds
/// when the proxy pays from two phones at once (exactly one passes).
#[tokio::test(flavor = "multi_thread")]
async fn limits_hold_per_payment_and_per_month_under_concurrency() {
    let platform = TestPlatform::start().await;
    let son_a = phone_of(&platform, SON).await;
    let son_b = phone_of(&platform, SON).await;
    let father = phone_of(&platform, FATHER).await;
    let bill_1 = platform.issue_bill(FATHER, None).await;
    let bill_2 = platform.issue_bill(FATHER, None).await;
    // What one bill takes from the family: quote it as the father would.
    let probe = father.app.quote(&bill_1.bill_id, &card(), None).await.unwrap();
    let one = probe.legs.insurance.personal_account.0 + probe.legs.cash.amount.0;
    assert!(one > 0);

    let tight = Limits { per_payment: Some(Fen(one - 1)), per_month: None };
    let link = son_a.app.link_relative(FATHER, Relationship::Parent, None, tight).await.unwrap().link;
    father.app.approve_link(&link.link_id).await.unwrap();
    son_a.app.refresh_family().await.unwrap();
    let q = son_a.app.quote(&bill_1.bill_id, &card(), Some("P1002")).await.unwrap();
    assert_eq!(refusal(son_a.app.pay(&q.quote_id, Some("P1002")).await.unwrap_err()), Refusal::OverPaymentLimit);
    father.app.revoke_link(&link.link_id).await.unwrap();

    // Room for one bill a month, two phones paying two bills at the same moment.
    let monthly = Limits { per_payment: None, per_month: Some(Fen(one + one / 2)) };
    let link = son_a.app.link_relative(FATHER, Relationship::Parent, None, monthly).await.unwrap().link;
    father.app.approve_link(&link.link_id).await.unwrap();
    son_a.app.refresh_family().await.unwrap();
    son_b.app.refresh_family().await.unwrap();
    let qa = son_a.app.quote(&bill_1.bill_id, &card(), Some("P1002")).await.unwrap();
    let qb = son_b.app.quote(&bill_2.bill_id, &card(), Some("P1002")).await.unwrap();
    let (a, b) = tokio::join!(son_a.app.pay(&qa.quote_id, Some("P1002")), son_b.app.pay(&qb.quote_id, Some("P1002")));
    let passed = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(passed, 1, "exactly one payment fits the monthly limit: {a:?} / {b:?}");
    let failed = match (a, b) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        _ => unreachable!("exactly one passed"),
    };
    assert_eq!(refusal(failed), Refusal::OverMonthlyLimit);
}

/// A parent's link to a child moves with platform time: at 14 the parent keeps codes and
/// payments but loses bill details until the teen assents on their own device; at 18 the
/// link waits for the new adult's consent. Each move is in the child's audit.
#[tokio::test(flavor = "multi_thread")]
async fn a_childs_link_changes_at_14_and_waits_for_consent_at_18() {
    let platform = TestPlatform::start().await;
    let parent = phone_of(&platform, SON).await;
    let link = parent.app.link_relative(DAUGHTER, Relationship::Child, None, Limits::default()).await.unwrap();
    assert_eq!(link.link.status, LinkStatus::Active, "a minor child is linked at once");
    assert!(link.effective_scopes.contains(&Scope::ViewBills));

    // 张小雨 was born 2017-06-01: move platform time to her 14th birthday.
    let now = platform.advance_clock(0).await.server_time_ms;
    let fourteenth = chrono::NaiveDate::from_ymd_opt(2031, 6, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let to_14 = fourteenth.and_utc().timestamp_millis() - 8 * 3_600_000 - now + 60_000;
    platform.advance_clock(to_14).await;
    parent.app.sign_in(SON, CODE).await.unwrap();
    let teen = parent.app.refresh_family().await.unwrap().acting_for.remove(0);
    assert_eq!(teen.link.band, carepass_core::wire::BandName::Teen);
    assert!(teen.effective_scopes.contains(&Scope::ShowCode) && teen.effective_scopes.contains(&Scope::PayBills));
    assert!(!teen.effective_scopes.contains(&Scope::ViewBills), "{:?}", teen.effective_scopes);
    assert_eq!(refusal(parent.app.bills(Some("P1003")).unwrap_err()), Refusal::ScopeMissing(Scope::ViewBills));

    // The teen assents on her own phone; bill details come back.
    let daughter = phone_of(&platform, DAUGHTER).await;
    let assented = daughter.app.assent_link(&teen.link.link_id, vec![Scope::ViewBills]).await.unwrap();
    assert!(assented.effective_scopes.contains(&Scope::ViewBills));
    parent.app.refresh_family().await.unwrap();
    assert!(parent.app.bills(Some("P1003")).is_ok());

    // Four years on she is 18: the link waits for her consent as an adult.
    platform.advance_clock(4 * 366 * DAY_MS).await;
    parent.app.sign_in(SON, CODE).await.unwrap();
    let adult = parent.app.refresh_family().await.unwrap().acting_for.remove(0);
    assert_eq!(adult.link.status, LinkStatus::Pending);
    assert_eq!(adult.link.reason, carepass_core::wire::StatusReason::CameOfAge);
    assert!(adult.effective_scopes.is_empty());
    daughter.app.sign_in(DAUGHTER, CODE).await.unwrap();
    let consented = daughter.app.approve_link(&adult.link.link_id).await.unwrap();
    assert_eq!(consented.link.status, LinkStatus::Active);
    assert!(consented.link.expires_at_ms.is_some(), "now an adult-to-adult link with an end");
    let trail = daughter.app.family_audit().await.unwrap();
    let bands = trail.records.iter().filter(|r| r.action == AuditAction::LinkBandChanged).count();
    assert_eq!(bands, 2, "{:?}", trail.records);
}

/// The rules are data: an admin replaces them (teens from 12) and a link to a child of 12
/// loses bill details at once, with no code change.
#[tokio::test(flavor = "multi_thread")]
async fn new_rules_change_what_a_link_allows_without_a_code_change() {
    let platform = TestPlatform::start().await;
    let parent = phone_of(&platform, SON).await;
    // 张小航 was born 2012-01-20: 14 now, a teen already; 张小雨 is 9.
    let link = parent.app.link_relative(DAUGHTER, Relationship::Child, None, Limits::default()).await.unwrap();
    assert!(link.effective_scopes.contains(&Scope::ViewBills));
    put_rules(&platform, |rules| {
        rules["age_bands"][1]["from_age"] = 9.into();
    })
    .await;
    let now = parent.app.refresh_family().await.unwrap().acting_for.remove(0);
    assert_eq!(now.link.band, carepass_core::wire::BandName::Teen);
    assert!(!now.effective_scopes.contains(&Scope::ViewBills));
    assert_eq!(now.link.rules_version, 2);
}

async fn scan(platform: &TestPlatform, payload: &str) -> carepass_core::wire::ScanOutcome {
    scan_for(platform, payload, carepass_core::domain::voucher::Purpose::OutpatientSettlement).await
}

async fn scan_for(
    platform: &TestPlatform,
    payload: &str,
    purpose: carepass_core::domain::voucher::Purpose,
) -> carepass_core::wire::ScanOutcome {
    platform
        .admin()
        .post("v1/scans", &carepass_core::wire::ScanRequest { payload: payload.into(), purpose }, Some(ADMIN_TOKEN))
        .await
        .expect("scan answered")
}

/// The son shows his father's code from his own phone: signed by the son's device, the proxy
/// flag set and the link inside. The scanner sees the father as the holder, presented by his
/// son under the link, and the father's audit records the scan. A link id forged onto a
/// stranger's own code is refused, and so is the son's code once the link is revoked.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_shows_a_relatives_code_and_the_scanner_sees_both_people() {
    use base64::Engine;
    use carepass_core::domain::voucher::rotator::{make_code, CodeSource};
    use carepass_core::domain::voucher::{format, Purpose};
    let platform = TestPlatform::start().await;
    let son = phone_of(&platform, SON).await;
    let father = phone_of(&platform, FATHER).await;
    let stranger = phone_of(&platform, STRANGER).await;
    let link = son.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap().link;
    father.app.approve_link(&link.link_id).await.unwrap();
    son.app.refresh_family().await.unwrap();

    let code = son.app.current_code(Purpose::OutpatientSettlement, false, Some("P1002")).unwrap();
    assert_eq!(code.link_id.as_deref(), Some(link.link_id.as_str()));
    let seen = scan(&platform, &code.text).await;
    assert!(seen.accepted, "{seen:?}");
    assert!(seen.proxy);
    assert_eq!(seen.holder.as_ref().map(|h| h.name.as_str()), Some("张建国 Zhang Jianguo"));
    assert_eq!(seen.presenter.as_ref().map(|p| p.name.as_str()), Some("张伟 Zhang Wei"));
    assert_eq!(seen.link_id.as_deref(), Some(link.link_id.as_str()));
    assert_eq!(seen.relationship, Some(Relationship::Parent));
    let trail = father.app.family_audit().await.unwrap();
    assert!(trail.records.iter().any(|r| r.action == AuditAction::CodeScanned && r.actor == "P1001"));
    // The son's own code is his own.
    let own = scan(&platform, &son.app.current_code(Purpose::OutpatientSettlement, false, None).unwrap().text).await;
    assert_eq!(own.holder.map(|h| h.person_id), Some("P1001".into()));
    assert!(!own.proxy && own.link_id.is_none());

    // The stranger puts the son's link id (and the proxy flag) into a code signed by her own
    // device: the signature is hers and valid, but she is not the link's proxy.
    let pkcs8 = {
        let encoded: String = stranger.app.store().vault.get("device-key").unwrap().unwrap();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).unwrap()
    };
    let key = carepass_core::domain::crypto::SoftwareDeviceKey::from_pkcs8(&pkcs8).unwrap();
    let device_id = format::device_id_to_bytes(&stranger.app.current_profile().unwrap().unwrap().device_id).unwrap();
    let source = CodeSource { keys: &key, device_id, certificate: None, period_s: 30 };
    let link_bytes = format::link_id_to_bytes(&link.link_id).unwrap();
    let now = stranger.app.client().server_now_ms();
    let forged = make_code(&source, Purpose::OutpatientSettlement, false, Some(link_bytes), now, [7; 4]).unwrap();
    let refused = scan(&platform, &forged.text).await;
    assert!(!refused.accepted);
    assert_eq!(refused.reason.as_deref(), Some("not_the_proxy"));
    let unknown = make_code(&source, Purpose::OutpatientSettlement, false, Some([0xAB; 8]), now, [8; 4]).unwrap();
    assert_eq!(scan(&platform, &unknown.text).await.reason.as_deref(), Some("unknown_link"));

    // Revoked: a code the son made before (not yet scanned) no longer verifies.
    let before = son.app.current_code(Purpose::PharmacyPurchase, false, Some("P1002")).unwrap();
    father.app.revoke_link(&link.link_id).await.unwrap();
    let after = scan_for(&platform, &before.text, Purpose::PharmacyPurchase).await;
    assert!(!after.accepted);
    assert_eq!(after.reason.as_deref(), Some("link_revoked"));
}

/// 家庭共济: the son pays his father's bill and lets his own personal account give what the
/// father's leaves. Each account moves once, by the quoted amounts; a partial refund gives
/// each source back its part (the giver's to the giver) and the rest at the end; mutual aid
/// is refused where the rules do not allow it (a change of rules, no code change) and for
/// oneself.
#[tokio::test(flavor = "multi_thread")]
async fn a_son_gives_from_his_own_account_for_his_fathers_bill_and_a_refund_gives_it_back() {
    let platform = TestPlatform::start().await;
    let son = phone_of(&platform, SON).await;
    let father = phone_of(&platform, FATHER).await;
    let link = son.app.link_relative(FATHER, Relationship::Parent, None, Limits::default()).await.unwrap().link;
    father.app.refresh_family().await.unwrap();
    father.app.approve_link(&link.link_id).await.unwrap();
    son.app.refresh_family().await.unwrap();
    let set_balance = |person: &'static str, fen: i64| {
        let admin = platform.admin();
        async move {
            let _: serde_json::Value = admin
                .post(
                    &format!("admin/v1/accounts/{person}"),
                    &serde_json::json!({ "balance_fen": fen }),
                    Some(ADMIN_TOKEN),
                )
                .await
                .expect("balance set");
        }
    };
    set_balance("P1002", 1_000).await; // the father's account is nearly empty
    set_balance("P1001", 5_000).await;
    let bill = platform.issue_bill(FATHER, None).await;
    son.app.sync_inbox().await.unwrap();

    // Without mutual aid: the father's 10 yuan, then the card.
    let plain = son.app.quote(&bill.bill_id, &card(), Some("P1002")).await.unwrap();
    assert_eq!((plain.legs.insurance.personal_account, plain.legs.insurance.mutual_aid), (Fen(1_000), Fen(0)));
    let rest = plain.legs.cash.amount;
    assert!(rest.0 > 5_000, "the bill leaves more than the son's balance: {rest:?}");

    let giving = QuoteOptions { mutual_aid: true, ..card() };
    let quote = son.app.quote(&bill.bill_id, &giving, Some("P1002")).await.unwrap();
    let ins = &quote.legs.insurance;
    assert_eq!((ins.fund, ins.personal_account), (plain.legs.insurance.fund, Fen(1_000)));
    assert_eq!(ins.mutual_aid, Fen(5_000), "the son's whole balance gives");
    assert_eq!(ins.mutual_aid_from.as_deref(), Some("P1001"));
    assert_eq!(quote.legs.cash.amount, Fen(rest.0 - 5_000));
    assert_eq!(quote.settlement.mutual_aid_balance_before, Fen(5_000));

    let payment = son.app.pay(&quote.quote_id, Some("P1002")).await.unwrap();
    assert_eq!(payment.insurance.mutual_aid_fen, Fen(5_000));
    assert_eq!(payment.insurance.mutual_aid_from.as_deref(), Some("P1001"));
    assert_eq!(balance(&platform, "P1002").await, Fen(0));
    assert_eq!(balance(&platform, "P1001").await, Fen(0), "the giver is debited exactly what was quoted");

    // A refund of every line: each source gets back what it paid, the giver included.
    let refunded: serde_json::Value = platform
        .admin()
        .post(
            &format!("admin/v1/bills/{}/refunds", bill.bill_id),
            &serde_json::json!({ "refund_id": "R-MA-1", "reason": "visit cancelled" }),
            Some(ADMIN_TOKEN),
        )
        .await
        .expect("refunded");
    assert_eq!(refunded["split"]["mutual_aid"], 5_000, "{refunded}");
    assert_eq!(refunded["split"]["personal_account"], 1_000, "{refunded}");
    assert_eq!(balance(&platform, "P1001").await, Fen(5_000));
    assert_eq!(balance(&platform, "P1002").await, Fen(1_000));

    // Asked for oneself: nobody gives to themselves.
    let own = platform.issue_bill(SON, None).await;
    son.app.sync_inbox().await.unwrap();
    match son.app.quote(&own.bill_id, &giving, None).await {
        Err(CoreError::Net(e)) => assert_eq!(e.platform_code(), Some(PlatformCode::InvalidRequest), "{e}"),
        other => panic!("mutual aid for oneself must be refused: {other:?}"),
    }

    // The rules stop covering parents: refused with its reason, no code changed.
    put_rules(&platform, |rules| {
        rules["mutual_aid"]["relationships"] = serde_json::json!([{ "relationship": "spouse", "from": "2021-04-13" }]);
    })
    .await;
    let again = platform.issue_bill(FATHER, None).await;
    son.app.sync_inbox().await.unwrap();
    let refused = son.app.quote(&again.bill_id, &giving, Some("P1002")).await.unwrap_err();
    assert_eq!(refusal(refused), Refusal::MutualAidRelationship);
    // Without mutual aid the same bill still quotes.
    son.app.quote(&again.bill_id, &card(), Some("P1002")).await.unwrap();
}

/// Publishes the demo family rules as version 2, changed by `change`, at the platform.
async fn put_rules(platform: &TestPlatform, change: impl FnOnce(&mut serde_json::Value)) {
    let mut rules: serde_json::Value =
        serde_json::from_str(carepass_core::domain::family::rules::DEMO_RULES_JSON).unwrap();
    rules["version"] = 2.into();
    change(&mut rules);
    let put = http()
        .put(format!("{}/admin/v1/family/rules", platform.url()))
        .bearer_auth(ADMIN_TOKEN)
        .json(&rules)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK, "{}", put.text().await.unwrap());
}
