//! Proof that no secret-holding type prints key bytes through `Debug` (vodozemac does the same with
//! snapshot tests). Every secret reachable from an `Account` and a `SessionRecord` mid-conversation
//! is collected and searched for in their `Debug` output.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::ratchet::pq::Exchange;
use crate::test_util::assert_no_secret;
use crate::{Account, SessionConfig, SessionRecord};

fn account_secrets(a: &Account) -> Vec<Vec<u8>> {
    let mut out = vec![a.identity.signing.secret_bytes().to_vec(), a.identity.identity.secret_bytes().to_vec()];
    out.extend(a.signed_prekeys.iter().map(|k| k.pair.secret_bytes().to_vec()));
    out.extend(a.one_time_prekeys.values().map(|k| k.secret_bytes().to_vec()));
    out.extend(a.kem_prekeys.values().map(|k| k.secret.seed().to_vec()));
    out
}

fn record_secrets(r: &SessionRecord) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for s in r.active.iter().chain(&r.archived) {
        let st = &s.ratchet;
        out.push(st.root_key.0.to_vec());
        out.push(st.sending_ratchet.secret_bytes().to_vec());
        out.push(st.next_sending_header_key.0.to_vec());
        out.push(st.next_receiving_header_key.0.to_vec());
        out.extend(st.sending_chain.iter().map(|c| c.key.to_vec()));
        out.extend(st.sending_header_key.iter().map(|k| k.0.to_vec()));
        for c in &st.receiving {
            out.push(c.header_key.0.to_vec());
            out.extend(c.chain_key.iter().map(|k| k.key.to_vec()));
            out.extend(c.skipped.iter().map(|k| k.key.to_vec()));
        }
        // The triple ratchet's root, epoch keys, key seed and encapsulation randomness.
        if let Some(pq) = &s.pq {
            out.push(pq.root.0.to_vec());
            out.extend(pq.keys.iter().map(|k| k.key.0.to_vec()));
            match &pq.exchange {
                Exchange::Ek(side) => out.extend(side.key.iter().map(|(seed, _)| seed.0.to_vec())),
                Exchange::Ct(side) => out.extend(side.encapsulation.iter().map(|e| e.m.0.to_vec())),
            }
        }
    }
    out
}

/// Whether `r`'s active session holds a key seed (key side) or encapsulation randomness.
fn pq_secret_held(r: &SessionRecord) -> bool {
    r.active.as_ref().and_then(|s| s.pq.as_ref()).is_some_and(|pq| match &pq.exchange {
        Exchange::Ek(side) => side.key.is_some(),
        Exchange::Ct(side) => side.encapsulation.is_some(),
    })
}

#[test]
fn debug_output_never_contains_secrets() {
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let cfg = SessionConfig::default();
    let mut alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    bob.generate_one_time_prekeys(&mut rng, 3).unwrap();
    bob.generate_kem_prekeys(&mut rng, 2).unwrap();
    let bundle = bob.prekey_bundle(None, None).unwrap();
    let (mut a, mut b) = (SessionRecord::new(), SessionRecord::new());
    a.initiate(&mut rng, alice.identity(), &bundle, cfg).unwrap();
    let first = a.encrypt(&mut rng, b"one").unwrap();
    b.decrypt(&mut rng, &mut bob, &first, cfg).unwrap();
    let reply = b.encrypt(&mut rng, b"two").unwrap();
    a.decrypt(&mut rng, &mut alice, &reply, cfg).unwrap();
    // Leave skipped keys behind on Bob's side.
    let _lost = a.encrypt(&mut rng, b"lost").unwrap();
    let later = a.encrypt(&mut rng, b"later").unwrap();
    b.decrypt(&mut rng, &mut bob, &later, cfg).unwrap();
    assert!(b.active.as_ref().unwrap().ratchet.skipped_count() > 0);
    assert!(pq_secret_held(&a) && pq_secret_held(&b));

    let text = format!("{alice:?}{bob:?}{a:?}{b:?}");
    let secrets: Vec<_> =
        [account_secrets(&alice), account_secrets(&bob), record_secrets(&a), record_secrets(&b)].concat();
    assert!(secrets.len() > 26);
    for secret in &secrets {
        assert_no_secret(&text, secret);
    }
    assert!(text.contains("[redacted]"));
}
