//! The storage format ("pickle") of a [`SessionRecord`]: every session with one peer device (the
//! ratchet state, whose format is in `crate::ratchet::pickle`, the peer's keys, the AD, a pending
//! prekey) to and from the versioned `storage::SessionRecord` message of
//! `core/proto/storage.proto`. The rules every format follows are in `crate::pickle`.

use std::collections::VecDeque;

use prost::Message;
use zeroize::Zeroizing;

use super::{PendingPrekey, Session, SessionRecord, names_device};
use crate::crypto::kem::KEM_CIPHERTEXT_LEN;
use crate::crypto::{DeviceKeys, PublicKey, SigningPublicKey};
use crate::error::{Error, Result};
use crate::limits::{MAX_ARCHIVED_SESSIONS, MAX_SESSION_RECORD_BYTES};
use crate::pickle::{check_count, signature64};
use crate::pqxdh::associated_data;
use crate::ratchet::pickle::{ratchet_from_storage, ratchet_to_storage};
use crate::ratchet::pq::pickle::{pq_from_storage, pq_to_storage};
use crate::wire::{self, storage};

/// Format version of [`storage::SessionRecord`]: 2 since the triple ratchet (§7A). A version-1
/// record, written before, loads as sessions without it, which upgrade when both sides speak it.
const SESSION_RECORD_VERSION: u32 = 2;
/// The version before the triple ratchet: no `pq`, `sends_v2` or version-2 chain marks.
const SESSION_RECORD_VERSION_CLASSICAL: u32 = 1;
/// Session associated data: two devices' Ed25519 device key and X25519 identity key.
const AD_LEN: usize = 2 * (32 + 32);

impl SessionRecord {
    /// Encodes every session with this peer device (ratchet secrets, skipped message keys) for
    /// the encrypted store. The buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(record_to_storage(self).encode_to_vec())
    }

    /// Decodes a record written by [`SessionRecord::to_bytes`], enforcing the ratchet's bounds
    /// (receiving chains, skipped keys, archived sessions) and verifying every device key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: storage::SessionRecord = wire::decode(bytes, MAX_SESSION_RECORD_BYTES, "session record")?;
        record_from_storage(&p)
    }
}

/// A record as its storage message (also embedded in a peer user's, see `crate::peer::pickle`).
pub(crate) fn record_to_storage(r: &SessionRecord) -> storage::SessionRecord {
    storage::SessionRecord {
        version: SESSION_RECORD_VERSION,
        active: r.active.as_ref().map(session_to_storage),
        archived: r.archived.iter().map(session_to_storage).collect(),
    }
}

/// Every check of [`SessionRecord::from_bytes`] after decoding.
pub(crate) fn record_from_storage(p: &storage::SessionRecord) -> Result<SessionRecord> {
    if p.version != SESSION_RECORD_VERSION_CLASSICAL {
        wire::check_version("session record", p.version, SESSION_RECORD_VERSION)?;
    }
    check_count("archived sessions", p.archived.len(), 0, MAX_ARCHIVED_SESSIONS)?;
    if p.version == SESSION_RECORD_VERSION_CLASSICAL && p.active.iter().chain(&p.archived).any(has_version_2_fields) {
        return Err(Error::Malformed { what: "version-1 session record" });
    }
    let active = p.active.as_ref().map(session_from_storage).transpose()?;
    let archived = p.archived.iter().map(session_from_storage).collect::<Result<VecDeque<_>>>()?;
    // A record belongs to one peer device (`SessionRecord::check_peer`).
    let mut sessions = active.iter().chain(&archived);
    if let Some(first) = sessions.next() {
        let same = |s: &Session| {
            s.peer.device_key() == first.peer.device_key() && s.peer.identity_key() == first.peer.identity_key()
        };
        if !sessions.all(same) {
            return Err(Error::Malformed { what: "session record peers" });
        }
    }
    Ok(SessionRecord { active, archived })
}

fn session_to_storage(s: &Session) -> storage::Session {
    storage::Session {
        ratchet: Some(ratchet_to_storage(&s.ratchet)),
        peer: Some(device_keys_to_storage(&s.peer)),
        ad: s.ad.clone(),
        base_key: s.base_key.as_bytes().to_vec(),
        post_quantum: s.post_quantum,
        pending_prekey: s.pending_prekey.as_ref().map(|p| storage::PendingPrekey {
            local: Some(device_keys_to_storage(&p.local)),
            signed_prekey_id: p.signed_prekey_id,
            one_time_prekey_id: p.one_time_prekey_id,
            kem_prekey_id: p.kem_prekey_id,
            kem_ciphertext: p.kem_ciphertext.clone(),
        }),
        pq: s.pq.as_ref().map(pq_to_storage),
        sends_v2: s.sends_v2,
    }
}

fn session_from_storage(p: &storage::Session) -> Result<Session> {
    let ratchet = ratchet_from_storage(wire::required(&p.ratchet, "session ratchet")?)?;
    let peer = device_keys_from_storage(wire::required(&p.peer, "session peer")?)?;
    let base_key = PublicKey::from_slice(&p.base_key, "session base key")?;
    let (first, second) = p.ad.split_at_checked(AD_LEN / 2).ok_or(Error::Malformed { what: "session ad" })?;
    if second.len() != AD_LEN / 2 {
        return Err(Error::Malformed { what: "session ad" });
    }
    let pending_prekey = match &p.pending_prekey {
        None => None,
        Some(pending) => {
            let local = device_keys_from_storage(wire::required(&pending.local, "pending prekey device")?)?;
            let ct_len = if pending.kem_prekey_id.is_some() { KEM_CIPHERTEXT_LEN } else { 0 };
            if pending.kem_ciphertext.len() != ct_len {
                return Err(Error::Malformed { what: "pending prekey ML-KEM ciphertext" });
            }
            if p.post_quantum != pending.kem_prekey_id.is_some() {
                return Err(Error::Malformed { what: "session post-quantum flag" });
            }
            Some(PendingPrekey {
                local,
                signed_prekey_id: pending.signed_prekey_id,
                one_time_prekey_id: pending.one_time_prekey_id,
                kem_prekey_id: pending.kem_prekey_id,
                kem_ciphertext: pending.kem_ciphertext.clone(),
            })
        }
    };
    // The AD binds both devices, initiator first: the peer is one of them, and an initiator
    // still awaiting a reply knows both.
    let ad_ok = match &pending_prekey {
        Some(pending) => p.ad == associated_data(&pending.local, &peer),
        None => [first, second].iter().any(|half| names_device(half, &peer)),
    };
    if !ad_ok {
        return Err(Error::Malformed { what: "session ad" });
    }
    let pq = p.pq.as_ref().map(pq_from_storage).transpose()?;
    // Receiving version 2 sets both.
    if ratchet.received_v2 && !(p.sends_v2 && pq.is_some()) {
        return Err(Error::Malformed { what: "session version" });
    }
    Ok(Session {
        ratchet,
        peer,
        ad: p.ad.clone(),
        base_key,
        post_quantum: p.post_quantum,
        pending_prekey,
        pq,
        sends_v2: p.sends_v2,
    })
}

/// Whether a stored session has any field a version-1 record cannot (§7A.7).
fn has_version_2_fields(s: &storage::Session) -> bool {
    let ratchet = s.ratchet.as_ref();
    s.pq.is_some()
        || s.sends_v2
        || ratchet.is_some_and(|r| r.received_v2 || r.receiving.iter().any(|c| c.v2_from.is_some()))
}

fn device_keys_to_storage(k: &DeviceKeys) -> storage::DeviceKeys {
    storage::DeviceKeys {
        device_key: k.device_key().as_bytes().to_vec(),
        identity_key: k.identity_key().as_bytes().to_vec(),
        identity_signature: k.signature().to_vec(),
    }
}

fn device_keys_from_storage(p: &storage::DeviceKeys) -> Result<DeviceKeys> {
    let signature = signature64(&p.identity_signature, "identity key signature")?;
    DeviceKeys::new(
        SigningPublicKey::from_slice(&p.device_key, "device key")?,
        PublicKey::from_slice(&p.identity_key, "identity key")?,
        &signature.0,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::Account;
    use crate::account::pickle::tests::reload_account;
    use crate::limits::{MAX_RECEIVING_CHAINS, MAX_SKIPPED_KEYS};
    use crate::test_util::{PQ, rng};

    fn reload_record(record: &SessionRecord) -> SessionRecord {
        let bytes = record.to_bytes();
        let back = SessionRecord::from_bytes(&bytes).unwrap();
        assert_eq!(*back.to_bytes(), *bytes);
        back
    }

    pub(crate) fn load_record(bytes: &[u8]) -> Result<()> {
        SessionRecord::from_bytes(bytes).map(drop)
    }

    pub(crate) fn edit_record(bytes: &[u8], edit: impl FnOnce(&mut storage::SessionRecord)) -> Vec<u8> {
        let mut p = storage::SessionRecord::decode(bytes).unwrap();
        edit(&mut p);
        p.encode_to_vec()
    }

    /// Two devices mid-conversation, with what the network still holds back.
    pub(crate) struct Conversation {
        pub(crate) alice: Account,
        pub(crate) bob: Account,
        pub(crate) a: SessionRecord,
        pub(crate) b: SessionRecord,
        /// Messages to Bob not yet delivered, with their plaintexts.
        pub(crate) to_bob: Vec<(Vec<u8>, Vec<u8>)>,
        /// Messages to Alice not yet delivered.
        pub(crate) to_alice: Vec<(Vec<u8>, Vec<u8>)>,
    }

    fn send(record: &mut SessionRecord, rng: &mut ChaCha20Rng, text: &str) -> (Vec<u8>, Vec<u8>) {
        (record.encrypt(rng, text.as_bytes()).unwrap(), text.as_bytes().to_vec())
    }

    fn recv(record: &mut SessionRecord, account: &mut Account, rng: &mut ChaCha20Rng, m: &(Vec<u8>, Vec<u8>)) {
        assert_eq!(record.decrypt(rng, account, &m.0, PQ).unwrap(), m.1);
    }

    /// A conversation over three of Alice's sending chains with messages held back on each, some
    /// of Bob's held back too, then a second session Alice opens (archiving the first on both sides).
    pub(crate) fn conversation(rng: &mut ChaCha20Rng) -> Conversation {
        let mut alice = Account::new(rng);
        let mut bob = Account::new(rng);
        let otk = bob.generate_one_time_prekeys(rng, 2).unwrap();
        let kem = bob.generate_kem_prekeys(rng, 2).unwrap();
        let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
        let (mut a, mut b) = (SessionRecord::new(), SessionRecord::new());
        a.initiate(rng, alice.identity(), &bundle, PQ).unwrap();
        let (mut to_bob, mut to_alice) = (Vec::new(), Vec::new());
        for turn in 0..3 {
            // Alice sends four; Bob gets only the third now.
            let mut sent: Vec<_> = (0..4).map(|i| send(&mut a, rng, &format!("a{turn}.{i}"))).collect();
            let third = sent.remove(2);
            recv(&mut b, &mut bob, rng, &third);
            to_bob.extend(sent);
            // Bob answers twice; Alice gets the second.
            let first = send(&mut b, rng, &format!("b{turn}.0"));
            let second = send(&mut b, rng, &format!("b{turn}.1"));
            recv(&mut a, &mut alice, rng, &second);
            to_alice.push(first);
        }
        let s1 = b.active.as_ref().unwrap();
        assert!(s1.ratchet.receiving.len() >= 3);
        assert!(s1.ratchet.receiving.iter().filter(|c| !c.skipped.is_empty()).count() >= 3);
        assert!(a.active.as_ref().unwrap().ratchet.skipped_count() > 0);

        // Alice opens a second session (as after a reinstall of her session state) from a bundle
        // without one-time prekeys, so Bob must remember its base key; Bob takes it.
        let bundle = bob.prekey_bundle(None, None).unwrap();
        a.initiate(rng, alice.identity(), &bundle, PQ).unwrap();
        let opening = send(&mut a, rng, "second session");
        recv(&mut b, &mut bob, rng, &opening);
        assert_eq!((a.archived_count(), b.archived_count()), (1, 1));
        assert!(a.awaiting_reply());
        assert!(!bob.seen_base_keys.is_empty());
        Conversation { alice, bob, a, b, to_bob, to_alice }
    }

    /// Delivers everything held back (newest first), then talks both ways; returns every message sent.
    fn finish(c: &mut Conversation, rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
        let mut wire = Vec::new();
        for m in c.to_bob.iter().rev() {
            recv(&mut c.b, &mut c.bob, rng, m);
        }
        for m in &c.to_bob {
            assert_eq!(c.b.decrypt(rng, &mut c.bob, &m.0, PQ), Err(Error::DuplicateMessage));
        }
        for m in c.to_alice.iter().rev() {
            recv(&mut c.a, &mut c.alice, rng, m);
        }
        for round in 0..4 {
            let m = send(&mut c.a, rng, &format!("after a{round}"));
            recv(&mut c.b, &mut c.bob, rng, &m);
            let r = send(&mut c.b, rng, &format!("after b{round}"));
            recv(&mut c.a, &mut c.alice, rng, &r);
            wire.extend([m.0, r.0]);
        }
        wire
    }

    /// A version-1 record pair (`test-vectors/store/session_v1.json`, written before the triple
    /// ratchet) loads, reads the message held across the upgrade, advertises, upgrades both ways and
    /// completes epochs; saved again it is version 2. Version-2 fields in a version-1 record are refused.
    #[test]
    fn a_version_1_session_upgrades_to_the_triple_ratchet() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../test-vectors/store/session_v1.json");
        let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let hex = |k: &str| hex::decode(f[k].as_str().unwrap()).unwrap();
        let v1 = hex("bob_record");
        assert_eq!(storage::SessionRecord::decode(v1.as_slice()).unwrap().version, 1);
        let mut alice = Account::from_bytes(&hex("alice_account")).unwrap();
        let mut bob = Account::from_bytes(&hex("bob_account")).unwrap();
        let mut a = SessionRecord::from_bytes(&hex("alice_record")).unwrap();
        let mut b = SessionRecord::from_bytes(&v1).unwrap();
        assert!(a.active.as_ref().is_some_and(|s| s.pq.is_none()));
        let mut rng = rng(40);

        // Written by the old code: no advertisement, so Bob still sends version 1, advertising it.
        assert_eq!(b.decrypt(&mut rng, &mut bob, &hex("held_message"), PQ).unwrap(), b"held across the upgrade");
        assert_eq!(b.pq_epoch(), None);
        let m = b.encrypt(&mut rng, b"v1, advertising").unwrap();
        assert_eq!(a.decrypt(&mut rng, &mut alice, &m, PQ).unwrap(), b"v1, advertising");
        assert_eq!(a.pq_epoch(), Some(0));
        let mut rounds = 0;
        while a.pq_epoch() < Some(2) || b.pq_epoch() < Some(2) {
            let m = a.encrypt(&mut rng, b"a").unwrap();
            assert_eq!(b.decrypt(&mut rng, &mut bob, &m, PQ).unwrap(), b"a");
            let m = b.encrypt(&mut rng, b"b").unwrap();
            assert_eq!(a.decrypt(&mut rng, &mut alice, &m, PQ).unwrap(), b"b");
            rounds += 1;
            assert!(rounds < 100, "no epochs after the upgrade");
        }
        let saved = reload_record(&b);
        assert_eq!(storage::SessionRecord::decode(saved.to_bytes().as_slice()).unwrap().version, 2);

        // A version-1 record cannot carry what only version 2 writes.
        let tagged = edit_record(&saved.to_bytes(), |r| r.version = 1);
        assert_eq!(load_record(&tagged), Err(Error::Malformed { what: "version-1 session record" }));
    }

    #[test]
    fn empty_record_round_trips() {
        let back = reload_record(&SessionRecord::new());
        assert!(!back.has_session() && back.archived_count() == 0);
    }

    #[test]
    fn records_round_trip_mid_conversation_and_carry_on() {
        let mut rng = rng(3);
        let mut original = conversation(&mut rng);
        let mut restored = Conversation {
            alice: reload_account(&original.alice),
            bob: reload_account(&original.bob),
            a: reload_record(&original.a),
            b: reload_record(&original.b),
            to_bob: original.to_bob.clone(),
            to_alice: original.to_alice.clone(),
        };
        // Same randomness on both copies: the restored state must behave exactly as the original.
        let wire_original = finish(&mut original, &mut self::rng(30));
        let wire_restored = finish(&mut restored, &mut self::rng(30));
        assert_eq!(wire_original, wire_restored);
        assert_eq!(*original.a.to_bytes(), *restored.a.to_bytes());
        assert_eq!(*original.b.to_bytes(), *restored.b.to_bytes());
        assert_eq!(*original.bob.to_bytes(), *restored.bob.to_bytes());
        reload_record(&restored.a);
        reload_record(&restored.b);
    }

    #[test]
    fn full_archive_round_trips_and_more_is_refused() {
        let mut rng = rng(4);
        let alice = Account::new(&mut rng);
        let bob = Account::new(&mut rng);
        let bundle = bob.prekey_bundle(None, None).unwrap();
        let mut a = SessionRecord::new();
        for _ in 0..=MAX_ARCHIVED_SESSIONS {
            a.initiate(&mut rng, alice.identity(), &bundle, PQ).unwrap();
        }
        assert_eq!(a.archived_count(), MAX_ARCHIVED_SESSIONS);
        let bytes = reload_record(&a).to_bytes();
        let more = edit_record(&bytes, |r| {
            let extra = r.archived[0].clone();
            r.archived.push(extra);
        });
        assert_eq!(
            load_record(&more),
            Err(Error::TooLarge {
                what: "archived sessions",
                size: MAX_ARCHIVED_SESSIONS + 1,
                max: MAX_ARCHIVED_SESSIONS
            })
        );
    }

    #[test]
    fn bad_session_fields_are_typed_errors() {
        let mut rng = rng(7);
        let c = conversation(&mut rng);
        // Bob's active session is the second one; his archived one has the out-of-order chains.
        let bytes = c.b.to_bytes();
        let a_bytes = c.a.to_bytes();
        let malformed = |what| Err(Error::Malformed { what });
        let ratchet = |edit: &dyn Fn(&mut storage::RatchetState)| {
            load_record(&edit_record(&bytes, |r| edit(r.archived[0].ratchet.as_mut().unwrap())))
        };
        assert_eq!(ratchet(&|r| r.root_key.truncate(16)), malformed("root key"));
        assert_eq!(ratchet(&|r| r.sending_ratchet_secret.clear()), malformed("sending ratchet key"));
        assert_eq!(ratchet(&|r| r.sending_header_key = None), malformed("sending chain"));
        assert_eq!(ratchet(&|r| r.next_receiving_header_key.push(0)), malformed("next receiving header key"));
        assert_eq!(
            ratchet(&|r| {
                r.receiving[1].ratchet_key.pop();
            }),
            malformed("receiving ratchet key")
        );
        assert_eq!(
            ratchet(&|r| r.receiving[0].chain_key.as_mut().unwrap().index += 1),
            malformed("receiving chain index")
        );
        assert_eq!(ratchet(&|r| r.receiving[1].skipped.reverse()), malformed("skipped message key index"));
        assert_eq!(ratchet(&|r| r.receiving[1].next_index = 0), malformed("skipped message key index"));
        assert_eq!(ratchet(&|r| r.receiving[1].skipped[0].key.clear()), malformed("skipped message key"));
        assert_eq!(
            ratchet(&|r| {
                let chain = r.receiving[0].clone();
                r.receiving.resize(MAX_RECEIVING_CHAINS + 1, chain);
            }),
            Err(Error::TooLarge {
                what: "receiving chains",
                size: MAX_RECEIVING_CHAINS + 1,
                max: MAX_RECEIVING_CHAINS
            })
        );
        let many_skipped = ratchet(&|r| {
            let key = r.receiving[1].skipped[0].key.clone();
            r.receiving[1].next_index = 5_000;
            r.receiving[1].skipped =
                (0..MAX_SKIPPED_KEYS as u32).map(|index| storage::SkippedKey { index, key: key.clone() }).collect();
        });
        // The limit is per session: the other chains' keys count too.
        assert!(matches!(
            many_skipped,
            Err(Error::TooLarge { what: "skipped message keys", max: MAX_SKIPPED_KEYS, .. })
        ));

        let session = |bytes: &[u8], edit: &dyn Fn(&mut storage::Session)| {
            load_record(&edit_record(bytes, |r| edit(r.active.as_mut().unwrap())))
        };
        assert_eq!(session(&bytes, &|s| s.ratchet = None), malformed("session ratchet"));
        assert_eq!(session(&bytes, &|s| s.base_key.push(0)), malformed("session base key"));
        assert_eq!(session(&bytes, &|s| s.ad.truncate(100)), malformed("session ad"));
        // Bob responded: the AD's first half is the peer's (Alice's) keys.
        assert_eq!(session(&bytes, &|s| s.ad[0] ^= 1), malformed("session ad"));
        assert_eq!(
            session(&bytes, &|s| s.peer.as_mut().unwrap().identity_key[0] ^= 1),
            Err(Error::BadSignature { what: "identity key" })
        );
        assert_eq!(
            session(&bytes, &|s| s.peer.as_mut().unwrap().identity_signature.clear()),
            malformed("identity key signature")
        );
        // Alice still awaits Bob's reply on her active session.
        assert_eq!(session(&a_bytes, &|s| s.ad[0] ^= 1), malformed("session ad"));
        assert_eq!(session(&a_bytes, &|s| s.post_quantum = false), malformed("session post-quantum flag"));
        assert_eq!(
            session(&a_bytes, &|s| {
                s.pending_prekey.as_mut().unwrap().kem_ciphertext.pop();
            }),
            malformed("pending prekey ML-KEM ciphertext")
        );
        assert_eq!(
            session(&a_bytes, &|s| s.pending_prekey.as_mut().unwrap().local = None),
            malformed("pending prekey device")
        );

        // Every session of a record is with the same peer device.
        let other = conversation(&mut rng).b.to_bytes();
        let stranger = storage::SessionRecord::decode(other.as_slice()).unwrap().active.clone().unwrap();
        let mixed = edit_record(&bytes, |r| r.archived.push(stranger.clone()));
        assert_eq!(load_record(&mixed), malformed("session record peers"));
    }
}
