//! FFI overhead benchmark, Rust side: the same `HushClient` calls the Kotlin and Python benchmarks
//! make (bench/ffi.sh runs all three against one relay and prints the ratios).
//!
//! `cargo run --release -p hush-ffi --example roundtrip -- <relay ws url> [round trips]`
//!
//! Measures (1) a local call, `history(conversation, None, 20)` on a 20-message conversation, and
//! (2) `sendText` on one client until the other client's listener gets the message, through the
//! relay, one at a time.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hush_ffi::{HushClient, HushEvent, HushListener, ListenerError};

struct Channel(mpsc::Sender<HushEvent>);

impl HushListener for Channel {
    fn on_event(&self, event: HushEvent) -> Result<(), ListenerError> {
        let _ = self.0.send(event);
        Ok(())
    }
}

fn client(relay: &str, name: &str) -> (Arc<HushClient>, mpsc::Receiver<HushEvent>) {
    let c = HushClient::create(":memory:".into(), Some(vec![7; 32]), None, relay.into(), name.into())
        .unwrap_or_else(|e| panic!("create: {e}"));
    let (tx, rx) = mpsc::channel();
    c.set_listener(Arc::new(Channel(tx)));
    (c, rx)
}

fn wait_message(rx: &mpsc::Receiver<HushEvent>) -> String {
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(HushEvent::Message { message } | HushEvent::MessageRequest { message }) => {
                return message.text.unwrap_or_default();
            }
            Ok(_) => {}
            Err(e) => panic!("no message: {e}"),
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let relay = args.next().unwrap_or_else(|| "ws://127.0.0.1:8080/v1/ws".into());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200);
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let (a, _a_events) = client(&relay, "bench-a");
    let (b, b_events) = client(&relay, "bench-b");
    runtime.block_on(async {
        a.connect().await.unwrap_or_else(|e| panic!("connect: {e}"));
        b.connect().await.unwrap_or_else(|e| panic!("connect: {e}"));
    });
    let to_b = a
        .direct_conversation(
            a.add_contact(b.contact_link().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    // Warm-up: sessions, and 20 messages of history.
    for i in 0..20 {
        a.send_text(to_b.clone(), format!("warm-up {i}")).unwrap_or_else(|e| panic!("{e}"));
        wait_message(&b_events);
    }

    let calls = 2_000;
    let start = Instant::now();
    for _ in 0..calls {
        let page = a.history(to_b.clone(), None, 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page.messages.len(), 20);
    }
    let local_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(calls);

    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        a.send_text(to_b.clone(), format!("ping {i}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(wait_message(&b_events), format!("ping {i}"));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let p50 = times[times.len() / 2];
    println!(
        "{{\"language\":\"rust\",\"history_call_us\":{local_us:.1},\"roundtrip_mean_us\":{mean:.0},\"roundtrip_p50_us\":{p50:.0}}}"
    );
    runtime.block_on(async {
        a.disconnect().await;
        b.disconnect().await;
    });
}
