// Written by hand (not generated): the stable code of each error kind, as in every hush binding.

extension HushError {
    /// The stable code of this error's kind, the same in every hush binding (Python's
    /// `HushError.code`, Kotlin's `HushException.code`, TypeScript's `HushError.code`):
    /// `"bad_input"` for `.BadInput`, `"wrong_key"` for `.WrongKey`, …. `hushErrorCodes()` lists
    /// them all, in hush-core's order.
    public var code: String {
        switch self {
        case .BadInput: return "bad_input"
        case .Decryption: return "decryption"
        case .Duplicate: return "duplicate"
        case .Identity: return "identity"
        case .Protocol: return "protocol"
        case .Storage: return "storage"
        case .WrongKey: return "wrong_key"
        case .Network: return "network"
        case .NotFound: return "not_found"
        case .Internal: return "internal"
        }
    }
}
