//! What the storage formats ("pickles") share. Each type's format lives beside the type, in a
//! `pickle` submodule of the type's module: an [`Account`](crate::Account)'s in `account/pickle.rs`,
//! a [`SessionRecord`](crate::SessionRecord)'s in `session/pickle.rs` (the ratchet state it embeds
//! in `ratchet/pickle.rs`), a [`PeerUser`](crate::PeerUser)'s in `peer/pickle.rs` and a
//! [`Group`](crate::group::Group)'s in `group/pickle.rs`. Each turns its type to and from a
//! versioned protobuf message of `core/proto/storage.proto`, for the encrypted local store.
//!
//! Loading trusts nothing: size limit, canonical encoding and version first (`wire::decode`,
//! `wire::check_version`), then every field's length, the protocol's bounds and every signature;
//! public keys are re-derived from their secrets, so a loaded value is one the protocol code itself
//! could have produced. Encoding is deterministic: `to_bytes(from_bytes(b)) == b` for every accepted
//! `b`. This module holds the field checks the formats share.

use zeroize::Zeroizing;

use crate::crypto::keys::{Signature64, array32};
use crate::error::{Error, Result};

/// `count` within `min..=max`: below is [`Error::Malformed`], above [`Error::TooLarge`].
pub(crate) fn check_count(what: &'static str, count: usize, min: usize, max: usize) -> Result<()> {
    if count > max {
        return Err(Error::TooLarge { what, size: count, max });
    }
    if count < min {
        return Err(Error::Malformed { what });
    }
    Ok(())
}

/// A 32-byte secret, wiped when dropped, or [`Error::Malformed`] naming `what`.
pub(crate) fn secret32(bytes: &[u8], what: &'static str) -> Result<Zeroizing<[u8; 32]>> {
    Ok(Zeroizing::new(array32(bytes, what)?))
}

/// A 64-byte Ed25519 signature, or [`Error::Malformed`] naming `what`.
pub(crate) fn signature64(bytes: &[u8], what: &'static str) -> Result<Signature64> {
    <[u8; 64]>::try_from(bytes).map(Signature64).map_err(|_| Error::Malformed { what })
}

/// The tests that cover two formats at once, kept whole; their fixtures come from each format's tests.
#[cfg(test)]
mod tests {
    mod account_and_session_record {
        use prost::Message;
        use rand_core::RngCore;

        use crate::Account;
        use crate::account::pickle::tests::{edit_account, load_account};
        use crate::error::Error;
        use crate::limits::{MAX_ACCOUNT_BYTES, MAX_SESSION_RECORD_BYTES};
        use crate::session::pickle::tests::{conversation, edit_record, load_record};
        use crate::test_util::{assert_no_secret, rng};
        use crate::wire::storage;

        #[test]
        fn oversized_truncated_garbage_and_versions_are_typed_errors() {
            let mut rng = rng(5);
            let account = Account::new(&mut rng);
            let bytes = account.to_bytes();
            let big = vec![0u8; MAX_ACCOUNT_BYTES + 1];
            assert_eq!(
                load_account(&big),
                Err(Error::TooLarge { what: "account", size: MAX_ACCOUNT_BYTES + 1, max: MAX_ACCOUNT_BYTES })
            );
            let big = vec![0u8; MAX_SESSION_RECORD_BYTES + 1];
            assert!(matches!(load_record(&big), Err(Error::TooLarge { what: "session record", .. })));

            // Every strict prefix of a fresh account fails (the last field, next_prekey_id, is required).
            for n in 0..bytes.len() {
                assert!(load_account(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
            }
            assert_eq!(load_account(&bytes[..bytes.len() - 1]), Err(Error::Malformed { what: "account" }));

            let record = conversation(&mut rng).b;
            let rbytes = record.to_bytes();
            assert_eq!(load_record(&rbytes[..rbytes.len() - 1]), Err(Error::Malformed { what: "session record" }));
            // Cut inside a session.
            assert_eq!(load_record(&rbytes[..rbytes.len() / 2]), Err(Error::Malformed { what: "session record" }));

            assert_eq!(load_account(&[0xFF; 64]), Err(Error::Malformed { what: "account" }));
            assert_eq!(load_record(&[0xFF; 64]), Err(Error::Malformed { what: "session record" }));
            for len in [1usize, 7, 64, 500, 5000] {
                for _ in 0..50 {
                    let mut garbage = vec![0u8; len];
                    rng.fill_bytes(&mut garbage);
                    assert!(load_account(&garbage).is_err());
                    assert!(load_record(&garbage).is_err());
                }
            }
            // An unknown field breaks the canonical encoding.
            let mut extra = bytes.to_vec();
            extra.extend_from_slice(&[0xF8, 0x01, 0x01]);
            assert_eq!(load_account(&extra), Err(Error::Malformed { what: "account" }));

            for version in [0, 2, u32::MAX] {
                let other = edit_account(&bytes, |p| p.version = version);
                assert_eq!(load_account(&other), Err(Error::UnsupportedVersion { what: "account", version }));
            }
            // Session records are of version 2 (the triple ratchet) or 1 (before it, §7A.7).
            for version in [0, 3, u32::MAX] {
                let other = edit_record(&rbytes, |p| p.version = version);
                assert_eq!(load_record(&other), Err(Error::UnsupportedVersion { what: "session record", version }));
            }
        }

        #[test]
        fn storage_types_redact_debug_and_wipe() {
            let mut rng = rng(8);
            let c = conversation(&mut rng);
            let account = storage::Account::decode(c.bob.to_bytes().as_slice()).unwrap();
            let record = storage::SessionRecord::decode(c.b.to_bytes().as_slice()).unwrap();
            let text = format!("{account:?}{record:?}{:?}", record.archived[0]);
            assert_eq!(
                text,
                "storage::Account([redacted])storage::SessionRecord([redacted])storage::Session([redacted])"
            );
            let mut secrets = vec![account.device_signing_secret.clone(), account.identity_secret.clone()];
            secrets.extend(account.kem_prekeys.iter().map(|k| k.seed.clone()));
            for s in record.active.iter().chain(&record.archived) {
                let r = s.ratchet.as_ref().unwrap();
                secrets.extend([r.root_key.clone(), r.sending_ratchet_secret.clone()]);
                secrets.extend(r.receiving.iter().flat_map(|c| c.skipped.iter().map(|k| k.key.clone())));
            }
            for secret in &secrets {
                assert_no_secret(&text, secret);
            }

            let mut wiped = account.clone();
            zeroize::Zeroize::zeroize(&mut wiped);
            assert!(wiped.device_signing_secret.is_empty() && wiped.kem_prekeys.is_empty());
            assert_eq!(wiped.encode_to_vec(), Vec::<u8>::new());
        }
    }

    mod peer_user_and_group {
        use prost::Message;
        use rand_core::RngCore;

        use crate::device_list::SignedDeviceList;
        use crate::error::{Error, Result};
        use crate::group::pickle::tests::{CAROL, Groups, edit_group, load_group};
        use crate::identity::UserIdentity;
        use crate::limits::{MAX_GROUP_BYTES, MAX_PEER_BYTES};
        use crate::peer::pickle::tests::{Peers, edit_peer, load_peer};
        use crate::test_util::{assert_no_secret, rng};
        use crate::wire::storage;

        #[test]
        fn oversized_truncated_garbage_and_versions_are_typed_errors() {
            let mut rng = rng(10);
            let mut peers = Peers::new(&mut rng);
            let other = SignedDeviceList::sign(&UserIdentity::generate(&mut rng), 1, &[], 1).unwrap();
            peers.a.update_device_list(other).unwrap();
            let peer = peers.a.to_bytes();
            let group = Groups::new(&mut rng).groups[CAROL].to_bytes();

            // `vec!` of zeroes maps untouched pages: the size is refused before any byte is read.
            assert_eq!(
                load_peer(&vec![0; MAX_PEER_BYTES + 1]),
                Err(Error::TooLarge { what: "peer user", size: MAX_PEER_BYTES + 1, max: MAX_PEER_BYTES })
            );
            assert_eq!(
                load_group(&vec![0; MAX_GROUP_BYTES + 1]),
                Err(Error::TooLarge { what: "group", size: MAX_GROUP_BYTES + 1, max: MAX_GROUP_BYTES })
            );

            for (bytes, load, what) in
                [(&peer, load_peer as fn(&[u8]) -> Result<()>, "peer user"), (&group, load_group, "group")]
            {
                let malformed = Err(Error::Malformed { what });
                // Cut inside the last field, inside the middle one, inside the first.
                for n in [bytes.len() - 1, bytes.len() / 2, 3] {
                    assert_eq!(load(&bytes[..n]), malformed, "{what} cut at {n}");
                }
                assert_eq!(load(&[0xFF; 64]), malformed);
                // An unknown field breaks the canonical encoding.
                let mut extra = bytes.to_vec();
                extra.extend_from_slice(&[0xF8, 0x01, 0x01]);
                assert_eq!(load(&extra), malformed);
                for len in [1usize, 7, 64, 500, 5000] {
                    for _ in 0..50 {
                        let mut garbage = vec![0u8; len];
                        rng.fill_bytes(&mut garbage);
                        assert!(load(&garbage).is_err());
                    }
                }
                // Nothing at all: version 0.
                assert_eq!(load(&[]), Err(Error::UnsupportedVersion { what, version: 0 }));
            }
            for version in [0, 2, u32::MAX] {
                let other = edit_peer(&peer, |p| p.version = version);
                assert_eq!(load_peer(&other), Err(Error::UnsupportedVersion { what: "peer user", version }));
            }
            // Groups are at version 2, and version 1 migrates (group/pickle.rs).
            for version in [0, 3, u32::MAX] {
                let other = edit_group(&group, |g| g.version = version);
                assert_eq!(load_group(&other), Err(Error::UnsupportedVersion { what: "group", version }));
            }
        }

        #[test]
        fn storage_types_redact_debug_and_wipe() {
            let mut rng = rng(11);
            let peers = Peers::new(&mut rng);
            let groups = Groups::new(&mut rng);
            let peer = storage::PeerUser::decode(peers.a.to_bytes().as_slice()).unwrap();
            let group = storage::Group::decode(groups.groups[CAROL].to_bytes().as_slice()).unwrap();
            let outbound = group.outbound.as_ref().unwrap();
            let text = format!("{peer:?}{:?}{group:?}{outbound:?}{:?}", peer.sessions[0], group.inbound[0]);
            assert_eq!(
                text,
                "storage::PeerUser([redacted])storage::PeerDeviceSessions([redacted])storage::Group([redacted])\
                 storage::OutboundSenderChain([redacted])storage::InboundSenderChain([redacted])"
            );
            let mut secrets = vec![outbound.chain.as_ref().unwrap().key.clone(), outbound.signing_secret.clone()];
            for c in &group.inbound {
                secrets.push(c.chain.as_ref().unwrap().key.clone());
                secrets.extend(c.skipped.iter().map(|k| k.key.clone()));
            }
            for s in peer.sessions.iter().flat_map(|s| s.record.as_ref().unwrap().active.as_ref()) {
                let r = s.ratchet.as_ref().unwrap();
                secrets.extend([r.root_key.clone(), r.sending_ratchet_secret.clone()]);
            }
            assert!(secrets.len() > 10);
            for secret in &secrets {
                assert_no_secret(&text, secret);
            }

            let mut wiped = group.clone();
            zeroize::Zeroize::zeroize(&mut wiped);
            assert!(wiped.outbound.is_none() && wiped.inbound.is_empty() && wiped.log.is_empty());
            assert_eq!(wiped.encode_to_vec(), Vec::<u8>::new());
            let mut wiped = peer.clone();
            zeroize::Zeroize::zeroize(&mut wiped);
            assert_eq!(wiped.encode_to_vec(), Vec::<u8>::new());
        }
    }
}
