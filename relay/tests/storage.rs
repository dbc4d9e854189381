//! The storage contract, checked the same way on every backend: SQLite always, Postgres when
//! `HUSH_RELAY_TEST_POSTGRES` is set.

mod common;

use std::sync::Arc;

use common::*;
use hush_relay::StorageError;
use hush_relay::storage::postgres::PostgresStorage;
use hush_relay::storage::sqlite::SqliteStorage;
use hush_relay::storage::{DeviceId, NewMessage, Quota, Storage};

fn device(n: u8) -> DeviceId {
    [n; 32]
}

/// Runs `check` on a fresh SQLite storage and, when configured, a fresh Postgres schema.
async fn on_every_backend<F, Fut>(check: F)
where
    F: Fn(Arc<dyn Storage>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    check(Arc::new(SqliteStorage::open(dir.path().join("relay.sqlite")).await.unwrap())).await;
    if let Some(url) = postgres_url() {
        let schema = fresh_schema();
        let storage = PostgresStorage::open(&url, &schema).await.unwrap();
        check(Arc::new(storage)).await;
        drop_schema(&url, &schema);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_counters_follow_enqueue_ack_and_expiry() {
    on_every_backend(|s| async move {
        let quota = Quota { messages: 3, bytes: 1_000 };
        let msg = |n: u8, len: usize| NewMessage { recipient: device(n), sender: None, payload: vec![n; len] };
        assert!(matches!(
            s.enqueue(vec![msg(1, 1)], quota, 10).await,
            Err(StorageError::UnknownRecipient { index: 0 })
        ));
        s.set_delivery_token_hash(device(1), Some([0; 32]), 1).await.unwrap();
        s.set_delivery_token_hash(device(2), None, 1).await.unwrap();
        let ids = s.enqueue(vec![msg(1, 10), msg(2, 10), msg(1, 10)], quota, 10).await.unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // The byte quota counts what is queued.
        assert!(matches!(s.enqueue(vec![msg(1, 990)], quota, 11).await, Err(StorageError::QuotaExceeded { index: 0 })));
        // The message quota counts earlier entries of the same batch; nothing of a refused batch stays.
        assert!(matches!(
            s.enqueue(vec![msg(2, 1), msg(1, 1), msg(1, 1)], quota, 11).await,
            Err(StorageError::QuotaExceeded { index: 2 })
        ));
        assert_eq!(s.queue_depth().await.unwrap(), 3);
        assert_eq!(s.pending(device(2), 10).await.unwrap().len(), 1);
        // Acks only touch the device's own mail.
        assert_eq!(s.ack(device(2), vec![ids[0]]).await.unwrap(), 0);
        assert_eq!(s.ack(device(1), vec![ids[0], ids[0]]).await.unwrap(), 1);
        assert_eq!(s.queue_depth().await.unwrap(), 2);
        let expired = s.expire(11, 0, 0).await.unwrap();
        assert_eq!(expired.messages, 2);
        assert_eq!(s.queue_depth().await.unwrap(), 0);
        // Counters went back to zero: the full quota is available again.
        s.enqueue(vec![msg(1, 500), msg(1, 500)], quota, 12).await.unwrap();
    })
    .await;
}

/// §15.5: a newer list revokes the devices that published the user's list before and are left out;
/// a device that never published this user's list (another user's, named to be dropped) is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_list_revokes_the_users_devices_it_leaves_out_and_no_one_elses() {
    on_every_backend(|s| async move {
        let quota = Quota { messages: 10, bytes: 10_000 };
        let user = [9; 32];
        for d in [1, 2] {
            s.put_device_list(device(d), user, 1, vec![1], vec![device(1), device(2), device(7)], 1).await.unwrap();
        }
        s.set_delivery_token_hash(device(7), None, 1).await.unwrap(); // another user's device, named too
        let mail = |n: u8| NewMessage { recipient: device(n), sender: None, payload: vec![n; 8] };
        s.enqueue(vec![mail(2), mail(7)], quota, 5).await.unwrap();
        assert_eq!(s.revoked_user(device(2)).await.unwrap(), None);

        s.put_device_list(device(1), user, 2, vec![2], vec![device(1)], 2).await.unwrap();
        assert_eq!(s.revoked_user(device(2)).await.unwrap(), Some(user));
        assert!(s.pending(device(2), 10).await.unwrap().is_empty(), "its mailbox is gone");
        assert!(!s.is_registered(device(2)).await.unwrap());
        assert!(matches!(s.enqueue(vec![mail(2)], quota, 6).await, Err(StorageError::UnknownRecipient { index: 0 })));
        assert!(s.take_bundle(device(2)).await.unwrap().is_none());
        // Device 7 never published this user's list: dropping it from one revokes nothing.
        assert_eq!(s.revoked_user(device(7)).await.unwrap(), None);
        assert_eq!(s.pending(device(7), 10).await.unwrap().len(), 1);
        assert_eq!(s.revoked_user(device(1)).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_blobs_lists_and_endpoints() {
    on_every_backend(|s| async move {
        s.put_upload_token([1; 32], 100).await.unwrap();
        s.put_upload_token([2; 32], 100).await.unwrap();
        assert!(s.take_upload_token([1; 32], 50).await.unwrap());
        assert!(!s.take_upload_token([1; 32], 50).await.unwrap(), "single use");
        assert!(!s.take_upload_token([2; 32], 101).await.unwrap(), "expired");
        s.put_blob([3; 32], 5, 10).await.unwrap();
        assert!(s.blob_exists([3; 32], 10).await.unwrap());
        assert!(!s.blob_exists([3; 32], 11).await.unwrap());
        assert_eq!(s.expire(0, 11, 0).await.unwrap().blobs, vec![[3; 32]]);

        s.put_device_list(device(1), [9; 32], 2, vec![2], vec![device(1)], 1).await.unwrap();
        s.put_device_list(device(1), [9; 32], 2, vec![2], vec![device(1)], 1).await.unwrap();
        assert!(matches!(
            s.put_device_list(device(1), [9; 32], 2, vec![3], vec![device(1)], 1).await,
            Err(StorageError::Rollback { stored: 2, received: 2 })
        ));
        assert!(matches!(
            s.put_device_list(device(1), [9; 32], 1, vec![1], vec![device(1)], 1).await,
            Err(StorageError::Rollback { stored: 2, received: 1 })
        ));
        s.put_device_list(device(1), [9; 32], 3, vec![3], vec![device(1)], 1).await.unwrap();
        assert_eq!(s.device_list([9; 32]).await.unwrap(), Some(vec![3]));
        assert!(s.is_registered(device(1)).await.unwrap());

        s.set_push_endpoint(device(4), Some("http://push.example/x".into()), 1).await.unwrap();
        assert_eq!(s.push_endpoint(device(4)).await.unwrap().as_deref(), Some("http://push.example/x"));
        s.set_push_endpoint(device(4), None, 1).await.unwrap();
        assert_eq!(s.push_endpoint(device(4)).await.unwrap(), None);
        assert!(s.take_bundle(device(4)).await.unwrap().is_none(), "no keys, no bundle");
    })
    .await;
}

/// The group log's compare-and-swap (docs/PROTOCOL.md §11.9): one create per log id, appends only at
/// the log's epoch and with its key, concurrent appends at one epoch take exactly one, the oldest
/// entries go beyond the retention, pages stay within their bounds, creations per device are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_logs_take_one_append_per_epoch_and_stay_bounded() {
    use hush_relay::storage::{LogAppend, LogRetention};
    let at = |log_id, expected_epoch, append_key, next_key, entry| LogAppend {
        log_id,
        expected_epoch,
        append_key,
        next_key,
        entry,
    };
    on_every_backend(|s| async move {
        let keep = LogRetention { entries: 3, bytes: 1_000 };
        let log = [7u8; 32];
        assert_eq!(s.group_log_head(log).await.unwrap(), None);
        assert_eq!(s.group_log_entries(log, 0, 10, 1_000).await.unwrap(), None);
        assert!(s.create_group_log(device(1), log, [1; 32], vec![1; 10], 2, 1).await.unwrap());
        assert!(!s.create_group_log(device(2), log, [2; 32], vec![2; 10], 2, 1).await.unwrap(), "one create");
        assert_eq!(s.group_log_head(log).await.unwrap(), Some((1, [1; 32])));
        // Wrong epoch, wrong key: nothing changes.
        assert_eq!(s.append_group_log(at(log, 0, [1; 32], [9; 32], vec![9]), keep, 2).await.unwrap(), None);
        assert_eq!(s.append_group_log(at(log, 1, [2; 32], [9; 32], vec![9]), keep, 2).await.unwrap(), None);
        assert_eq!(s.append_group_log(at([8; 32], 1, [1; 32], [9; 32], vec![9]), keep, 2).await.unwrap(), None);
        // Concurrent appends at one epoch: exactly one is taken.
        let tries = (0..8u8).map(|i| {
            let s = s.clone();
            tokio::spawn(
                async move { s.append_group_log(at(log, 1, [1; 32], [10 + i; 32], vec![i; 5]), keep, 3).await },
            )
        });
        let taken: Vec<_> =
            futures_util::future::join_all(tries).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert_eq!(taken.iter().filter(|t| **t == Some(2)).count(), 1);
        assert_eq!(taken.iter().filter(|t| t.is_none()).count(), 7);
        let (epoch, key) = s.group_log_head(log).await.unwrap().unwrap();
        assert_eq!(epoch, 2);
        // Beyond the retention, the oldest go: 3 entries kept of 5.
        let mut key = key;
        for e in 2..5u64 {
            let next = [e as u8 + 100; 32];
            assert_eq!(
                s.append_group_log(at(log, e, key, next, vec![e as u8; 20]), keep, 4).await.unwrap(),
                Some(e + 1)
            );
            key = next;
        }
        let page = s.group_log_entries(log, 0, 10, 1_000).await.unwrap().unwrap();
        assert_eq!((page.epoch, page.first_epoch), (5, 3));
        assert_eq!(page.entries.iter().map(|(e, _)| *e).collect::<Vec<_>>(), vec![3, 4, 5]);
        // A byte budget of one large entry keeps only it.
        let big = vec![0xAB; 1_000];
        assert_eq!(s.append_group_log(at(log, 5, key, [1; 32], big.clone()), keep, 5).await.unwrap(), Some(6));
        let page = s.group_log_entries(log, 0, 10, 10_000).await.unwrap().unwrap();
        assert_eq!(page.first_epoch, 6);
        assert_eq!(page.entries, vec![(6, big)]);
        // Pages: by count, by bytes, but always at least one entry.
        let page = s.group_log_entries(log, 5, 10, 1).await.unwrap().unwrap();
        assert_eq!(page.entries.len(), 1);
        assert!(s.group_log_entries(log, 6, 10, 1).await.unwrap().unwrap().entries.is_empty());
        // Creations per device are capped; a refused one leaves nothing behind.
        assert!(s.create_group_log(device(1), [20; 32], [1; 32], vec![1], 2, 6).await.unwrap());
        assert!(matches!(
            s.create_group_log(device(1), [21; 32], [1; 32], vec![1], 2, 6).await,
            Err(StorageError::TooMany(_))
        ));
        assert_eq!(s.group_log_head([21; 32]).await.unwrap(), None);
        assert!(s.create_group_log(device(2), [21; 32], [1; 32], vec![1], 2, 6).await.unwrap());
    })
    .await;
}
