//! The relay-sequenced log (docs/PROTOCOL.md §11.9) against an in-memory sequencer that checks what
//! the relay checks (`relay/src/requests.rs`): a compare-and-swap on the epoch, and the append's
//! signature by the log's key of that epoch. Members, removed members, strangers and a relay that
//! equivocates each try what the issue names, and fail.

use std::collections::HashMap;
use std::time::Instant;

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;

/// What the relay answers an append.
#[derive(Debug)]
enum Answer {
    Accepted(u64),
    Conflict(Vec<relay::GroupLogRecord>),
}

/// One relay log: its epoch, the append key of that epoch, and the entries, oldest first.
#[derive(Clone, Default)]
struct Log {
    key: Vec<u8>,
    entries: Vec<Vec<u8>>,
}

/// The relay's side, as `relay/src/requests.rs` does it.
#[derive(Clone, Default)]
struct Sequencer {
    logs: HashMap<LogId, Log>,
}

impl Sequencer {
    fn append(&mut self, append: &Append) -> Result<Answer> {
        let request = append.to_request();
        let Some(log) = self.logs.get_mut(&append.log_id) else {
            if append.expected_epoch != 0 {
                return Err(Error::Malformed { what: "no such log" });
            }
            verify_append(&request, &request.next_append_key)?;
            self.logs.insert(append.log_id, Log { key: request.next_append_key, entries: vec![request.entry] });
            return Ok(Answer::Accepted(1));
        };
        if log.entries.len() as u64 != append.expected_epoch {
            return Ok(Answer::Conflict(records(&log.entries, append.expected_epoch)));
        }
        verify_append(&request, &log.key)?;
        log.entries.push(request.entry);
        log.key = request.next_append_key;
        Ok(Answer::Accepted(log.entries.len() as u64))
    }

    fn fetch(&self, log_id: &LogId, after: u64) -> Vec<relay::GroupLogRecord> {
        self.logs.get(log_id).map(|log| records(&log.entries, after)).unwrap_or_default()
    }
}

fn records(entries: &[Vec<u8>], after: u64) -> Vec<relay::GroupLogRecord> {
    entries
        .iter()
        .enumerate()
        .skip(after as usize)
        .map(|(i, entry)| relay::GroupLogRecord { epoch: i as u64 + 1, entry: entry.clone() })
        .collect()
}

/// A group of `n` users, user 0 its creator and admin, on `relay`.
struct Fixture {
    rng: ChaCha20Rng,
    users: Vec<UserIdentity>,
    views: Vec<LogView>,
    relay: Sequencer,
}

impl Fixture {
    fn new(seed: u64, n: usize) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let users: Vec<_> = (0..n).map(|_| UserIdentity::generate(&mut rng)).collect();
        let keys: Vec<_> = users.iter().map(|u| u.user_key()).collect();
        let group = GroupId(random_array(&mut rng));
        let (mut creator, append) = LogView::create(&mut rng, &users[0], group, "g", &keys[1..], 1).unwrap();
        let mut relay = Sequencer::default();
        let Answer::Accepted(epoch) = relay.append(&append).unwrap() else { panic!("create refused") };
        let committed = creator.accepted(epoch).unwrap();
        let welcome = committed.welcome.unwrap();
        let mut views = vec![creator];
        views.extend(keys[1..].iter().map(|k| LogView::join(*k, &welcome).unwrap()));
        Self { rng, users, views, relay }
    }

    fn key(&self, i: usize) -> SigningPublicKey {
        self.users[i].user_key()
    }

    /// User `i` proposes; the relay answers; a conflict is applied and the change re-based until
    /// it is taken or no longer applies. The new epoch's keys go to every other member.
    fn change(&mut self, i: usize, action: RosterAction) -> Result<Option<Committed>> {
        let mut append = self.views[i].propose(&mut self.rng, &self.users[i], action, 2)?;
        loop {
            match self.relay.append(&append)? {
                Answer::Accepted(epoch) => {
                    let committed = self.views[i].accepted(epoch)?;
                    self.hand_out_keys(i, &committed);
                    return Ok(Some(committed));
                }
                Answer::Conflict(missed) => {
                    self.views[i].apply(&missed)?;
                    let (again, _) = self.views[i].rebase(&mut self.rng, &self.users[i], 3)?;
                    match again {
                        Some(a) => append = a,
                        None => return Ok(None),
                    }
                }
            }
        }
    }

    fn hand_out_keys(&mut self, from: usize, committed: &Committed) {
        let sender = self.key(from);
        for j in 0..self.views.len() {
            if j == from || !self.views[from].roster().is_member(&self.key(j)) {
                continue;
            }
            let admin = self.views[from].roster().is_admin(&self.key(j));
            let keys = if admin { &committed.admin_keys } else { &committed.member_keys };
            let _ = self.views[j].take_keys(&sender, keys);
        }
    }

    /// Every member fetches what it missed.
    fn catch_up(&mut self) {
        for view in &mut self.views {
            let missed = self.relay.fetch(&view.log_id(), view.epoch());
            view.apply(&missed).unwrap();
        }
    }
}

#[test]
fn create_welcome_and_a_change_reach_every_member_in_the_relays_order() {
    let mut f = Fixture::new(1, 3);
    assert!(f.views.iter().all(|v| v.epoch() == 1 && v.roster().members.len() == 3));
    assert_eq!(f.views[1].transcript(), f.views[0].transcript());
    f.change(0, RosterAction::Rename("new".into())).unwrap().unwrap();
    f.catch_up();
    for v in &f.views {
        assert_eq!((v.epoch(), v.roster().name.as_str(), v.transcript()), (2, "new", f.views[0].transcript()));
    }
    // A member who is no admin holds no append key: it cannot even make an append.
    assert_eq!(
        f.views[1].propose(&mut f.rng, &f.users[1], RosterAction::Rename("mine".into()), 3),
        Err(Error::GroupChangeRejected(ChangeRejection::NotAdmin))
    );
}

/// The take-over of issue 13: a removed admin keeps the keys of the epoch before her removal and
/// makes a branch off it, of any length. The relay refuses every append (a conflict on the old
/// epoch, a bad signature on the new one), and members never see it.
#[test]
fn a_removed_admins_branch_off_the_change_before_her_removal_is_refused_whatever_its_length() {
    let mut f = Fixture::new(2, 3);
    let (admin, rebel) = (0, 1);
    f.change(admin, RosterAction::Promote(f.key(rebel))).unwrap().unwrap();
    f.catch_up();
    let before_removal = f.views[rebel].clone();
    f.change(admin, RosterAction::Remove(f.key(rebel))).unwrap().unwrap();
    f.catch_up();
    let honest = f.views[2].clone();
    assert!(honest.is_removed(&f.key(rebel)));
    for length in [1, 2, 5, 20] {
        let mut branch = before_removal.clone();
        let mut relay = f.relay.clone();
        for step in 0..length {
            let action = if step == 0 {
                RosterAction::Remove(f.key(admin))
            } else {
                RosterAction::Rename(format!("mine {step}"))
            };
            let append = branch.propose(&mut f.rng, &f.users[rebel], action, 9).unwrap();
            // On the epoch she knows the log has moved on (a conflict); on the epochs of her own
            // branch her keys are not the log's (a bad signature). Claimed on another epoch, the
            // signature no longer covers it. Nothing is taken.
            let forged = Append { expected_epoch: append.expected_epoch + 1, ..append.clone() };
            for attempt in [&append, &forged] {
                match relay.append(attempt) {
                    Ok(Answer::Conflict(_)) | Err(Error::BadSignature { .. }) => {}
                    other => panic!("branch change {step} of {length}: {other:?}"),
                }
            }
            // Her own view takes the change as if accepted, to make the next one on top of it.
            let epoch = branch.epoch() + 1;
            branch.accepted(epoch).unwrap();
        }
        assert_eq!(relay.fetch(&honest.log_id(), 0), f.relay.fetch(&honest.log_id(), 0));
        let mut member = honest.clone();
        member.apply(&relay.fetch(&honest.log_id(), 0)).unwrap();
        assert_eq!(member.roster(), honest.roster());
        assert!(!member.roster().is_member(&f.key(rebel)));
    }
}

/// Issue 13: an admin removes a member while another admin renames twice, concurrently. Whatever
/// order the relay takes them in, the removal ends applied: its author re-bases it after each
/// conflict.
#[test]
fn a_removal_concurrent_with_two_renames_ends_applied() {
    let mut f = Fixture::new(3, 4);
    let (remover, renamer, victim) = (0, 1, 3);
    f.change(remover, RosterAction::Promote(f.key(renamer))).unwrap().unwrap();
    f.catch_up();
    // Both make their change on the same epoch; the renames reach the relay first.
    let victim_key = f.key(victim);
    let removal = f.views[remover].propose(&mut f.rng, &f.users[remover], RosterAction::Remove(victim_key), 5).unwrap();
    f.change(renamer, RosterAction::Rename("one".into())).unwrap().unwrap();
    f.change(renamer, RosterAction::Rename("two".into())).unwrap().unwrap();
    let Answer::Conflict(missed) = f.relay.append(&removal).unwrap() else { panic!("a stale append was taken") };
    assert_eq!(missed.len(), 2);
    let applied = f.views[remover].apply(&missed).unwrap();
    assert!(applied.conflicted && !applied.waiting);
    let (again, events) = f.views[remover].rebase(&mut f.rng, &f.users[remover], 6).unwrap();
    assert!(events.is_empty());
    let Answer::Accepted(epoch) = f.relay.append(&again.unwrap()).unwrap() else { panic!("re-based append refused") };
    let committed = f.views[remover].accepted(epoch).unwrap();
    f.hand_out_keys(remover, &committed);
    f.catch_up();
    for v in &f.views {
        assert_eq!(v.epoch(), 5);
        assert_eq!(v.roster().name, "two");
        assert!(!v.roster().is_member(&f.key(victim)) && v.is_removed(&f.key(victim)));
        assert_eq!(v.transcript(), f.views[remover].transcript());
    }
    // And it is final: no admin can add the victim back.
    assert_eq!(
        f.change(renamer, RosterAction::Add(vec![f.key(victim)])).err(),
        Some(Error::GroupChangeRejected(ChangeRejection::Removed))
    );
}

/// A relay that shows two members different logs (it takes two concurrent appends, each for
/// one of them) is found out the first time one sees what the other says of the epoch: the
/// transcript hash every group message and distribution carries.
#[test]
fn a_relay_that_equivocates_is_detected_by_the_transcript() {
    let mut f = Fixture::new(4, 3);
    f.change(0, RosterAction::Promote(f.key(1))).unwrap().unwrap();
    f.catch_up();
    let epoch = f.views[0].epoch();
    let a = f.views[0].propose(&mut f.rng, &f.users[0], RosterAction::Rename("a".into()), 5).unwrap();
    let b = f.views[1].propose(&mut f.rng, &f.users[1], RosterAction::Rename("b".into()), 5).unwrap();
    // The fork: each append is taken, on a copy of the log shown only to its author.
    let mut fork_a = f.relay.clone();
    let mut fork_b = f.relay.clone();
    assert!(matches!(fork_a.append(&a), Ok(Answer::Accepted(_))));
    assert!(matches!(fork_b.append(&b), Ok(Answer::Accepted(_))));
    f.views[0].accepted(epoch + 1).unwrap();
    let committed_b = f.views[1].accepted(epoch + 1).unwrap();
    assert_eq!(f.views[0].check_transcript(epoch, &f.views[1].transcript_at(epoch).unwrap()), Ok(()));
    assert_eq!(
        f.views[0].check_transcript(epoch + 1, &f.views[1].transcript()),
        Err(Error::GroupForked { epoch: epoch + 1 })
    );
    // A member shown fork b (with b's keys) is found out by a member of fork a the same way.
    let mut shown_b = f.views[2].clone();
    let author_b = f.key(1);
    shown_b.take_keys(&author_b, &committed_b.member_keys).unwrap();
    shown_b.apply(&fork_b.fetch(&shown_b.log_id(), epoch)).unwrap();
    assert_eq!(shown_b.epoch(), epoch + 1);
    assert_eq!(
        shown_b.check_transcript(epoch + 1, &f.views[0].transcript()),
        Err(Error::GroupForked { epoch: epoch + 1 })
    );
    // Shown fork b's entry at the epoch it made from fork a's, a member of fork a finds it out
    // too; nothing changes.
    let before = format!("{:?}", f.views[0]);
    let shown = fork_b.fetch(&f.views[0].log_id(), epoch);
    assert_eq!(f.views[0].apply(&shown).err(), Some(Error::GroupForked { epoch: epoch + 1 }));
    assert_eq!(format!("{:?}", f.views[0]), before);
}

/// Log stuffing (issue 13): 100,000 junk appends from a stranger and from a removed member. The
/// relay's check refuses each (one signature verification), nothing is stored, and a member fed
/// the same junk as entries (a relay that forwards it) changes nothing. The times are printed.
#[test]
fn a_hundred_thousand_junk_appends_are_refused_and_cost_one_verification_each() {
    let mut f = Fixture::new(5, 3);
    let removed = 2;
    f.change(0, RosterAction::Promote(f.key(removed))).unwrap().unwrap();
    f.catch_up();
    let old_view = f.views[removed].clone();
    f.change(0, RosterAction::Remove(f.key(removed))).unwrap().unwrap();
    f.catch_up();
    let log_id = f.views[0].log_id();
    let epoch = f.views[0].epoch();
    let stranger = SigningKeyPair::generate(&mut f.rng);
    let mut junk = Vec::new();
    for i in 0..2u32 {
        let mut entry = vec![0u8; if i == 0 { 64 } else { MAX_GROUP_LOG_ENTRY_BYTES }];
        f.rng.fill_bytes(&mut entry);
        junk.push(Append::sign(&stranger, log_id, epoch, entry.clone(), stranger.public().to_bytes()));
    }
    // The removed member's own kind: made on her last epoch, with that epoch's real key.
    let mut branch = old_view.clone();
    let rebels = branch.propose(&mut f.rng, &f.users[removed], RosterAction::Rename("mine".into()), 7).unwrap();
    junk.push(Append { expected_epoch: epoch, ..rebels.clone() });
    junk.push(rebels);
    let entries_before = f.relay.fetch(&log_id, 0);
    let start = Instant::now();
    let mut refused = 0;
    for i in 0..100_000usize {
        if !matches!(f.relay.append(&junk[i % junk.len()]), Ok(Answer::Accepted(_))) {
            refused += 1;
        }
    }
    let relay_time = start.elapsed();
    assert_eq!(refused, 100_000);
    assert_eq!(f.relay.fetch(&log_id, 0), entries_before);
    // A member shown the junk as the next entry: it does not open, nothing changes.
    let member_before = format!("{:?}", f.views[1]);
    let start = Instant::now();
    for i in 0..100_000usize {
        let record = relay::GroupLogRecord { epoch: epoch + 1, entry: junk[i % junk.len()].entry.clone() };
        assert!(f.views[1].apply(&[record]).is_err());
    }
    let member_time = start.elapsed();
    assert_eq!(format!("{:?}", f.views[1]), member_before);
    println!("100,000 junk appends: relay check {relay_time:?}, a member fed them as entries {member_time:?}");
}

#[test]
fn epoch_keys_go_only_where_the_log_names_them_and_stay_bounded() {
    let mut f = Fixture::new(6, 3);
    let stranger = UserIdentity::generate(&mut f.rng).user_key();
    let real = f.views[0].keys.to_proto(f.views[0].group_id(), 2, &f.views[0].log_id(), false).encode_to_vec();
    assert_eq!(f.views[1].take_keys(&stranger, &real), Err(Error::NotGroupMember));
    // A member's junk keys for the next epochs: held within the cap, never used.
    let member = f.key(2);
    for epoch in 2..2 + MAX_GROUP_EPOCHS_AHEAD as u64 {
        let junk = EpochKeys::generate(&mut f.rng).unwrap();
        let bytes = junk.to_proto(f.views[1].group_id(), epoch, &f.views[1].log_id(), true).encode_to_vec();
        f.views[1].take_keys(&member, &bytes).unwrap();
    }
    let far = EpochKeys::generate(&mut f.rng).unwrap().to_proto(f.views[1].group_id(), 200, &f.views[1].log_id(), true);
    assert!(matches!(f.views[1].take_keys(&member, &far.encode_to_vec()), Err(Error::TooFarAhead { .. })));
    assert!(f.views[1].grants.len() <= MAX_GROUP_KEY_GRANTS);
    // The real change still applies once its keys come: the junk for that epoch is passed over.
    let before = f.views[1].clone();
    let append = f.views[0].propose(&mut f.rng, &f.users[0], RosterAction::Rename("r".into()), 3).unwrap();
    let Answer::Accepted(epoch) = f.relay.append(&append).unwrap() else { panic!() };
    let committed = f.views[0].accepted(epoch).unwrap();
    let shown = f.relay.fetch(&f.views[1].log_id(), 1);
    assert!(f.views[1].apply(&shown).unwrap().waiting, "the junk keys are not this entry's");
    assert_eq!(f.views[1].epoch(), before.epoch());
    let admin = f.key(0);
    f.views[1].take_keys(&admin, &committed.member_keys).unwrap();
    f.views[1].apply(&shown).unwrap();
    assert_eq!((f.views[1].epoch(), f.views[1].roster().name.as_str()), (2, "r"));
    assert!(f.views[1].grants.keys().all(|(e, _)| *e > 2));
    // A member holds the entry key only, so it cannot append even with the keys it was given.
    assert!(f.views[1].keys.secret.is_none());
}

#[test]
fn debug_shows_no_epoch_secret() {
    let f = Fixture::new(7, 2);
    let text = format!("{:?}", f.views[0]);
    let keys = &f.views[0].keys;
    crate::test_util::assert_no_secret(&text, keys.secret.as_deref().unwrap());
    crate::test_util::assert_no_secret(&text, keys.entry_key.as_slice());
    let welcome: proto::GroupWelcome = prost::Message::decode(f.views[0].welcome().unwrap().as_slice()).unwrap();
    crate::test_util::assert_no_secret(&format!("{welcome:?}"), keys.entry_key.as_slice());
}

/// One step of the property test: who acts, and how.
#[derive(Clone, Debug)]
enum Step {
    /// Admin `by` proposes an action on user `on` (0: add, 1: remove, 2: leave, 3: rename, 4:
    /// promote), or forces it past its own client's check.
    Propose { by: usize, on: usize, kind: u8, forced: bool },
    /// The relay takes (or refuses) the oldest waiting append of `by`.
    Deliver { by: usize },
    /// Member `who` fetches; the records come `dup` times.
    Fetch { who: usize, dup: bool },
    /// The keys a commit handed out reach member `who` (one waiting grant, any order).
    Keys { who: usize, pick: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..6usize, 0..6usize, 0..5u8, any::<bool>()).prop_map(|(by, on, kind, f)| Step::Propose {
            by,
            on,
            kind,
            forced: f && kind < 2
        }),
        (0..6usize).prop_map(|by| Step::Deliver { by }),
        (0..6usize, any::<bool>()).prop_map(|(who, dup)| Step::Fetch { who, dup }),
        (0..6usize, 0..8usize).prop_map(|(who, pick)| Step::Keys { who, pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random interleavings of adds, removes, leaves and renames from several admins, delivered
    /// in random order with duplicates: every member ends with the same roster and transcript, and
    /// a user once removed is never a member again in anyone's view.
    #[test]
    fn members_converge_and_never_readmit_a_removed_user(steps in proptest::collection::vec(step(), 1..120)) {
        let n = 6;
        let mut f = Fixture::new(8, 4);
        for _ in 4..n {
            f.users.push(UserIdentity::generate(&mut f.rng));
        }
        for admin in 1..3 {
            f.change(0, RosterAction::Promote(f.key(admin))).unwrap();
        }
        f.catch_up();
        let mut views: Vec<Option<LogView>> = f.views.drain(..).map(Some).collect();
        views.resize(n, None);
        let mut waiting: Vec<Vec<Append>> = vec![Vec::new(); n];
        let mut grants: Vec<Vec<(SigningPublicKey, Vec<u8>)>> = vec![Vec::new(); n];
        let mut ever_removed: std::collections::HashSet<[u8; 32]> = Default::default();
        let key = |i: usize| f.users[i].user_key();
        for s in steps {
            match s {
                Step::Propose { by, on, kind, forced } => {
                    let Some(view) = views[by].as_mut() else { continue };
                    let action = match kind {
                        0 => RosterAction::Add(vec![key(on)]),
                        1 => RosterAction::Remove(key(on)),
                        2 => RosterAction::Leave,
                        3 => RosterAction::Rename(format!("{by}-{on}")),
                        _ => RosterAction::Promote(key(on)),
                    };
                    let append = if forced && view.proposal.is_none() && view.keys.secret.is_some() {
                        // A modified client: signs what its own check would refuse.
                        let change = RosterChange::sign(&f.users[by], view.group_id, Some((view.transcript, view.epoch())), 4, action).unwrap();
                        let next = EpochKeys::generate(&mut f.rng).unwrap();
                        view.seal(&mut f.rng, change, next).ok()
                    } else {
                        view.propose(&mut f.rng, &f.users[by], action, 4).ok()
                    };
                    waiting[by].extend(append);
                }
                Step::Deliver { by } => {
                    if waiting[by].is_empty() { continue; }
                    let append = waiting[by].remove(0);
                    let Some(view) = views[by].as_mut() else { continue };
                    match f.relay.append(&append) {
                        Ok(Answer::Accepted(epoch)) => {
                            let committed = view.accepted(epoch).unwrap();
                            let roster = view.roster().clone();
                            let from = key(by);
                            for (j, g) in grants.iter_mut().enumerate() {
                                if j == by || !roster.is_member(&key(j)) { continue; }
                                let keys = if roster.is_admin(&key(j)) { &committed.admin_keys } else { &committed.member_keys };
                                g.push((from, keys.clone()));
                            }
                            if let Some(welcome) = &committed.welcome {
                                for user in &committed.added {
                                    let j = (0..n).find(|j| key(*j) == *user).unwrap();
                                    if views[j].is_none() {
                                        views[j] = Some(LogView::join(*user, welcome).unwrap());
                                    }
                                }
                            }
                        }
                        Ok(Answer::Conflict(missed)) => {
                            if view.apply(&missed).is_ok()
                                && let Ok((Some(again), _)) = view.rebase(&mut f.rng, &f.users[by], 5)
                            {
                                waiting[by].insert(0, again);
                            }
                        }
                        Err(_) => {
                            view.proposal = None;
                        }
                    }
                }
                Step::Fetch { who, dup } => {
                    let Some(view) = views[who].as_mut() else { continue };
                    let mut shown = f.relay.fetch(&view.log_id(), view.epoch().saturating_sub(1));
                    if dup {
                        shown.extend(shown.clone());
                    }
                    view.apply(&shown).unwrap();
                }
                Step::Keys { who, pick } => {
                    let Some(view) = views[who].as_mut() else { continue };
                    if grants[who].is_empty() { continue; }
                    let (from, bytes) = grants[who][pick % grants[who].len()].clone();
                    let _ = view.take_keys(&from, &bytes);
                }
            }
            // A user once removed in a view is never a member of it again.
            for view in views.iter().flatten() {
                ever_removed.extend(view.removed.iter().copied());
                prop_assert!(view.roster().members.keys().all(|m| !view.removed.contains(m)));
            }
        }
        // Everything delivered: all keys, then fetches, until no one moves.
        for _ in 0..1_000 {
            let mut moved = false;
            for who in 0..n {
                let Some(view) = views[who].as_mut() else { continue };
                let epoch = view.epoch();
                for (from, bytes) in grants[who].clone() {
                    let _ = view.take_keys(&from, &bytes);
                }
                let shown = f.relay.fetch(&view.log_id(), view.epoch());
                view.apply(&shown).unwrap();
                moved |= view.epoch() != epoch;
            }
            if !moved {
                break;
            }
        }
        let head = f.relay.fetch(&views[0].as_ref().unwrap().log_id(), 0).len() as u64;
        let reference = views.iter().flatten().find(|v| v.epoch() == head).map(|v| (v.roster().clone(), v.transcript()));
        for view in views.iter().flatten() {
            let still_member = view.roster().is_member(&view.me);
            if view.epoch() == head {
                prop_assert_eq!(Some((view.roster().clone(), view.transcript())), reference.clone());
            } else {
                // Only a user who is out of the group stops short: she gets no keys after leaving.
                let out = reference.as_ref().is_some_and(|(r, _)| !r.is_member(&view.me));
                prop_assert!(out || !still_member, "a member stopped at epoch {} of {}", view.epoch(), head);
            }
        }
        if let Some((roster, _)) = &reference {
            for user in &ever_removed {
                prop_assert!(!roster.members.contains_key(user));
            }
        }
    }
}
