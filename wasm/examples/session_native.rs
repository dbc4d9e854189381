//! Native encrypt + decrypt throughput of 100-byte messages on an established session, through the
//! same `BenchSession` code that `wasm/bench/session.mjs` runs in wasm. Prints one JSON line.
//!
//! `cargo run --release -p hush-wasm --features bench --example session_native -- [rounds]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use hush_wasm::BenchSession;

fn main() {
    let rounds: u32 = std::env::args().nth(1).map(|a| a.parse().expect("rounds")).unwrap_or(20_000);
    let message = [0x5a_u8; 100];
    let mut session = BenchSession::new().map_err(|e| e.message()).unwrap();
    // Warm up, then the timed run in one batch (as the wasm side does).
    session.round_trips(&message, rounds / 10 + 1).map_err(|e| e.message()).unwrap();
    let start = Instant::now();
    let total = session.round_trips(&message, rounds).map_err(|e| e.message()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(total, f64::from(rounds) * 100.0);
    println!(
        "{{\"runtime\":\"native\",\"rounds\":{rounds},\"us_per_round_trip\":{:.3},\"round_trips_per_sec\":{:.0}}}",
        secs * 1e6 / f64::from(rounds),
        f64::from(rounds) / secs
    );
}
