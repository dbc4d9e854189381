//! The fuzz targets' bodies on stable: every body in fuzz/bodies/ (the same code the cargo-fuzz
//! targets in fuzz/fuzz_targets/ run) over its checked-in seeds in fuzz/seeds/NAME/ and
//! deterministic mutations of each seed: every truncation up to [`MAX_TRUNCATIONS`] bytes, single-bit
//! flips at a stride (at most [`MAX_FLIPS`] per seed) and [`RANDOM_MUTATIONS`] fixed-seed random
//! edits. A panic (a failed check) in a body fails the test. Long fuzzing is `scripts/fuzz.sh` (nightly).
//!
//! The seeds are valid inputs made by [`write_seeds`]:
//! `cargo test -p hush-core --test fuzz_corpus -- --ignored write_seeds` rewrites fuzz/seeds/.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

#[path = "../../fuzz/bodies/attachment_decrypt.rs"]
mod attachment_decrypt;
#[path = "../../fuzz/bodies/client_incoming.rs"]
mod client_incoming;
#[path = "../../fuzz/bodies/contact_link.rs"]
mod contact_link;
#[path = "../../fuzz/bodies/content.rs"]
mod content;
#[path = "../../fuzz/bodies/device_list.rs"]
mod device_list;
#[path = "../../fuzz/bodies/group.rs"]
mod group;
#[path = "../../fuzz/bodies/group_log.rs"]
mod group_log;
#[path = "../../fuzz/bodies/link.rs"]
mod link;
#[path = "../../fuzz/bodies/link_uri.rs"]
mod link_uri;
#[path = "../../fuzz/bodies/pickle.rs"]
mod pickle;
#[path = "../../fuzz/bodies/pickle_peer.rs"]
mod pickle_peer;
#[path = "../../fuzz/bodies/pq_chunk.rs"]
mod pq_chunk;
#[path = "../../fuzz/bodies/prekey_bundle.rs"]
mod prekey_bundle;
#[path = "../../fuzz/bodies/sealed_sender.rs"]
mod sealed_sender;
#[path = "../../fuzz/bodies/session_decrypt.rs"]
mod session_decrypt;
#[path = "../../fuzz/bodies/session_message.rs"]
mod session_message;
#[path = "../../fuzz/bodies/store_anchor.rs"]
mod store_anchor;

/// A target's body: one input.
type Body = fn(&[u8]);

/// Every target (the names of fuzz/fuzz_targets/*.rs, fuzz/bodies/*.rs and fuzz/seeds/*/).
const TARGETS: &[(&str, Body)] = &[
    ("attachment_decrypt", attachment_decrypt::run),
    ("client_incoming", client_incoming::run),
    ("contact_link", contact_link::run),
    ("content", content::run),
    ("device_list", device_list::run),
    ("group", group::run),
    ("group_log", group_log::run),
    ("link", link::run),
    ("link_uri", link_uri::run),
    ("pickle", pickle::run),
    ("pickle_peer", pickle_peer::run),
    ("pq_chunk", pq_chunk::run),
    ("prekey_bundle", prekey_bundle::run),
    ("sealed_sender", sealed_sender::run),
    ("session_decrypt", session_decrypt::run),
    ("session_message", session_message::run),
    ("store_anchor", store_anchor::run),
];

/// Truncations tried per seed: every length below this (and below the seed's length).
const MAX_TRUNCATIONS: usize = 64;
/// Single-bit flips per seed, spread over the whole seed at an even stride.
const MAX_FLIPS: usize = 64;
/// Random edits per seed (overwrite, insert or delete a few bytes), from a fixed-seed RNG.
const RANDOM_MUTATIONS: usize = 32;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds")
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = seeds_dir().join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The seed itself and its deterministic mutations.
fn mutations(seed: &[u8], rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    let mut out = vec![seed.to_vec()];
    out.extend((0..seed.len().min(MAX_TRUNCATIONS)).map(|n| seed[..n].to_vec()));
    let bits = seed.len() * 8;
    if bits > 0 {
        let stride = bits.div_ceil(MAX_FLIPS).max(1);
        for bit in (0..bits).step_by(stride) {
            let mut m = seed.to_vec();
            m[bit / 8] ^= 1 << (bit % 8);
            out.push(m);
        }
    }
    for _ in 0..RANDOM_MUTATIONS {
        let mut m = seed.to_vec();
        let at = if m.is_empty() { 0 } else { rng.next_u32() as usize % m.len() };
        let n = 1 + rng.next_u32() as usize % 4;
        match rng.next_u32() % 3 {
            0 => m.iter_mut().skip(at).take(n).for_each(|b| *b = rng.next_u32() as u8),
            1 => {
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
                m.splice(at..at, bytes);
            }
            _ => {
                m.drain(at..(at + n).min(m.len()));
            }
        }
        out.push(m);
    }
    out
}

#[test]
fn every_body_survives_its_seeds_and_their_mutations() {
    let mut rng = ChaCha20Rng::seed_from_u64(0xF0221);
    for (target, run) in TARGETS {
        let seeds = seeds(target);
        assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ has no seeds");
        for (name, seed) in &seeds {
            for input in mutations(seed, &mut rng) {
                let outcome = std::panic::catch_unwind(|| run(&input));
                assert!(outcome.is_ok(), "fuzz target {target} panicked on a mutation of seed {name}: {input:02x?}");
            }
        }
    }
}

#[test]
fn every_fuzz_target_has_a_body_and_seeds() {
    let targets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(targets_dir)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, listed);
}

/// Writes fuzz/seeds/: a few valid inputs per target, each in the shape its body reads.
#[test]
#[ignore = "rewrites fuzz/seeds/; run it after changing a format or a body"]
fn write_seeds() {
    use hush_core::group::{Group, RosterAction};
    use hush_core::sealed_sender::{self, InnerKind};
    use hush_core::store::Unlock;
    use hush_core::wire::relay::{self as relay, ServerFrame, server_frame::Body};
    use hush_core::{
        Account, Client, ClientConfig, Content, ContentBody, PeerUser, SessionConfig, SessionRecord, SignedDeviceList,
        Store, UserIdentity,
    };
    use prost::Message as _;

    let mut rng = ChaCha20Rng::seed_from_u64(0x5EED);
    let mut seeds: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    let cat = |prefix: &[u8], rest: &[u8]| [prefix, rest].concat();

    // 1:1 sessions: a prekey message, a reply and a ratchet step.
    let cfg = SessionConfig { allow_classical: true };
    let mut alice = Account::new(&mut rng);
    let mut bob = Account::new(&mut rng);
    let otk = bob.generate_one_time_prekeys(&mut rng, 1).unwrap();
    let kem = bob.generate_kem_prekeys(&mut rng, 1).unwrap();
    let bundle = bob.prekey_bundle(Some(otk[0].id), Some(kem[0].id)).unwrap();
    let (mut a, mut b) = (SessionRecord::new(), SessionRecord::new());
    a.initiate(&mut rng, alice.identity(), &bundle, cfg).unwrap();
    let prekey = a.encrypt(&mut rng, b"first").unwrap();
    b.decrypt(&mut rng, &mut bob, &prekey, cfg).unwrap();
    let reply = b.encrypt(&mut rng, b"reply").unwrap();
    a.decrypt(&mut rng, &mut alice, &reply, cfg).unwrap();
    seeds.push(("session_message", "prekey", prekey.clone()));
    seeds.push(("session_message", "ratchet", reply.clone()));
    seeds.push(("prekey_bundle", "bundle", bundle.to_bytes()));
    for m in 0..3u8 {
        seeds.push(("session_decrypt", ["prekey", "ratchet_step", "same_chain"][usize::from(m)], vec![m, 0, 0]));
    }
    seeds.push(("session_decrypt", "raw", cat(&[3], &prekey)));
    seeds.push(("pickle", "account", cat(&[0], &alice.to_bytes())));
    seeds.push(("pickle", "session", cat(&[1], &a.to_bytes())));

    // Users, device lists, peers and groups.
    let users: Vec<_> = (0..3).map(|_| UserIdentity::generate(&mut rng)).collect();
    let keys: Vec<_> = users.iter().map(UserIdentity::user_key).collect();
    let list = SignedDeviceList::sign(&users[0], 1, &[alice.device_keys()], 1_700_000_000).unwrap();
    seeds.push(("device_list", "one_device", list.to_bytes()));
    seeds.push(("pickle_peer", "peer", cat(&[0], &PeerUser::new(list).to_bytes())));
    let (mut admin, welcome) = Group::create(&mut rng, &users[0], "seed", &keys[1..], 1).unwrap();
    let message = admin.encrypt(&mut rng, b"hello", 1).unwrap().message;
    let control = admin.change(&users[0], RosterAction::Rename("renamed".into()), 2).unwrap().control;
    seeds.push(("pickle_peer", "group", cat(&[1], &admin.to_bytes())));
    seeds.push(("pickle_peer", "joined", cat(&[1], &Group::join(keys[1], &welcome).unwrap().to_bytes())));
    seeds.extend([
        ("group", "message", vec![0, 0, 0]),
        ("group", "control", vec![1, 0, 0]),
        ("group", "raw_message", cat(&[2], &message)),
        ("group", "raw_control", cat(&[3], &control)),
    ]);

    // The sequenced group log (its own RNG, so the seeds above stay as they were).
    {
        use hush_core::group::GroupId;
        use hush_core::group::log::LogView;
        let mut rng = ChaCha20Rng::seed_from_u64(0x1096_5EED);
        let users: Vec<_> = (0..3).map(|_| UserIdentity::generate(&mut rng)).collect();
        let keys: Vec<_> = users.iter().map(UserIdentity::user_key).collect();
        let group = GroupId::from_slice(&[0x48; 16]).unwrap();
        let (mut admin, create) = LogView::create(&mut rng, &users[0], group, "seed", &keys[1..], 1).unwrap();
        let welcome = admin.accepted(1).unwrap().welcome.unwrap();
        let rename = admin.propose(&mut rng, &users[0], RosterAction::Rename("r".into()), 2).unwrap();
        let member_keys = admin.accepted(2).unwrap().member_keys;
        let mut member = LogView::join(keys[1], &welcome).unwrap();
        member.take_keys(&keys[0], &member_keys).unwrap();
        member.apply(&[relay::GroupLogRecord { epoch: 2, entry: rename.entry.clone() }]).unwrap();
        let member_leave = member.leave_request(&users[1], 3).unwrap();
        seeds.extend([
            ("group_log", "entry", vec![0, 0, 0]),
            ("group_log", "keys", vec![1, 0, 0]),
            ("group_log", "welcome", vec![2, 0, 0]),
            ("group_log", "raw_entry", cat(&[3], &rename.entry)),
            ("group_log", "raw_keys", cat(&[4], &member_keys)),
            ("group_log", "raw_welcome", cat(&[5], &welcome)),
            ("group_log", "raw_leave", cat(&[6], &member_leave)),
            ("group_log", "raw_append", cat(&[7], &create.to_request().encode_to_vec())),
        ]);
    }

    // Sealed sender.
    let sealed = sealed_sender::seal(
        &mut rng,
        &keys[0],
        &sealed_sender::SenderState::new(1, None),
        alice.identity(),
        &bob.device_keys(),
        InnerKind::Session,
        b"a session message",
    )
    .unwrap();
    seeds.extend([
        ("sealed_sender", "session", vec![0, 0, 0]),
        ("sealed_sender", "group", vec![1, 0, 0]),
        ("sealed_sender", "raw", cat(&[2], &sealed)),
    ]);

    // Content and attachments.
    let text = Content::new(&mut rng, 1_700_000_000_000, ContentBody::Text("hello".into()));
    seeds.push(("content", "text", text.to_bytes().unwrap().to_vec()));
    let body = ContentBody::DecryptionError {
        message_hash: [0x5a; 32],
        reason: hush_core::content::DecryptionErrorReason::UnknownPrekey,
    };
    // Its own generator, so the seeds after it keep their bytes.
    let retry_receipt = Content::new(&mut ChaCha20Rng::seed_from_u64(0x16), 1_700_000_000_000, body);
    seeds.push(("content", "decryption_error", retry_receipt.to_bytes().unwrap().to_vec()));
    // Triple ratchet chunks: a key shard to a fresh ciphertext side, a ciphertext shard to a key side
    // whose key went out, no chunk with a move to the next epoch, and a run of three.
    let record = |epoch: u8, body: &[u8]| [&[epoch, body.len() as u8][..], body].concat();
    let shard = |index: u8| [&[1u8, index][..], &[index; 64][..]].concat();
    seeds.push(("pq_chunk", "key_shard", cat(&[0], &record(0, &shard(0)))));
    seeds.push(("pq_chunk", "ciphertext_shard", cat(&[3], &record(0, &shard(20)))));
    seeds.push(("pq_chunk", "next_epoch", cat(&[2], &record(1, &[0]))));
    seeds.push((
        "pq_chunk",
        "run",
        cat(&[1], &[record(0, &shard(1)), record(0, &shard(2)), record(2, &shard(3))].concat()),
    ));
    let (blob, _) = hush_core::attachment::encrypt_bytes(&mut rng, b"a small attachment", 1 << 20).unwrap();
    seeds.extend([
        ("attachment_decrypt", "fixture", vec![0, 0, 0, 0]),
        ("attachment_decrypt", "fixture_digest", vec![1, 0, 0, 0]),
        ("attachment_decrypt", "raw", cat(&[2], &blob)),
    ]);

    // Device links: the link body's fixture (seed 0x11) and an approval for it.
    let mut link_rng = ChaCha20Rng::seed_from_u64(0x11);
    let new_device = Account::new(&mut link_rng);
    let request = hush_core::link::LinkRequest::new(&mut link_rng, &new_device).unwrap();
    let current = SignedDeviceList::sign(&users[0], 1, &[alice.device_keys()], 1_700_000_000).unwrap();
    let approval =
        hush_core::link::approve(&mut rng, &users[0], alice.identity(), &current, &request, b"", 1_700_000_001)
            .unwrap();
    seeds.push(("link", "request", cat(&[0], &request.to_bytes())));
    seeds.push(("link", "approval", cat(&[1], &approval.message)));
    let uri = request.to_uri();
    seeds.push(("link_uri", "uri", uri.as_bytes().to_vec()));
    let after = uri.strip_prefix(hush_core::link::LINK_URI_PREFIX).unwrap_or(&uri);
    seeds.push(("link_uri", "after_prefix", after.as_bytes().to_vec()));

    // The client: its contact link and frames the relay sends.
    let store = Store::open_in_memory(Unlock::Key([5u8; 32].into())).unwrap();
    let client = Client::create(store, ClientConfig::new("ws://seed/v1/ws", "seed"), 1_700_000_000_000).unwrap();
    let contact = client.contact_link().unwrap();
    seeds.push(("contact_link", "bytes", contact.to_bytes()));
    seeds.push(("contact_link", "url", contact.to_url().into_bytes()));
    // The anchor (the body's first byte picks how the rest makes it): the store's own, one slot's
    // generation changed, cut after the header, and a well-formed file of unauthentic slots.
    seeds.push(("store_anchor", "real", vec![1]));
    seeds.push(("store_anchor", "slot_a_changed", cat(&[1], &[[0u8; 19].as_slice(), &[1]].concat())));
    seeds.push(("store_anchor", "header_only", vec![2, 12]));
    seeds.push(("store_anchor", "forged", cat(&[0], &[b"hush/anchor\x01".as_slice(), &[0xff; 80]].concat())));
    let frame = |request_id, body| {
        ServerFrame { version: hush_core::limits::RELAY_PROTOCOL_VERSION, request_id, body: Some(body) }.encode_to_vec()
    };
    seeds.extend([
        (
            "client_incoming",
            "challenge",
            frame(
                0,
                Body::Challenge(relay::Challenge {
                    nonce: vec![7; 32],
                    origin: "ws://seed".into(),
                    server_time: 1_700_000_000,
                }),
            ),
        ),
        ("client_incoming", "ok", frame(1, Body::Ok(relay::Ok {}))),
        (
            "client_incoming",
            "envelope",
            frame(
                0,
                Body::Envelope(relay::Envelope {
                    id: 1,
                    sender_device: Vec::new(),
                    payload: sealed,
                    received_at: 1_700_000_000_000,
                    sealed: true,
                }),
            ),
        ),
        (
            "client_incoming",
            "presence",
            frame(0, Body::Presence(relay::Presence { device_key: vec![9; 32], online: true })),
        ),
    ]);

    let dir = seeds_dir();
    for (target, _) in TARGETS {
        let sub = dir.join(target);
        let _ = std::fs::remove_dir_all(&sub);
        std::fs::create_dir_all(&sub).unwrap();
    }
    for (target, name, bytes) in seeds {
        std::fs::write(dir.join(target).join(name), bytes).unwrap();
    }
}
