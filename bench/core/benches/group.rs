//! Group benchmarks: sender-key encrypt + decrypt of 1 KB against vodozemac's Megolm in the same
//! run, and the cost of one roster change in groups of 100 and 1000 member devices (time and bytes
//! the admin sends), with the first message after it (the fresh chain's distribution).
//!
//! `cargo bench -p hush-bench --bench group`; the ratio table prints at the end.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group};
use hush_core::group::{Group, RosterAction};
use hush_core::{Account, SessionConfig, SessionRecord, UserIdentity};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use vodozemac::megolm::{GroupSession, InboundGroupSession, MegolmMessage, SessionConfig as MegolmConfig};

const G_MESSAGE: &str = "group encrypt+decrypt 1 KB";
const G_ROSTER: &str = "group roster change (remove one member)";
const HUSH: &str = "hush sender keys";
const MEGOLM: &str = "vodozemac Megolm";
const MSG: [u8; 1024] = [0x33; 1024];
const CFG: SessionConfig = SessionConfig { allow_classical: false };

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .without_plots()
}

fn group_message(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let users: Vec<_> = (0..2).map(|_| UserIdentity::generate(&mut rng)).collect();
    let (mut sender, welcome) = Group::create(&mut rng, &users[0], "bench", &[users[1].user_key()], 1).unwrap();
    let mut reader = Group::join(users[1].user_key(), &welcome).unwrap();
    let first = sender.encrypt(&mut rng, b"start", 1).unwrap();
    reader.process_distribution(users[0].user_key(), users[0].user_key(), &first.distribution.unwrap()).unwrap();
    let device = users[0].user_key();
    reader.decrypt(&device, &first.message).unwrap();

    let mut outbound = GroupSession::new(MegolmConfig::version_1());
    let mut inbound = InboundGroupSession::new(&outbound.session_key(), MegolmConfig::version_1());

    let mut g = c.benchmark_group(G_MESSAGE);
    g.bench_function(HUSH, |b| {
        b.iter(|| {
            let m = sender.encrypt(&mut rng, black_box(&MSG), 1).unwrap().message;
            black_box(reader.decrypt(&device, &m).unwrap());
        })
    });
    g.bench_function(MEGOLM, |b| {
        b.iter(|| {
            // Both sides include their wire encoding.
            let bytes = outbound.encrypt(black_box(MSG)).to_bytes();
            black_box(inbound.decrypt(&MegolmMessage::from_bytes(&bytes).unwrap()).unwrap());
        })
    });
    g.finish();
}

/// A group of `n` member devices, one per user: the admin's and `n - 1` others, each with an
/// established 1:1 session from the admin.
struct Roster {
    admin: UserIdentity,
    group: Group,
    sessions: Vec<SessionRecord>,
    victim: hush_core::SigningPublicKey,
}

fn roster(n: usize) -> Roster {
    let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
    let admin = UserIdentity::generate(&mut rng);
    let admin_device = Account::new(&mut rng);
    let members: Vec<_> = (1..n).map(|_| UserIdentity::generate(&mut rng).user_key()).collect();
    let (group, _) = Group::create(&mut rng, &admin, "bench", &members, 1).unwrap();
    let mut sessions = Vec::with_capacity(n - 1);
    for _ in 1..n {
        let mut member = Account::new(&mut rng);
        let mut a = SessionRecord::new();
        a.initiate(&mut rng, admin_device.identity(), &member.prekey_bundle(None, None).unwrap(), CFG).unwrap();
        let mut b = SessionRecord::new();
        let hello = a.encrypt(&mut rng, b"hi").unwrap();
        b.decrypt(&mut rng, &mut member, &hello, CFG).unwrap();
        // The admin's account is not needed to decrypt a reply on an existing session.
        let reply = b.encrypt(&mut rng, b"hi").unwrap();
        a.decrypt(&mut rng, &mut admin_device.clone(), &reply, CFG).unwrap();
        sessions.push(a);
    }
    Roster { admin, group, sessions, victim: members[0] }
}

/// One removal: the signed change, sent inside the 1:1 session to every member device (the
/// removed one included, so it learns), then the admin's first message after it, which starts a
/// fresh chain and sends its distribution to every remaining device. Returns the bytes sent.
fn remove_and_send(r: &mut Roster, rng: &mut ChaCha20Rng) -> (usize, usize) {
    let update = r.group.change(&r.admin, RosterAction::Remove(r.victim), 2).unwrap();
    let mut change_bytes = 0;
    for s in &mut r.sessions {
        change_bytes += s.encrypt(rng, &update.control).unwrap().len();
    }
    let send = r.group.encrypt(rng, &MSG[..100], 1).unwrap();
    let dist = send.distribution.unwrap();
    let mut send_bytes = send.message.len();
    for s in r.sessions.iter_mut().skip(1) {
        send_bytes += s.encrypt(rng, &dist).unwrap().len();
    }
    (change_bytes, send_bytes)
}

fn roster_change(c: &mut Criterion) {
    let mut g = c.benchmark_group(G_ROSTER);
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for n in [100usize, 1000] {
        let base = roster(n);
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (change_bytes, send_bytes) = remove_and_send(&mut clone(&base), &mut rng);
        println!(
            "roster change, {n} member devices: change fan-out {change_bytes} B ({} B per device), \
             first message after it {send_bytes} B (fresh chain to {} devices)",
            change_bytes / (n - 1),
            n - 2
        );
        g.bench_function(format!("{n} member devices, change + first message"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut r = clone(&base);
                    let start = Instant::now();
                    black_box(remove_and_send(&mut r, &mut rng));
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

fn clone(r: &Roster) -> Roster {
    Roster { admin: r.admin.clone(), group: r.group.clone(), sessions: r.sessions.clone(), victim: r.victim }
}

criterion_group! {
    name = benches;
    config = config();
    targets = group_message, roster_change
}

fn main() {
    let started = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    let dir = common::criterion_dir();
    let m = |g: &str, b: &str| common::mean_ns(&dir, started, g, b);
    let (ours, theirs) = (m(G_MESSAGE, HUSH), m(G_MESSAGE, MEGOLM));
    println!("\n{G_MESSAGE}: hush {} vs Megolm {}", common::fmt_ns(ours), common::fmt_ns(theirs));
    if let (Some(o), Some(t)) = (ours, theirs) {
        println!("  hush throughput = {:.2}× Megolm (target ≥ 1.2×)", t / o);
    }
    for n in [100, 1000] {
        let t = m(G_ROSTER, &format!("{n} member devices, change + first message"));
        println!("{G_ROSTER}, {n} member devices: {}", common::fmt_ns(t));
    }
}
