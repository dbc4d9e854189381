//! Several requests in flight on one socket: sends and acks written back to back without waiting
//! for answers are applied in arrival order, each answered once committed, and acks in flight never
//! make the relay deliver a message twice. Runs on every backend (on Postgres the relay answers one
//! request at a time, which must look the same from outside).

mod common;

use std::collections::HashSet;

use common::*;
use hush_core::DeviceIdentity;
use hush_core::wire::relay::{Ack, GetPrekeyCounts, client_frame::Body as Req, server_frame::Body as Resp};
use prost::Message;
use rand_core::OsRng;

/// Writes every request before reading any answer; returns the answers in request order.
async fn burst(c: &mut Client, bodies: Vec<Req>) -> Vec<Resp> {
    let mut ids = Vec::new();
    for body in bodies {
        let (id, frame) = c.frame(body);
        c.send_raw(frame.encode_to_vec()).await;
        ids.push(id);
    }
    let mut answers = Vec::new();
    for id in ids {
        answers.push(c.answer(id).await);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sends_is_applied_and_delivered_in_arrival_order() {
    let relay = TestRelay::start().await;
    let mut bob = Device::new();
    let mut b = bob.register(&relay, 1).await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    // More than a socket may have in flight, so the relay also stops reading and resumes.
    let n = 200u32;
    let sends = (0..n).map(|i| send_to(&bob.key(), &i.to_be_bytes())).collect();
    let answers = burst(&mut a, sends).await;
    let ids: Vec<u64> = answers.into_iter().flat_map(message_ids).collect();
    assert_eq!(ids.len(), n as usize);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids follow arrival order: {ids:?}");

    let mut received = Vec::new();
    for i in 0..n {
        let env = b.next_envelope().await;
        assert_eq!(env.payload, i.to_be_bytes().to_vec(), "delivered in the order sent");
        received.push(env.id);
    }
    assert_eq!(received, ids);
    // A request that is not pipelined, right behind a burst of acks, is answered after all of them.
    let mut bodies: Vec<Req> = ids.iter().map(|id| ack(vec![*id])).collect();
    bodies.push(Req::GetPrekeyCounts(GetPrekeyCounts {}));
    let answers = burst(&mut b, bodies).await;
    assert!(answers[..n as usize].iter().all(|r| matches!(r, Resp::Ok(_))), "every ack answered Ok");
    assert!(matches!(answers[n as usize], Resp::PrekeyCounts(_)));
    assert_eq!(relay.queue_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_in_flight_never_cause_a_second_delivery() {
    let relay = TestRelay::start().await;
    let mut bob = Device::new();
    let mut b = bob.register(&relay, 1).await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let rounds = 10u32;
    let per_round = 20u32;
    let mut seen = HashSet::new();
    for round in 0..rounds {
        let sends = (0..per_round).map(|i| send_to(&bob.key(), &(round * per_round + i).to_be_bytes())).collect();
        let _ = burst(&mut a, sends).await;
        // Ack each envelope as it comes without waiting for the answer, while more mail arrives.
        let mut acked = Vec::new();
        for _ in 0..per_round {
            let env = b.next_envelope().await;
            assert!(seen.insert(env.id), "message {} delivered twice", env.id);
            let (id, frame) = b.frame(Req::Ack(Ack { ids: vec![env.id] }));
            b.send_raw(frame.encode_to_vec()).await;
            acked.push(id);
        }
        for id in acked {
            assert!(matches!(b.answer(id).await, Resp::Ok(_)));
        }
    }
    assert_eq!(seen.len(), (rounds * per_round) as usize);
    assert_eq!(relay.queue_depth().await, 0);
    // Nothing more comes: a request's answer is the next frame.
    match b.request(Req::GetPrekeyCounts(GetPrekeyCounts {})).await {
        Resp::PrekeyCounts(_) => {}
        other => panic!("{other:?}"),
    }
    assert!(b.pushed_is_empty(), "no envelope delivered again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_comes_before_an_envelope_is_still_its_requests_answer() {
    // The relay writes answers and pushes on one socket in whatever order they are ready; a client
    // waiting for an envelope must keep the answer for the request that asked (the harness once
    // dropped it, which made the test above hang when envelopes lagged behind ack answers).
    let relay = TestRelay::start().await;
    let mut bob = Device::new();
    let mut b = bob.register(&relay, 1).await;
    let mut a = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let (id, frame) = b.frame(Req::GetPrekeyCounts(GetPrekeyCounts {}));
    b.send_raw(frame.encode_to_vec()).await;
    let sent = message_ids(a.request(send_to(&bob.key(), b"after the request")).await);
    let env = b.next_envelope().await;
    assert_eq!(vec![env.id], sent);
    assert!(matches!(b.answer(id).await, Resp::PrekeyCounts(_)), "the answer read before the envelope is kept");
    assert!(b.pushed_is_empty());
}
