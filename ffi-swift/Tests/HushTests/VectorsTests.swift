import Foundation
import XCTest

@testable import Hush

/// The shared test vectors (`test-vectors/` at the repository root), checked through the Swift
/// binding and the native library. Run on macOS: `swift test -Xlinker -L../target/debug`.
final class VectorsTests: XCTestCase {
    private static let vectorsDir = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // HushTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // ffi-swift
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("test-vectors")

    private func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.vectorsDir.appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func cases(_ name: String) throws -> [[String: Any]] {
        try XCTUnwrap(try load(name)["cases"] as? [[String: Any]])
    }

    private func hex(_ object: [String: Any], _ key: String) throws -> Data {
        let s = try XCTUnwrap(object[key] as? String, key)
        var data = Data(capacity: s.count / 2)
        var index = s.startIndex
        while index < s.endIndex {
            let next = s.index(index, offsetBy: 2)
            data.append(try XCTUnwrap(UInt8(s[index..<next], radix: 16)))
            index = next
        }
        return data
    }

    func testVersion() {
        XCTAssertEqual(hushVersion(), "0.1.0")
    }

    func testSafetyNumbers() throws {
        for c in try cases("safety_number.json") {
            let n = try computeSafetyNumber(userAKey: try hex(c, "user_a_key"), userBKey: try hex(c, "user_b_key"))
            XCTAssertEqual(n.digits, c["digits"] as? String)
            XCTAssertEqual(n.display, c["display"] as? String)
            XCTAssertEqual(n.qrPayload, try hex(c, "qr_payload"))
            let swapped = try computeSafetyNumber(userAKey: try hex(c, "user_b_key"), userBKey: try hex(c, "user_a_key"))
            XCTAssertEqual(swapped, n)
        }
        XCTAssertThrowsError(try computeSafetyNumber(userAKey: Data(count: 31), userBKey: Data(count: 32))) { error in
            guard case HushError.BadInput = error else { return XCTFail("expected BadInput, got \(error)") }
        }
    }

    func testDeviceLists() throws {
        for c in try cases("device_list.json") {
            let signed = try hex(c, "signed_device_list")
            let list = try verifyDeviceList(signedDeviceList: signed, expectedUserKey: try hex(c, "user_key"))
            XCTAssertEqual(list.userKey, try hex(c, "user_key"))
            XCTAssertEqual(list.listVersion, (c["list_version"] as? NSNumber)?.uint64Value)
            XCTAssertEqual(list.createdAt, (c["created_at"] as? NSNumber)?.uint64Value)
            let want = try XCTUnwrap(c["devices"] as? [[String: Any]])
            XCTAssertEqual(list.devices.count, want.count)
            for (got, w) in zip(list.devices, want) {
                XCTAssertEqual(got.deviceKey, try hex(w, "device_key"))
                XCTAssertEqual(got.identityKey, try hex(w, "identity_key"))
                XCTAssertEqual(got.identitySignature, try hex(w, "identity_signature"))
            }
            var tampered = signed
            tampered[tampered.count - 1] ^= 1
            XCTAssertThrowsError(try verifyDeviceList(signedDeviceList: tampered, expectedUserKey: nil)) { error in
                guard case HushError.Identity = error else { return XCTFail("expected Identity, got \(error)") }
            }
        }
    }

    func testSealedEnvelopes() throws {
        for c in try cases("sealed_sender.json") {
            let r = try XCTUnwrap(c["recipient"] as? [String: Any])
            let s = try XCTUnwrap(c["sender"] as? [String: Any])
            let opened = try openSealedEnvelope(
                recipientDeviceSecret: try hex(r, "device_signing_secret"),
                recipientIdentitySecret: try hex(r, "identity_secret"),
                envelope: try hex(c, "envelope"))
            XCTAssertEqual(opened.senderUserKey, try hex(c, "sender_user_key"))
            XCTAssertEqual(opened.senderDevice.deviceKey, try hex(s, "device_key"))
            XCTAssertEqual(opened.senderDevice.identityKey, try hex(s, "identity_key"))
            XCTAssertEqual(opened.kind, (c["kind"] as? String) == "session" ? .session : .group)
            XCTAssertEqual(opened.inner, try hex(c, "inner"))
            XCTAssertThrowsError(try openSealedEnvelope(
                recipientDeviceSecret: try hex(s, "device_signing_secret"),
                recipientIdentitySecret: try hex(s, "identity_secret"),
                envelope: try hex(c, "envelope"))) { error in
                guard case HushError.Decryption = error else { return XCTFail("expected Decryption, got \(error)") }
            }
        }
        let tokens = try XCTUnwrap(try load("sealed_sender.json")["delivery_tokens"] as? [[String: Any]])
        for t in tokens {
            XCTAssertEqual(try deliveryTokenHash(token: try hex(t, "token")), try hex(t, "hash"))
        }
    }
}
