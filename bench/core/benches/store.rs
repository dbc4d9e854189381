//! Encrypted local store benchmarks (`hush_core::store`, docs/PROTOCOL.md §14).
//!
//! ```sh
//! cargo bench -p hush-bench --bench store --features plaintext   # with the plaintext baseline
//! cargo bench -p hush-bench --bench store                         # encrypted only, no ratio
//! ```
//!
//! - insert 100k history messages in one transaction, and read them all back page by page, into an
//!   in-memory store: encrypted, and (with the `plaintext` feature, which turns on hush-core's
//!   `bench-plaintext`) the same schema and code with values and lookups in the clear. The ratio
//!   plaintext time / encrypted time is printed at the end; the goal is at least 0.7 (encryption
//!   costs at most ~30% of the throughput).
//! - one incoming message stored in its own committed transaction, in a file (WAL, fsync).
//! - search one word among the 100k messages.
//! - open a store file with a raw key, and with a passphrase under the default Argon2id parameters.
//!
//! Runs in about 1.5 minutes after the build (10 samples of each 100k-message bench).

// `criterion_group!` generates an undocumented `pub fn`; a bench may panic on a broken fixture.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, criterion_group, measurement::WallTime};
use hush_core::store::{ConversationId, MessageStatus, StoredMessage};
use hush_core::{Argon2Params, Content, ContentBody, Store, Unlock, UserIdentity};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

const MESSAGES: usize = 100_000;
const CONVERSATIONS: usize = 100;
const PAGE: usize = 50;
const PASSPHRASE: &str = "correct horse battery staple";

/// Per-iteration times of the 100k benches, by name, for the ratio table.
static TIMES: Mutex<Vec<(&'static str, Duration)>> = Mutex::new(Vec::new());

fn record(name: &'static str, d: Duration) {
    TIMES.lock().unwrap().push((name, d));
}

fn median(name: &str) -> Option<Duration> {
    let mut v: Vec<Duration> = TIMES.lock().unwrap().iter().filter(|(n, _)| *n == name).map(|(_, d)| *d).collect();
    v.sort();
    v.get(v.len() / 2).copied()
}

/// `count` text messages of 8–16 words from a 2,000-word vocabulary, over 100 conversations.
fn corpus(count: usize) -> (Vec<ConversationId>, Vec<StoredMessage>) {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let vocabulary: Vec<String> = (0..2_000)
        .map(|_| {
            let len = 3 + (rng.next_u32() % 7) as usize;
            (0..len).map(|_| char::from(b'a' + (rng.next_u32() % 26) as u8)).collect()
        })
        .collect();
    let peers: Vec<_> = (0..CONVERSATIONS).map(|_| UserIdentity::generate(&mut rng).user_key()).collect();
    let conversations: Vec<_> = peers.iter().map(|p| ConversationId::Direct(*p)).collect();
    let messages = (0..count)
        .map(|i| {
            let words = 8 + (rng.next_u32() % 9) as usize;
            let text = (0..words)
                .map(|_| vocabulary[(rng.next_u32() as usize) % vocabulary.len()].as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let content = Content::new(&mut rng, 1_700_000_000_000 + i as u64, ContentBody::Text(text));
            let c = i % CONVERSATIONS;
            StoredMessage::from_content(
                conversations[c],
                peers[c],
                &content,
                content.timestamp_ms,
                MessageStatus::Received,
            )
            .unwrap()
        })
        .collect();
    (conversations, messages)
}

fn key() -> Unlock {
    Unlock::Key(Zeroizing::new([7; 32]))
}

fn insert_all(store: &mut Store, messages: &[StoredMessage]) {
    let tx = store.transaction().unwrap();
    for m in messages {
        assert!(tx.insert_message(m).unwrap());
    }
    tx.commit().unwrap();
}

fn read_all(store: &mut Store, conversations: &[ConversationId]) -> usize {
    let tx = store.transaction().unwrap();
    let mut n = 0;
    for c in conversations {
        let mut cursor = None;
        loop {
            let (page, next) = tx.history(c, cursor, PAGE).unwrap();
            n += page.len();
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    n
}

/// Inserting and reading back the 100k messages into a store made by `open`.
fn bench_history(
    g: &mut BenchmarkGroup<'_, WallTime>,
    mode: &'static str,
    open: fn() -> Store,
    conversations: &[ConversationId],
    messages: &[StoredMessage],
) {
    let insert_name: &'static str = if mode == "encrypted" { "insert encrypted" } else { "insert plaintext" };
    let read_name: &'static str = if mode == "encrypted" { "read encrypted" } else { "read plaintext" };
    g.bench_function(format!("insert 100k messages/{mode}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut store = open();
                let start = Instant::now();
                insert_all(&mut store, messages);
                let took = start.elapsed();
                record(insert_name, took);
                total += took;
            }
            total
        })
    });
    let mut store = open();
    insert_all(&mut store, messages);
    g.bench_function(format!("read back 100k messages/{mode}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                assert_eq!(read_all(&mut store, conversations), MESSAGES);
                let took = start.elapsed();
                record(read_name, took);
                total += took;
            }
            total
        })
    });
    if mode == "encrypted" {
        g.bench_function("search one word in 100k messages", |b| {
            let tx = store.transaction().unwrap();
            let word = messages[0].content().unwrap().map(|c| match c.body {
                ContentBody::Text(t) => t.split(' ').next().unwrap().to_owned(),
                _ => unreachable!(),
            });
            let word = word.unwrap();
            b.iter(|| tx.search(&word, 50).unwrap())
        });
    }
}

fn history(c: &mut Criterion) {
    let (conversations, messages) = corpus(MESSAGES);
    let mut g = c.benchmark_group("store");
    g.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(100));
    g.measurement_time(Duration::from_secs(2));
    bench_history(&mut g, "encrypted", || Store::open_in_memory(key()).unwrap(), &conversations, &messages);
    #[cfg(feature = "plaintext")]
    bench_history(
        &mut g,
        "plaintext",
        || Store::insecure_plaintext_in_memory_for_benchmarks().unwrap(),
        &conversations,
        &messages,
    );
    g.finish();
}

fn open_and_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (_, messages) = corpus(1_000);
    let key_path = dir.path().join("key.db");
    let mut store = Store::create(&key_path, key()).unwrap();
    insert_all(&mut store, &messages);
    store.close().unwrap();
    let pass_path = dir.path().join("passphrase.db");
    let passphrase = || Unlock::Passphrase(Zeroizing::new(PASSPHRASE.into()), Argon2Params::default());
    Store::create(&pass_path, passphrase()).unwrap().close().unwrap();

    let mut g = c.benchmark_group("store");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    g.bench_function("open with key", |b| b.iter(|| Store::open(&key_path, key()).unwrap()));
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("open with passphrase (default Argon2id)", |b| {
        b.iter(|| Store::open(&pass_path, passphrase()).unwrap())
    });
    let mut store = Store::open(&key_path, key()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let conversation = messages[0].conversation;
    let sender = messages[0].sender;
    g.bench_function("store one incoming message, one committed transaction (file, WAL)", |b| {
        b.iter(|| {
            let content = Content::new(&mut rng, 1, ContentBody::Text("a short message on its own".into()));
            let m = StoredMessage::from_content(conversation, sender, &content, 2, MessageStatus::Received).unwrap();
            let tx = store.transaction().unwrap();
            tx.mark_processed(rng.next_u64(), 2).unwrap();
            tx.insert_message(&m).unwrap();
            tx.commit().unwrap();
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = history, open_and_commit
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();

    let secs = |d: Option<Duration>| d.map_or("—".to_owned(), |d| format!("{:.3} s", d.as_secs_f64()));
    let ratio = |plain: Option<Duration>, enc: Option<Duration>| match (plain, enc) {
        (Some(p), Some(e)) if !e.is_zero() => format!("{:.2}×", p.as_secs_f64() / e.as_secs_f64()),
        _ => "—".to_owned(),
    };
    println!();
    println!("Store, {MESSAGES} messages (median of the samples):");
    println!("| operation | encrypted | plaintext | throughput ratio (goal ≥ 0.70×) |");
    println!("|---|---|---|---|");
    for (op, enc, plain) in
        [("insert", "insert encrypted", "insert plaintext"), ("read back", "read encrypted", "read plaintext")]
    {
        let (e, p) = (median(enc), median(plain));
        println!("| {op} | {} | {} | {} |", secs(e), secs(p), ratio(p, e));
    }
    if cfg!(not(feature = "plaintext")) {
        println!("(plaintext baseline not built: run with `--features plaintext` for the ratio)");
    }
}
