package app.carepass

// The types an app needs, re-exported under `app.carepass` so that apps import the facade
// package only. The declarations live in the uniffi-generated `app.carepass.ffi` package.

/**
 * Every error a CarePass call reports. A sealed class: `when` over it is exhaustive.
 *
 * The subclass is the kind the UI switches on, and the kinds that need more say it with an
 * enum, never a string: `InvalidInput(field: InputField)`, `Platform(code: PlatformErrorCode,
 * status, retryAfterS)`, `Refused(kind: RefusalKind)`, `InvalidPush(kind: PushRefusal)`,
 * `QuoteRefused(kind: QuoteProblem)`, `InvalidReceipt(kind: ReceiptProblem)`,
 * `FamilyRefused(kind: FamilyProblem)`; `PaymentOutcomeUnknown(billId)` names the bill whose
 * payment has no answer yet.
 * Every subclass has a `reason`, a sentence for developers (never personal data). The kinds:
 * `InvalidInput`, `InsecureServerUrl`, `Network`, `Timeout`, `Platform`,
 * `InvalidServerAnswer`, `WrongVerificationCode`, `NotEnrolled`, `NotSignedIn`,
 * `SessionExpired`, `NotLinked`, `FamilyRefused`, `AuditTampered`, `OtherPlatform`,
 * `StoreTampered`, `WrongDataKey`, `MissingDataKey`, `StoreBusy`, `Storage`, `KeyStore`,
 * `Refused`, `InvalidPush`, `NoOfflineCertificate`, `NoPrescription`, `QuoteRefused`,
 * `PaymentOutcomeUnknown`, `InvalidReceipt`, `Closed`, `NotInExtension`, `Internal`.
 *
 * A typealias cannot reach nested classes, so code that matches the kinds imports the class
 * itself: `import app.carepass.ffi.CarePassException`, then
 * `catch (e: CarePassException.Platform) { if (e.code == PlatformErrorCode.ALREADY_ORDERED) … }`.
 */
typealias CarePassException = app.carepass.ffi.CarePassException

/** The signed-in person, as the app shows them (phone masked, age computed by the core). */
typealias Profile = app.carepass.ffi.Profile

/**
 * Who is signed in, as the core's session stream tells it ([CarePassClient.sessionState]):
 * `SignedOut`, `SignedIn(profile)`, or `Ended` (the platform ended the session: sign in
 * again). Code that matches the cases imports `app.carepass.ffi.SessionState`.
 */
typealias SessionState = app.carepass.ffi.SessionState

/** The profile of a [SessionState.SignedIn] state, `null` for the others. */
val SessionState.signedInProfile: Profile?
    get() = (this as? app.carepass.ffi.SessionState.SignedIn)?.profile

/** What [CarePassClient.logout] did: whether the platform confirmed it revoked the session. */
typealias SignOutResult = app.carepass.ffi.SignOutResult

/** The input a [CarePassException] `InvalidInput` refuses (`PHONE`, `LIMIT`, `DELIVERY_ADDRESS`…). */
typealias InputField = app.carepass.ffi.InputField

/** The platform's error code in a [CarePassException] `Platform` (`NOT_FOUND`, `CONFLICT`, `ALREADY_ORDERED`, `QUOTE_USED`, `BILL_NOT_PAYABLE`…; `UNKNOWN` for a code newer than this library). */
typealias PlatformErrorCode = app.carepass.ffi.PlatformErrorCode

/** Which rule a [CarePassException] `Refused` applied (settlement, ranking, amounts). */
typealias RefusalKind = app.carepass.ffi.RefusalKind

/** Why a push is a [CarePassException] `InvalidPush`: malformed, unknown key, forged, wrong recipient, stale, from the future. */
typealias PushRefusal = app.carepass.ffi.PushRefusal

/** The person's insurance scheme. */
typealias InsuranceType = app.carepass.ffi.InsuranceType

/** Where the core keeps its data key; see [InMemorySecretStore] and, on Android, `KeystoreSecretStore`. */
typealias SecretStore = app.carepass.ffi.SecretStore

/** The device's P-256 signing key; on Android, `AndroidKeystoreDeviceKey`. */
typealias DeviceKeyStore = app.carepass.ffi.DeviceKeyStore

/**
 * What [SecretStore] and [DeviceKeyStore] implementations throw when they fail
 * (`app.carepass.ffi.PlatformException.Failed`); the core reports it as
 * [CarePassException] `KeyStore`. Other exceptions are caught too, but their stack trace
 * becomes the reason.
 */
typealias PlatformException = app.carepass.ffi.PlatformException

/** Receives the core's log lines (they never contain personal data). Must not throw. */
typealias Logger = app.carepass.ffi.Logger

/** Level of a core log line. */
typealias LogLevel = app.carepass.ffi.LogLevel

/** The options [CarePassClient.open] passes to the core; build one with [carePassConfig]. */
typealias CarePassConfig = app.carepass.ffi.CarePassConfig

/**
 * An e-voucher code ready to draw ([CarePassClient.currentCode], [CarePassClient.codes]):
 * the `CP1:` payload, its QR matrix (`qrSize` × `qrSize` modules, row-major, 1 = dark, no
 * quiet zone: draw four light modules around), and its times in platform ms.
 */
typealias VoucherCode = app.carepass.ffi.VoucherCode

/** What a code is shown for: registration, outpatient settlement, pharmacy purchase, prescription download. */
typealias CodePurpose = app.carepass.ffi.CodePurpose

/**
 * The verifier a scanner terminal app runs (no network): trusted issuer keys, revoked
 * devices, clock skew allowance and its own replay cache, so each code is accepted once
 * per verifier. Close it when done.
 */
typealias VoucherVerifier = app.carepass.ffi.VoucherVerifier

/** A trusted issuer key of a [VoucherVerifier] (from the platform's trust list). */
typealias IssuerKey = app.carepass.ffi.IssuerKey

/** A device the scanner's platform directory knows, for online-profile codes. */
typealias DirectoryDevice = app.carepass.ffi.DirectoryDevice

/** A [VoucherVerifier]'s verdict: accepted, or the rejection `reason` code. */
typealias ScanVerdict = app.carepass.ffi.ScanVerdict

/**
 * A bill the clinic issued to the signed-in person ([CarePassClient.bills]): hospital,
 * department, doctor, the billed items, the total, its [BillState], and its times (ms since
 * the Unix epoch, platform time). Amounts are in fen (1 yuan = 100 fen), never floating point.
 */
typealias Bill = app.carepass.ffi.Bill

/** A line of a [Bill]: catalogue code, name, insurance category, quantity, unit price and amount (fen). */
typealias BillItem = app.carepass.ffi.BillItem

/** Insurance category of a [BillItem] (医保目录): `A` 甲类 fully eligible, `B` 乙类 after a self-pay share, `C` 丙类 not covered. */
typealias ItemCategory = app.carepass.ffi.ItemCategory

/** Where a [Bill] is: pending, paying, paid, failed, expired (unpaid past its due time), cancelled, refunded. */
typealias BillState = app.carepass.ffi.BillState

/** One change to the inbox ([CarePassClient.inbox], [CarePassClient.syncInbox]): its [ChangeKind] and the bill as it now is. */
typealias InboxChange = app.carepass.ffi.InboxChange

/** `ADDED`: a bill the phone had not seen; `UPDATED`: a bill whose state or content changed. */
typealias ChangeKind = app.carepass.ffi.ChangeKind

/**
 * What [CarePassClient.inbox] hands over: the subject's bills now (newest first, expiry
 * applied) and the changes that led there (empty in the first update).
 */
typealias InboxUpdate = app.carepass.ffi.InboxUpdate

/**
 * What [CarePassClient.handlePush] did: `Pulled(changes)`, `AlreadySeen` or `NotYetReadable`.
 * Like [CarePassException], code that matches the cases imports the class itself
 * (`import app.carepass.ffi.PushResult`): a typealias cannot reach its nested classes.
 */
typealias PushResult = app.carepass.ffi.PushResult

/** A prescription of the signed-in person ([CarePassClient.prescriptions]): hospital, doctor, diagnosis, the drugs, issue and expiry times (ms). */
typealias Prescription = app.carepass.ffi.Prescription

/** A line of a [Prescription]: drug code and quantity. */
typealias PrescribedDrug = app.carepass.ffi.PrescribedDrug

/**
 * What [CarePassClient.rankPharmacies] asks: where (`lat`, `lon`), and optionally the
 * prescription (`null`: the newest), delivery, the radius (`null`: 5 km), open now, and how
 * many quotes (`null`: 20). The core resolves the defaults.
 */
typealias RankRequest = app.carepass.ffi.RankRequest

/**
 * The answer of [CarePassClient.rankPharmacies]: the prescription ranked, the quotes best
 * first, how many candidates were complete, partial or without stock, and the best pair when
 * no single pharmacy fills everything.
 */
typealias PharmacyRanking = app.carepass.ffi.PharmacyRanking

/**
 * What one pharmacy would charge for a prescription, in fen: list cost, the fund's, personal
 * account's and cash shares, the delivery fee, and [PharmacyQuote.netCostFen] (list cost −
 * fund + delivery fee, what the patient pays); its distance and, for delivery, minutes.
 */
typealias PharmacyQuote = app.carepass.ffi.PharmacyQuote

/** Two pharmacies that together fill a prescription, and their combined net cost. */
typealias PharmacyPair = app.carepass.ffi.PharmacyPair

/** Where an order is delivered: address text, location (WGS-84) and an 11-digit contact phone. */
typealias DeliveryDetails = app.carepass.ffi.DeliveryDetails

/** An order of a prescription from a pharmacy ([CarePassClient.placeOrder]): its [OrderStatus], delivery, and the quote it was placed on. */
typealias PharmacyOrder = app.carepass.ffi.PharmacyOrder

/** Where a [PharmacyOrder] is: accepted, ready (pickup), out for delivery, completed, cancelled. */
typealias OrderStatus = app.carepass.ffi.OrderStatus

/**
 * A checked quote (预结算, [CarePassClient.quote]): what each source pays, in fen, to show
 * before the patient confirms: `fundFen` (统筹基金), `personalAccountFen` (个人账户),
 * `mutualAidFen` (家庭共济, with `mutualAidFrom`) and `cashFen` (自费, through the masked
 * `channel`), which sum to `totalFen`; the settled [QuoteLine]s; `expiresAtMs` (platform
 * time, five minutes after it was made). The core checked it against the bill on the phone.
 */
typealias PaymentQuote = app.carepass.ffi.PaymentQuote

/** One bill line as a [PaymentQuote] settled it: amount, the fund's share, the class B first self-pay and the class C amount (fen). */
typealias QuoteLine = app.carepass.ffi.QuoteLine

/**
 * A payment as it stands ([CarePassClient.pay], [CarePassClient.payment]): its
 * [PaymentStatus], the amounts by source (fen), `cashDueFen` (status `CASH_DUE`),
 * `refundedFen`, the failure (`failureCode`, `failureMessage`), what the patient must do
 * (`actionKind` `confirm_code`, `actionMessage`, `actionExpiresAtMs`) and how many receipts
 * it has.
 */
typealias Payment = app.carepass.ffi.Payment

/**
 * Where a [Payment] is: `PROCESSING`, `REQUIRES_ACTION` (the bank's code:
 * [CarePassClient.confirmPayment]), `SUCCEEDED`, `FAILED` (nothing charged; the bill can be
 * paid again), `CASH_DUE` (the insurance paid, the card was declined: [CarePassClient.payCashDue]),
 * `PARTLY_REFUNDED`, `REFUNDED`.
 */
typealias PaymentStatus = app.carepass.ffi.PaymentStatus

/** Why a [CarePassException] `QuoteRefused` refuses a quote: invariant, bill mismatch, legs mismatch, wrong party, expired, lifetime, not payable. */
typealias QuoteProblem = app.carepass.ffi.QuoteProblem

/**
 * An electronic receipt (医疗收费电子票据, [CarePassClient.receipts]) whose signature, check
 * code and amounts the core verified: code, number, check code, payee, payer, the bill and
 * payment, the amounts by source (fen), the masked channel, the lines, and `svg`, a
 * wallet-style card to draw. `writeOff` marks a write-off (冲红) after a refund.
 */
typealias VerifiedReceipt = app.carepass.ffi.VerifiedReceipt

/** A line of a [VerifiedReceipt]: code, name, category, quantity and amount (fen). */
typealias ReceiptLine = app.carepass.ffi.ReceiptLine

/** Why a [CarePassException] `InvalidReceipt` refuses a receipt: malformed, unknown key, forged, check code, amounts. */
typealias ReceiptProblem = app.carepass.ffi.ReceiptProblem

/** The credit pay-later line (信用就医), fen. */
typealias CreditLine = app.carepass.ffi.CreditLine

/** One use of the credit line, with its due date. */
typealias CreditDraw = app.carepass.ffi.CreditDraw
