//! Crash safety: a sender keeps sending while the relay process is killed with SIGKILL and restarted
//! several times; every message the relay acknowledged is delivered afterwards (exactly once after
//! the client's dedupe). Quick mode here (3 kills); `HUSH_RELAY_FAULT_KILLS=50` for a long run. On
//! Postgres too when `HUSH_RELAY_TEST_POSTGRES` is set.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use hush_core::DeviceIdentity;
use hush_core::wire::relay::server_frame::Body as Resp;
use rand_core::OsRng;

/// Kills the relay process when dropped, so a failing test leaves no process behind.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Drops the test's Postgres schema at the end, if it used one.
struct DropSchema(Option<(String, String)>);

impl Drop for DropSchema {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.0 {
            drop_schema(url, schema);
        }
    }
}

/// Starts the real binary on a free loopback port (given by `port`, 0 for any) and returns it with
/// its address, read from its "listening" log line.
fn spawn_relay(dir: &std::path::Path, port: u16, postgres: Option<&(String, String)>) -> (Relay, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hush-relay"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--origin", "http://relay.test", "--log", "info"])
        .arg("--data-dir")
        .arg(dir);
    if let Some((url, schema)) = postgres {
        command.args(["--database-url", url, "--postgres-schema", schema]);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start hush-relay");
    let stdout = child.stdout.take().expect("stdout");
    let child = Relay(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("relay exited before listening").expect("read stdout");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().expect("address").parse().expect("socket address");
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let kills: usize = std::env::var("HUSH_RELAY_FAULT_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let postgres = postgres_url().map(|url| (url, fresh_schema()));
    let _drop_schema = DropSchema(postgres.clone());
    let (child, addr) = spawn_relay(dir.path(), 0, postgres.as_ref());
    let mut child = Some(child);
    let mut bob = Device::new();
    {
        let mut c = Client::connect(addr).await;
        c.auth(bob.identity()).await;
        let prekeys = bob.prekeys(1);
        c.ok(prekeys).await;
    }
    let alice = DeviceIdentity::generate(&mut OsRng);
    let mut acked = BTreeSet::new();
    let mut seq = 0u32;
    for round in 0..=kills {
        let mut a = Client::connect(addr).await;
        a.auth(&alice).await;
        // Send until the kill lands in the middle of the stream: another thread kills the relay a
        // moment after this round's fifth acknowledgement, while sends keep going.
        let (acks_tx, acks_rx) = std::sync::mpsc::channel::<()>();
        let killer = (round < kills).then(|| {
            let victim = child.take().expect("running relay");
            std::thread::spawn(move || {
                let _ = acks_rx.recv_timeout(TIMEOUT);
                std::thread::sleep(Duration::from_millis(20));
                drop(victim);
            })
        });
        let mut acked_this_round = 0;
        loop {
            seq += 1;
            let (id, frame) = a.frame(send_to(&bob.key(), &seq.to_be_bytes()));
            if !a.try_send_raw(prost::Message::encode_to_vec(&frame)).await {
                break;
            }
            match a.try_answer(id).await {
                Some(Resp::SendResult(_)) => {
                    acked.insert(seq);
                    acked_this_round += 1;
                    if acked_this_round == 5 {
                        let _ = acks_tx.send(());
                    }
                }
                Some(other) => panic!("unexpected answer {other:?}"),
                None => break,
            }
            if killer.is_none() && acked.len() >= 20 * (kills + 1) {
                break;
            }
        }
        eprintln!("round {round}: {acked_this_round} sends acknowledged, last sequence number {seq}");
        match killer {
            Some(k) => {
                k.join().unwrap();
                child = Some(spawn_relay(dir.path(), addr.port(), postgres.as_ref()).0);
            }
            None => {
                // Last round: drain Bob's mailbox and check.
                let mut b = Client::connect(addr).await;
                b.auth(bob.identity()).await;
                // A lost message would leave this loop waiting, and next_envelope fails after TIMEOUT.
                let mut delivered = BTreeSet::new();
                let depth_target = acked.len();
                while delivered.len() < depth_target || !acked.is_subset(&delivered) {
                    let env = b.next_envelope().await;
                    let n = u32::from_be_bytes(env.payload.as_slice().try_into().unwrap());
                    delivered.insert(n);
                    b.ok(ack(vec![env.id])).await;
                }
                assert!(acked.is_subset(&delivered), "an acknowledged message was lost");
                return;
            }
        }
        assert!(acked.len() > round, "nothing was acknowledged in round {round}");
    }
}
