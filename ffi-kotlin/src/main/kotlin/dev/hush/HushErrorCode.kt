package dev.hush

/**
 * The stable code of this error's kind, the same in every hush binding (Python's `HushError.code`,
 * Swift's `HushError.code`, TypeScript's `HushError.code`): `"bad_input"` for
 * [HushException.BadInput], `"wrong_key"` for [HushException.WrongKey], …. [hushErrorCodes] lists
 * them all, in hush-core's order.
 */
val HushException.code: String
    get() = when (this) {
        is HushException.BadInput -> "bad_input"
        is HushException.Decryption -> "decryption"
        is HushException.Duplicate -> "duplicate"
        is HushException.Identity -> "identity"
        is HushException.Protocol -> "protocol"
        is HushException.Storage -> "storage"
        is HushException.WrongKey -> "wrong_key"
        is HushException.Network -> "network"
        is HushException.NotFound -> "not_found"
        is HushException.Internal -> "internal"
    }
