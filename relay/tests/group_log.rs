//! A group's sequenced roster log over the wire (docs/PROTOCOL.md §11.9, §15.5): members create it,
//! append and fetch through a real relay, on sockets that authenticate only to create; concurrent
//! changes meet a conflict and are re-based; a stranger, a removed member and a replay are refused.
//! On SQLite, and on Postgres when `HUSH_RELAY_TEST_POSTGRES` is set (the relay-pg step).

mod common;

use common::*;
use hush_core::group::log::{Append, LogView};
use hush_core::group::{GroupId, RosterAction};
use hush_core::wire::relay::{
    ErrorCode, GroupLog, GroupLogFetch, client_frame::Body as Req, server_frame::Body as Resp,
};
use hush_core::{DeviceIdentity, UserIdentity};
use rand_core::OsRng;

fn log(resp: Resp) -> GroupLog {
    match resp {
        Resp::GroupLog(log) => log,
        other => panic!("expected a group log answer, got {other:?}"),
    }
}

async fn append(c: &mut Client, a: &Append) -> Resp {
    c.request(Req::GroupLogAppend(a.to_request())).await
}

async fn fetch(c: &mut Client, view: &LogView) -> GroupLog {
    log(c
        .request(Req::GroupLogFetch(GroupLogFetch { log_id: view.log_id().to_vec(), after_epoch: view.epoch() }))
        .await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_sequence_changes_through_the_relay_and_no_one_else_can() {
    let relay = TestRelay::start().await;
    let users: Vec<_> = (0..4).map(|_| UserIdentity::generate(&mut OsRng)).collect();
    let keys: Vec<_> = users.iter().map(|u| u.user_key()).collect();
    let (alice, bob, carol, dave) = (0, 1, 2, 3);
    let group = GroupId::from_slice(&[5; 16]).unwrap();

    // Creating needs an authenticated socket; everything after it needs none.
    let (mut a, create) = LogView::create(&mut OsRng, &users[alice], group, "g", &keys[1..], 1).unwrap();
    let mut anonymous = relay.connect().await;
    anonymous.expect_error(Req::GroupLogAppend(create.to_request()), ErrorCode::Unauthenticated).await;
    let mut creator = relay.login(&DeviceIdentity::generate(&mut OsRng)).await;
    let created = log(append(&mut creator, &create).await);
    assert!(created.accepted && created.epoch == 1);
    // The same create again (a retry whose answer was lost) finds the log made: a conflict holding it.
    let again = log(append(&mut creator, &create).await);
    assert!(!again.accepted && again.epoch == 1 && again.entries.len() == 1);
    let welcome = a.accepted(1).unwrap().welcome.unwrap();
    let mut b = LogView::join(keys[bob], &welcome).unwrap();
    let mut c = LogView::join(keys[carol], &welcome).unwrap();

    let mut socket = relay.connect().await;
    let promote = a.propose(&mut OsRng, &users[alice], RosterAction::Promote(keys[bob]), 2).unwrap();
    assert!(log(append(&mut socket, &promote).await).accepted);
    let promoted = a.accepted(2).unwrap();
    b.take_keys(&keys[alice], &promoted.admin_keys).unwrap();
    c.take_keys(&keys[alice], &promoted.member_keys).unwrap();
    let shown = fetch(&mut socket, &b).await;
    b.apply(&shown.entries).unwrap();
    assert!(b.roster().is_admin(&keys[bob]));

    // Concurrent: alice removes carol while bob renames; bob's lands first.
    let removal = a.propose(&mut OsRng, &users[alice], RosterAction::Remove(keys[carol]), 3).unwrap();
    let rename = b.propose(&mut OsRng, &users[bob], RosterAction::Rename("bob's".into()), 3).unwrap();
    assert!(log(append(&mut socket, &rename).await).accepted);
    let renamed = b.accepted(3).unwrap();
    let conflict = log(append(&mut socket, &removal).await);
    assert!(!conflict.accepted && conflict.epoch == 3 && conflict.entries.len() == 1);
    a.take_keys(&keys[bob], &renamed.admin_keys).unwrap();
    assert!(a.apply(&conflict.entries).unwrap().conflicted);
    let (rebased, _) = a.rebase(&mut OsRng, &users[alice], 4).unwrap();
    let rebased = rebased.unwrap();
    assert!(log(append(&mut socket, &rebased).await).accepted);
    let removed = a.accepted(4).unwrap();
    b.take_keys(&keys[alice], &removed.admin_keys).unwrap();

    // Carol, removed, learns it from the log; she gets no keys of the epochs after.
    c.take_keys(&keys[bob], &renamed.member_keys).unwrap();
    let shown = fetch(&mut socket, &c).await;
    c.apply(&shown.entries).unwrap();
    assert!(!c.roster().is_member(&keys[carol]) && c.epoch() == 4);
    let shown = fetch(&mut socket, &b).await;
    b.apply(&shown.entries).unwrap();
    assert_eq!((b.roster(), b.transcript()), (a.roster(), a.transcript()));

    // A stranger's append and a removed member's replay are refused; the log does not move.
    let stranger = UserIdentity::generate(&mut OsRng);
    let (mut elsewhere, _) = LogView::create(&mut OsRng, &stranger, group, "x", &[keys[dave]], 1).unwrap();
    elsewhere.accepted(1).unwrap();
    let junk = elsewhere.propose(&mut OsRng, &stranger, RosterAction::Rename("taken".into()), 5).unwrap();
    let junk = Append { log_id: a.log_id(), expected_epoch: a.epoch(), ..junk };
    socket.expect_error(Req::GroupLogAppend(junk.to_request()), ErrorCode::BadSignature).await;
    assert!(!log(append(&mut socket, &removal).await).accepted);
    assert!(!log(append(&mut socket, &promote).await).accepted);
    let head =
        log(socket.request(Req::GroupLogFetch(GroupLogFetch { log_id: a.log_id().to_vec(), after_epoch: 0 })).await);
    assert_eq!((head.epoch, head.first_epoch, head.entries.len()), (4, 1, 4));

    // Shapes: an unknown log, a log id of the wrong length.
    let unknown = GroupLogFetch { log_id: vec![9; 32], after_epoch: 0 };
    socket.expect_error(Req::GroupLogFetch(unknown), ErrorCode::NotFound).await;
    socket
        .expect_error(Req::GroupLogFetch(GroupLogFetch { log_id: vec![9; 31], after_epoch: 0 }), ErrorCode::Malformed)
        .await;
    let mut wrong_key = rebased.to_request();
    wrong_key.next_append_key = vec![1; 31];
    socket.expect_error(Req::GroupLogAppend(wrong_key), ErrorCode::Malformed).await;
}
