//! Crash consistency: a child process receives a long stream of messages and is killed with SIGKILL
//! at random points; after every restart each message is in history exactly once, and the sessions
//! still work both ways afterwards.
//!
//! The parent test ([`every_message_is_kept_exactly_once_across_sigkills`]) sets up Alice (in
//! memory) and Bob (a store file), has Alice send [`messages`] texts while Bob is offline, and
//! writes the envelopes the relay holds for Bob to a file. The child ([`child`], this same test
//! binary run again with `--exact --ignored`) opens Bob's store and plays the relay's part: it
//! delivers every envelope not yet acked, in random batches, and appends the ids of each Ack frame
//! Bob emits (after his commit) to an ack file, fsynced — the relay deleting acked messages. As a
//! relay that missed the last acks would, each restart also delivers the last few acked envelopes
//! again. The parent kills the child after it acked a random number of further envelopes plus a
//! random few hundred microseconds (and sometimes before it even opened the store), restarts it,
//! and after the kills lets one last run finish.
//!
//! `HUSH_CRASH_RUNS` (default 50) sets the number of kills, `HUSH_CRASH_MESSAGES` the stream length
//! (default 20 per kill, at least 1000), `HUSH_CRASH_SEED` the seed (printed on every run).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message as _;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

use super::test_relay::TestRelay;
use super::tests::new_client;
use super::*;
use crate::store::{ConversationId, Unlock};
use crate::wire::relay::client_frame::Body as Req;

const T0: u64 = 1_700_000_000_000;
/// Names the directory holding Bob's store, the envelopes and the ack file (the child's input).
const DIR_VAR: &str = "HUSH_CRASH_CHILD_DIR";
/// Seeds the child's batch sizes.
const CHILD_SEED_VAR: &str = "HUSH_CRASH_CHILD_SEED";
const READY: &str = "hush-crash-child: ready";
/// Acked envelopes delivered again on each restart (acks the relay may not have received).
const REDELIVER: usize = 3;

fn bob_key() -> Unlock {
    Unlock::Key(Zeroizing::new([0xb0; 32]))
}

fn bob_config() -> ClientConfig {
    let mut config = ClientConfig::new("ws://relay.test/v1/ws", "Bob");
    // The child has no relay to deliver receipts to; Bob's outbox stays empty.
    config.delivery_receipts = false;
    config
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn text_of(i: usize) -> String {
    format!("crash stream message {i}")
}

/// Relay message ids acked so far, in the order acked (a torn last record is ignored).
fn read_acks(path: &Path) -> Vec<u64> {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        f.read_to_end(&mut bytes).unwrap();
    }
    bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
}

fn acks_len(path: &Path) -> usize {
    std::fs::metadata(path).map_or(0, |m| m.len() as usize / 8)
}

fn read_envelopes(path: &Path) -> Vec<relay::Envelope> {
    let bytes = std::fs::read(path).unwrap();
    let mut buf = bytes.as_slice();
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(relay::Envelope::decode_length_delimited(&mut buf).unwrap());
    }
    out
}

/// The child: Bob's device receiving whatever the "relay" (the envelope and ack files) still holds.
/// Run only by the parent test (it returns at once without its environment).
#[test]
#[ignore = "run by every_message_is_kept_exactly_once_across_sigkills in a child process"]
fn child() {
    let Some(dir) = std::env::var_os(DIR_VAR).map(PathBuf::from) else { return };
    let mut rng = ChaCha20Rng::seed_from_u64(env_number(CHILD_SEED_VAR).unwrap_or(0));
    let envelopes = read_envelopes(&dir.join("envelopes.bin"));
    let acks_path = dir.join("acks.bin");
    let acked = read_acks(&acks_path);
    let store = Store::open(dir.join("bob.db"), bob_key()).unwrap();
    let mut bob = Client::open(store, bob_config()).unwrap();
    bob.on_connected(T0).unwrap();
    bob.take_outgoing();
    println!("{READY}");
    std::io::stdout().flush().unwrap();

    let acked_set: HashSet<u64> = acked.iter().copied().collect();
    let again: HashSet<u64> = acked.iter().rev().take(REDELIVER).copied().collect();
    let mut queue: Vec<relay::Envelope> =
        envelopes.into_iter().filter(|e| !acked_set.contains(&e.id) || again.contains(&e.id)).collect();
    let mut acks = OpenOptions::new().create(true).append(true).open(&acks_path).unwrap();
    while !queue.is_empty() {
        let take = (1 + rng.next_u32() as usize % 4).min(queue.len());
        let batch: Vec<relay::Envelope> = queue.drain(..take).collect();
        bob.handle_envelopes(batch, T0 + 1).unwrap();
        for frame in bob.take_outgoing() {
            if let Some(Req::Ack(a)) = frame.body {
                let bytes: Vec<u8> = a.ids.iter().flat_map(|id| id.to_le_bytes()).collect();
                acks.write_all(&bytes).unwrap();
                acks.sync_data().unwrap();
            }
        }
    }
}

/// Spawns the child on `dir`.
fn spawn_child(dir: &Path, seed: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["client::crash_tests::child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env(CHILD_SEED_VAR, seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(dir.join("child-stderr.txt")).unwrap())
        .spawn()
        .unwrap()
}

fn child_stderr(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("child-stderr.txt")).unwrap_or_default()
}

/// Reads the child's output until it says it is ready; `false` if it ended first.
fn wait_ready(child: &mut Child) -> bool {
    let Some(stdout) = child.stdout.take() else { return false };
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.any(|l| l.is_ok_and(|l| l.contains(READY)));
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    ready
}

#[test]
fn every_message_is_kept_exactly_once_across_sigkills() {
    let runs = env_number("HUSH_CRASH_RUNS").unwrap_or(50).max(1) as usize;
    let n = env_number("HUSH_CRASH_MESSAGES").map_or((runs * 20).max(1000), |n| n as usize);
    let seed = env_number("HUSH_CRASH_SEED").unwrap_or_else(|| OsRng.next_u64());
    println!("crash test: {runs} kills, {n} messages, HUSH_CRASH_SEED={seed}");
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let started = Instant::now();

    // Alice and Bob, contacts of each other, Bob on a file store.
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut relay = TestRelay::default();
    let mut alice = new_client("Alice");
    let mut bob = Client::create(Store::create(dir.join("bob.db"), bob_key()).unwrap(), bob_config(), T0).unwrap();
    relay.connect(&mut alice, T0);
    relay.connect(&mut bob, T0);
    relay.pump(&mut [&mut alice, &mut bob], T0);
    alice.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
    bob.add_contact(&alice.contact_link().unwrap(), T0).unwrap();
    relay.pump(&mut [&mut alice, &mut bob], T0);
    let (a2b, b2a) =
        (ConversationId::Direct(bob.user_key().unwrap()), ConversationId::Direct(alice.user_key().unwrap()));
    relay.disconnect(&mut bob);
    drop(bob);

    // The stream, queued at the relay for Bob.
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        sent.push(alice.send_text(&a2b, &text_of(i), T0 + i as u64).unwrap());
        relay.pump(&mut [&mut alice], T0 + i as u64);
    }
    let bob_device = {
        let store = Store::open(dir.join("bob.db"), bob_key()).unwrap();
        Client::open(store, bob_config()).unwrap()
    };
    let envelopes = relay.mailbox(&bob_device);
    drop(bob_device);
    assert_eq!(envelopes.len(), n);
    let mut file = Vec::new();
    for e in &envelopes {
        e.encode_length_delimited(&mut file).unwrap();
    }
    std::fs::write(dir.join("envelopes.bin"), file).unwrap();
    let acks_path = dir.join("acks.bin");
    println!("crash test: stream of {n} ready after {:?}", started.elapsed());

    // Kill the child `runs` times at random points, then let it finish.
    let max_step = (n / runs).max(1) as u64;
    let (mut kills, mut early_kills) = (0, 0);
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        let mut child = spawn_child(dir, rng.next_u64());
        if kills == runs {
            let status = child.wait().unwrap();
            assert!(status.success(), "final run failed: {status}\n{}", child_stderr(dir));
            break;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        if rng.next_u32() % 8 == 0 {
            // Somewhere in start-up: opening the store, WAL recovery, the client's first reads.
            std::thread::sleep(Duration::from_micros(u64::from(rng.next_u32() % 15_000)));
            early_kills += 1;
        } else {
            assert!(wait_ready(&mut child), "child never got ready (seed {seed})\n{}", child_stderr(dir));
            let target = acks_len(&acks_path) + (rng.next_u64() % (max_step + 1)) as usize;
            while acks_len(&acks_path) < target && child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "child stalled (seed {seed})");
                std::thread::sleep(Duration::from_micros(100));
            }
            std::thread::sleep(Duration::from_micros(u64::from(rng.next_u32() % 1_500)));
        }
        // SIGKILL on Unix.
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            panic!("the stream was done after {kills} of {runs} kills; raise HUSH_CRASH_MESSAGES (seed {seed})");
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(9), "child failed, not killed (seed {seed}): {status}\n{}", {
                child_stderr(dir)
            });
        }
        kills += 1;
    }
    let acked = read_acks(&acks_path);
    let distinct: HashSet<u64> = acked.iter().copied().collect();
    println!(
        "crash test: {kills} kills ({early_kills} during start-up), {} runs, {} acks for {n} envelopes, {:?}",
        attempts,
        acked.len(),
        started.elapsed()
    );
    assert_eq!(distinct, envelopes.iter().map(|e| e.id).collect(), "every envelope acked");

    // Bob's history: every message exactly once, in order, nothing else.
    let mut bob = Client::open(Store::open(dir.join("bob.db"), bob_key()).unwrap(), bob_config()).unwrap();
    let mut history = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = bob.history(&b2a, cursor, 100).unwrap();
        history.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    history.reverse();
    assert_eq!(history.len(), n, "messages in history (seed {seed})");
    for (i, (m, id)) in history.iter().zip(&sent).enumerate() {
        assert_eq!(m.id, *id, "message {i} (seed {seed})");
        assert_eq!(m.sender, alice.user_key().unwrap());
        assert_eq!(m.content().unwrap().unwrap().body, ContentBody::Text(text_of(i)));
    }
    let conversation = bob.conversations().unwrap().into_iter().find(|c| c.id == b2a).unwrap();
    assert_eq!(conversation.unread as usize, n, "each message counted unread once (seed {seed})");
    {
        let tx = bob.store_mut().transaction().unwrap();
        for e in &envelopes {
            assert!(tx.is_processed(super::incoming::processed_mark(e)).unwrap());
        }
        tx.commit().unwrap();
    }

    // The sessions still work: the relay pushes everything again (deduped, acked), then one message
    // each way.
    relay.connect(&mut bob, T0 + 1_000_000);
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1_000_000);
    assert!(events[1].iter().all(|e| !matches!(e, Event::Message(_) | Event::MessageRequest(_))), "{:?}", events[1]);
    assert_eq!(relay.mailbox_len(&bob), 0);
    alice.send_text(&a2b, "after the crashes", T0 + 1_000_001).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1_000_001);
    assert!(
        matches!(&events[1][..], [Event::Message(m)] if m.content().unwrap().unwrap().body == ContentBody::Text("after the crashes".into())),
        "{:?}",
        events[1]
    );
    bob.send_text(&b2a, "still here", T0 + 1_000_002).unwrap();
    let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1_000_002);
    assert!(
        events[0].iter().any(|e| matches!(e, Event::Message(m) if m.content().unwrap().unwrap().body == ContentBody::Text("still here".into()))),
        "{:?}",
        events[0]
    );
    let (page, _) = bob.history(&b2a, None, 3).unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(page[0].content().unwrap().unwrap().body, ContentBody::Text("still here".into()));
    assert_eq!(page[2].id, sent[n - 1]);
}
