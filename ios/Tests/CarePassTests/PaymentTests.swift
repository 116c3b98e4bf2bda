// Mixed payment (docs/payments.md) through the Swift facade against the real sandbox and its
// card channel (docs/sandbox.md, "Payment channel"): one confirmation paying from the pooled
// fund, the personal account and a card with a receipt the core verified; a declined card; a
// card declined at capture and the cash still due paid with another; the bank's second
// confirmation; the payment stream; and channel text the core refuses. The admin routes play
// the clinic (issue the demo bill) and set the personal account's balance.

import Foundation
import XCTest
import CarePass
import CarePassFFI

final class PaymentTests: SandboxTestCase {
    /// The sandbox's test cards as channel text (docs/sandbox.md, "Test cards").
    private enum Card {
        /// Succeeds.
        static let ok = "card:4242424242424242"
        /// The hold is declined (`insufficient_funds`): the payment fails, nothing charged.
        static let insufficientFunds = "card:4000000000009995"
        /// The hold succeeds, the capture is declined (`card_declined`): cash due.
        static let declinedAtCapture = "card:4000000000000341"
        /// Needs the bank's second confirmation, code `bankCode`.
        static let needsCode = "card:4000000000003220"
    }

    /// The code the sandbox's bank accepts for `Card.needsCode`.
    private static let bankCode = "123456"

    /// Zhang Wei's person id in the demo seed.
    private static let zhangWeiId = "P1001"

    /// A small personal account, so that it pays a part of the demo bill and the card the rest.
    private static let balanceFen: Int64 = 5_000

    /// A client signed in as Zhang Wei, whose personal account holds `balanceFen`, and the
    /// demo bill issued to him (not pulled yet: the quote pulls it).
    private func signedInWithADemoBill() async throws -> (CarePassClient, Sandbox.IssuedBill) {
        let client = try makeClient()
        try await client.signIn(phone: Sandbox.zhangWei, code: Sandbox.code)
        try await sandbox.setBalance(personId: Self.zhangWeiId, fen: Self.balanceFen)
        let issued = try await sandbox.issueDemoBill(phone: Sandbox.zhangWei)
        return (client, issued)
    }

    // MARK: - Paying from three sources

    func testOneConfirmationPaysFromTheFundTheAccountAndACardWithAVerifiedReceipt() async throws {
        let (client, issued) = try await signedInWithADemoBill()

        let quote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.ok)

        XCTAssertEqual(quote.billId, issued.billId)
        XCTAssertEqual(quote.subject, Self.zhangWeiId)
        XCTAssertEqual(quote.totalFen, issued.totalFen)
        XCTAssertGreaterThan(quote.fundFen, 0, "the pooled fund pays a part")
        XCTAssertGreaterThan(quote.personalAccountFen, 0, "the personal account pays a part")
        XCTAssertLessThanOrEqual(quote.personalAccountFen, Self.balanceFen)
        XCTAssertGreaterThan(quote.cashFen, 0, "the card pays the rest")
        XCTAssertEqual(quote.fundFen + quote.personalAccountFen + quote.mutualAidFen + quote.cashFen, issued.totalFen)
        XCTAssertTrue(quote.useAccount)
        XCTAssertTrue(quote.channel.hasSuffix("4242"), quote.channel)
        XCTAssertFalse(quote.channel.contains("4242424242424242"), "the card is shown masked: \(quote.channel)")
        XCTAssertEqual(quote.lines.count, 7, "one line per item of the demo bill")

        let payment = try await client.pay(quoteId: quote.quoteId)

        XCTAssertEqual(payment.status, .succeeded, "\(payment)")
        XCTAssertEqual(payment.billId, issued.billId)
        XCTAssertEqual(payment.subject, Self.zhangWeiId)
        XCTAssertEqual(payment.actor, Self.zhangWeiId)
        XCTAssertEqual(payment.totalFen, issued.totalFen)
        XCTAssertEqual(payment.fundFen, quote.fundFen)
        XCTAssertEqual(payment.personalAccountFen, quote.personalAccountFen)
        XCTAssertEqual(payment.mutualAidFen, quote.mutualAidFen)
        XCTAssertEqual(payment.cashFen, quote.cashFen)
        XCTAssertNil(payment.failureCode)
        XCTAssertEqual(payment.receiptCount, 1)
        let balance = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(balance, Self.balanceFen - quote.personalAccountFen, "the account paid its share")
        XCTAssertEqual(try client.paymentsUnresolved(), 0)
        XCTAssertEqual(try client.payments(), [payment], "the phone keeps the answer")

        // The receipt verifies on the phone, and its amounts by source are the payment's.
        let receipts = try await client.receipts()
        XCTAssertEqual(receipts.count, 1)
        let receipt = try XCTUnwrap(receipts.first)
        XCTAssertEqual(receipt.paymentId, payment.paymentId)
        XCTAssertEqual(receipt.billId, issued.billId)
        XCTAssertFalse(receipt.writeOff)
        XCTAssertNil(receipt.writesOffNumber)
        XCTAssertEqual(receipt.totalFen, payment.totalFen)
        XCTAssertEqual(receipt.fundFen, payment.fundFen)
        XCTAssertEqual(receipt.personalAccountFen, payment.personalAccountFen)
        XCTAssertEqual(receipt.mutualAidFen, payment.mutualAidFen)
        XCTAssertEqual(receipt.cashFen, payment.cashFen)
        XCTAssertEqual(
            receipt.fundFen + receipt.personalAccountFen + receipt.mutualAidFen + receipt.cashFen,
            payment.totalFen
        )
        XCTAssertEqual(receipt.lines.map(\.amountFen).reduce(0, +), payment.totalFen, "the lines sum to the total")
        XCTAssertEqual(receipt.receiptCode.count, 8, receipt.receiptCode)
        XCTAssertEqual(receipt.receiptNumber.count, 10, receipt.receiptNumber)
        XCTAssertEqual(receipt.checkCode.count, 6, receipt.checkCode)
        XCTAssertTrue(receipt.channel.hasSuffix("4242"), receipt.channel)
        XCTAssertTrue(receipt.svg.hasPrefix("<svg"), String(receipt.svg.prefix(60)))

        // The bill is paid on the phone once the inbox syncs; the quote cannot be paid again.
        try await client.syncInbox()
        XCTAssertEqual(try client.bills().first { $0.billId == issued.billId }?.state, .paid)
        await assertPlatformCode(.quoteUsed, "the quote paid a second time") {
            try await client.pay(quoteId: quote.quoteId)
        }
        let after = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(after, balance, "charged once")
        XCTAssertEqual(try client.paymentsUnresolved(), 0, "a refusal is an answer")
    }

    // MARK: - Declines

    func testADeclinedCardChargesNothingAndAnotherCardPaysTheBill() async throws {
        let (client, issued) = try await signedInWithADemoBill()

        let declinedQuote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.insufficientFunds)
        let failed = try await client.pay(quoteId: declinedQuote.quoteId)

        XCTAssertEqual(failed.status, .failed, "\(failed)")
        XCTAssertEqual(failed.failureCode, "insufficient_funds")
        XCTAssertEqual(failed.receiptCount, 0)
        let untouched = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(untouched, Self.balanceFen, "nothing settled")

        let quote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.ok)
        let paid = try await client.pay(quoteId: quote.quoteId)

        XCTAssertEqual(paid.status, .succeeded, "\(paid)")
        XCTAssertNotEqual(paid.paymentId, failed.paymentId)
        XCTAssertEqual(paid.totalFen, issued.totalFen)
        let balance = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(balance, Self.balanceFen - quote.personalAccountFen)
        let known = try client.payments().map(\.paymentId)
        XCTAssertEqual(Set(known), [failed.paymentId, paid.paymentId])
        XCTAssertEqual(known.count, 2)
        XCTAssertEqual(try client.paymentsUnresolved(), 0)
        let receipts = try await client.receipts()
        XCTAssertEqual(receipts.map(\.paymentId), [paid.paymentId], "only the paid payment has a receipt")
    }

    func testACardDeclinedAtCaptureLeavesTheCashDueAndAnotherCardPaysIt() async throws {
        let (client, issued) = try await signedInWithADemoBill()
        let quote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.declinedAtCapture)

        let due = try await client.pay(quoteId: quote.quoteId)

        XCTAssertEqual(due.status, .cashDue, "\(due)")
        XCTAssertEqual(due.cashDueFen, quote.cashFen)
        XCTAssertEqual(due.failureCode, "card_declined")
        let afterPivot = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(afterPivot, Self.balanceFen - quote.personalAccountFen, "the insurance settled")

        // No new quote while cash is due; the rest is paid with a card, not on credit.
        await assertPlatformCode(.billNotPayable, "a new quote while cash is due") {
            try await client.quote(billId: issued.billId, useAccount: true, channel: Card.ok)
        }
        await assertInvalidInput(.paymentChannel, "the cash due on credit") {
            try await client.payCashDue(paymentId: due.paymentId, channel: "credit")
        }

        let paid = try await client.payCashDue(paymentId: due.paymentId, channel: Card.ok)

        XCTAssertEqual(paid.paymentId, due.paymentId)
        XCTAssertEqual(paid.status, .succeeded, "\(paid)")
        XCTAssertEqual(paid.receiptCount, 1)
        let afterCash = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(afterCash, afterPivot, "the insurance settled once")
        let receipts = try await client.receipts()
        XCTAssertEqual(receipts.count, 1)
        let receipt = try XCTUnwrap(receipts.first)
        XCTAssertEqual(receipt.paymentId, due.paymentId)
        XCTAssertEqual(receipt.totalFen, issued.totalFen)
        XCTAssertEqual(receipt.personalAccountFen, quote.personalAccountFen)
        XCTAssertEqual(receipt.cashFen, quote.cashFen)
        XCTAssertTrue(receipt.channel.hasSuffix("4242"), "the receipt names the card that paid: \(receipt.channel)")
        XCTAssertTrue(receipt.svg.hasPrefix("<svg"))
    }

    // MARK: - The bank's second confirmation

    func testTheBanksSecondConfirmationCompletesThePayment() async throws {
        let (client, issued) = try await signedInWithADemoBill()
        let quote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.needsCode)

        let waiting = try await client.pay(quoteId: quote.quoteId)

        XCTAssertEqual(waiting.status, .requiresAction, "\(waiting)")
        XCTAssertEqual(waiting.actionKind, "confirm_code")
        XCTAssertNotNil(waiting.actionExpiresAtMs)
        XCTAssertEqual(waiting.receiptCount, 0)

        await assertInvalidInput(.verificationCode, "a code with letters") {
            try await client.confirmPayment(paymentId: waiting.paymentId, code: "12ab")
        }
        let still = try await client.confirmPayment(paymentId: waiting.paymentId, code: "000000")
        XCTAssertEqual(still.status, .requiresAction, "one wrong code leaves tries")

        let paid = try await client.confirmPayment(paymentId: waiting.paymentId, code: Self.bankCode)

        XCTAssertEqual(paid.paymentId, waiting.paymentId)
        XCTAssertEqual(paid.status, .succeeded, "\(paid)")
        XCTAssertEqual(paid.receiptCount, 1)
        let now = try await client.payment(paymentId: waiting.paymentId)
        XCTAssertEqual(now.status, .succeeded, "as the platform has it")
        let balance = try await sandbox.balance(personId: Self.zhangWeiId)
        XCTAssertEqual(balance, Self.balanceFen - quote.personalAccountFen)
    }

    // MARK: - The payment stream

    func testPaymentUpdatesYieldTheCurrentPaymentFirstThenItsChanges() async throws {
        let (client, issued) = try await signedInWithADemoBill()
        let quote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.needsCode)
        let waiting = try await client.pay(quoteId: quote.quoteId)
        XCTAssertEqual(waiting.status, .requiresAction, "\(waiting)")
        let paymentId = waiting.paymentId
        let bankCode = Self.bankCode

        let (first, confirmed, last) = try await withTimeout(seconds: 30, "the succeeded payment on the payment stream") { [client] () async throws -> (Payment?, Payment, Payment?) in
            var updates = client.paymentUpdates(paymentId: paymentId).makeAsyncIterator()
            let first = try await updates.next()
            let confirmed = try await client.confirmPayment(paymentId: paymentId, code: bankCode)
            while let update = try await updates.next() {
                if update.status == .succeeded {
                    return (first, confirmed, update)
                }
            }
            return (first, confirmed, nil)
        }

        XCTAssertEqual(first, waiting, "the current value first: the payment as the phone has it")
        XCTAssertEqual(confirmed.status, .succeeded, "\(confirmed)")
        let got = try XCTUnwrap(last, "the stream ended without the succeeded payment")
        XCTAssertEqual(got.paymentId, paymentId)
        XCTAssertEqual(got.receiptCount, 1)

        // A malformed payment id ends the stream with the core's error, and nothing follows.
        let ended = try await withTimeout(seconds: 20, "the stream of a malformed payment id") { [client] () async throws -> (Error?, Payment?) in
            var updates = client.paymentUpdates(paymentId: "not a payment id").makeAsyncIterator()
            let error = await drain(&updates)
            let after = try await updates.next()
            return (error, after)
        }
        guard let error = ended.0 as? CarePassError, case let .InvalidInput(field, reason) = error else {
            return XCTFail("expected CarePassError.InvalidInput, got \(String(describing: ended.0))")
        }
        XCTAssertEqual(field, .paymentId, reason)
        XCTAssertNil(ended.1, "nothing follows the error")
    }

    // MARK: - Refused input

    func testABadChannelTextIsInvalidInputNamingThePaymentChannelAsAreUnknownIds() async throws {
        let (client, issued) = try await signedInWithADemoBill()

        let refused: [(String, String)] = [
            ("upper case", "CARD:4242424242424242"),
            ("a failed check digit", "card:4242424242424241"),
            ("spaces", "card:4242 4242 4242 4242"),
            ("eight digits", "card:42424242"),
            ("not a channel", "cash"),
            ("empty", ""),
        ]
        for (what, text) in refused {
            await assertInvalidInput(.paymentChannel, "quote, \(what)") {
                try await client.quote(billId: issued.billId, useAccount: true, channel: text)
            }
        }
        await assertInvalidInput(.paymentChannel, "cash due, eight digits") {
            try await client.payCashDue(paymentId: "pay_0011223344556677", channel: "card:42424242")
        }
        // Well-formed, but the bill leaves cash to pay: the platform wants a channel.
        await assertPlatformCode(.invalidRequest, "no channel while cash is due") {
            try await client.quote(billId: issued.billId, useAccount: true, channel: "none")
        }
        // The core looks for the bill on the phone (pulling once), and for the quote it kept.
        await assertInvalidInput(.billId, "a bill the phone does not have") {
            try await client.quote(billId: "bill_0000000000000000", useAccount: true, channel: Card.ok)
        }
        await assertInvalidInput(.quoteId, "a quote the phone did not keep") {
            try await client.pay(quoteId: "q_0000000000000000")
        }

        XCTAssertEqual(try client.payments(), [], "nothing was paid")
        XCTAssertEqual(try client.paymentsUnresolved(), 0, "nothing was sent")
        let quote = try await client.quote(billId: issued.billId, useAccount: true, channel: Card.ok)
        XCTAssertEqual(quote.totalFen, issued.totalFen, "the bill is still payable")
    }
}

// MARK: - Helpers

/// Fails unless `body` throws `CarePassError.InvalidInput` naming `field`.
private func assertInvalidInput<T>(
    _ field: InputField,
    _ message: String,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () async throws -> T
) async {
    do {
        let value = try await body()
        XCTFail("\(message): expected CarePassError.InvalidInput(field: \(field)), got \(value)", file: file, line: line)
    } catch let CarePassError.InvalidInput(got, reason) {
        XCTAssertEqual(got, field, "\(message): \(reason)", file: file, line: line)
    } catch {
        XCTFail("\(message): expected CarePassError.InvalidInput(field: \(field)), got \(error)", file: file, line: line)
    }
}

/// Fails unless `body` throws `CarePassError.Platform` with `code`.
private func assertPlatformCode<T>(
    _ code: PlatformErrorCode,
    _ message: String,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () async throws -> T
) async {
    do {
        let value = try await body()
        XCTFail("\(message): expected CarePassError.Platform(code: \(code)), got \(value)", file: file, line: line)
    } catch let CarePassError.Platform(got, _, _, reason) {
        XCTAssertEqual(got, code, "\(message): \(reason)", file: file, line: line)
    } catch {
        XCTFail("\(message): expected CarePassError.Platform(code: \(code)), got \(error)", file: file, line: line)
    }
}
