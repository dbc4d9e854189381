import Foundation
import XCTest

@testable import Hush

/// Error codes: every failing call throws the `HushError` case of its kind, whose `code` is the
/// kind's stable name, the same in Python, Kotlin and TypeScript; the codes this binding has are
/// hush-core's (`hushErrorCodes()`). Needs no relay. Run on macOS:
/// `swift test -Xlinker -L../target/debug` (there is no Swift toolchain on the CI machine).
final class ErrorCodesTests: XCTestCase {
    private let relay = "ws://127.0.0.1:9/v1/ws"  // never reached: nothing here connects

    private func client(_ name: String) throws -> HushClient {
        try HushClient.create(storePath: ":memory:", storeKey: Data(repeating: 5, count: 32), passphrase: nil,
                              relayUrl: relay, displayName: name)
    }

    private func code(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            try body()
            XCTFail("no error", file: file, line: line)
        } catch let error as HushError {
            return error.code
        } catch {
            XCTFail("not a HushError: \(error)", file: file, line: line)
        }
        return nil
    }

    func testTheCodesAreCoresAndOneCaseEach() {
        let codes = ["bad_input", "decryption", "duplicate", "identity", "protocol",
                     "storage", "wrong_key", "network", "not_found", "internal"]
        XCTAssertEqual(hushErrorCodes(), codes)
        let cases: [HushError] = [
            .BadInput(message: ""), .Decryption(message: ""), .Duplicate(message: ""), .Identity(message: ""),
            .Protocol(message: ""), .Storage(message: ""), .WrongKey(message: ""), .Network(message: ""),
            .NotFound(message: ""), .Internal(message: ""),
        ]
        XCTAssertEqual(cases.map(\.code), codes)
    }

    func testABadIdIsBadInput() throws {
        let eve = try client("Eve")
        XCTAssertEqual(code { _ = try eve.sendText(conversation: "zz", text: "hi") }, "bad_input")
    }

    func testAWrongStoreKeyIsWrongKey() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("eve.db").path
        _ = try HushClient.create(storePath: path, storeKey: Data(repeating: 1, count: 32), passphrase: nil,
                                  relayUrl: relay, displayName: "Eve")
        XCTAssertEqual(code {
            _ = try HushClient.open(storePath: path, storeKey: Data(repeating: 2, count: 32), passphrase: nil,
                                    relayUrl: self.relay, displayName: "Eve")
        }, "wrong_key")
    }

    func testAStrangerHasNoSessionAProtocolError() throws {
        let stranger = try client("Stranger").userId()
        let eve = try client("Eve")
        XCTAssertEqual(code { _ = try eve.safetyNumber(userId: stranger) }, "protocol")
    }

    func testAnUnknownMessageIsNotFound() async throws {
        let eve = try client("Eve")
        let conversation = try eve.directConversation(userId: try client("Kim").userId())
        do {
            _ = try await eve.downloadAttachment(conversation: conversation, messageId: String(repeating: "00", count: 16))
            XCTFail("no error")
        } catch let error as HushError {
            XCTAssertEqual(error.code, "not_found")
        }
    }
}
