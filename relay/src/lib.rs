//! `hush-relay`: the hush blind relay, which stores and forwards ciphertext only.
//!
//! The relay will hold queued envelopes and published key bundles for clients of
//! [`hush_core`]; it never sees plaintext or private keys. The server itself (storage, network
//! protocol, configuration) arrives with the relay issue.
//!
//! It is deliberately empty for now: there is no relay server yet, and the `hush-relay` binary
//! says so and exits with a non-zero status rather than pretending to serve.
