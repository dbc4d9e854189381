//! The native client (hush-core's state machine over the transport) against a real relay: 1:1
//! chat with a message request, receipts, a group of three, and an attachment through the blob store.

mod common;

use std::time::Duration;

use common::*;
use hush_core::store::{ConversationId, Unlock};
use hush_core::{Client, ClientConfig, ContentBody, Event, Store};
use hush_net::client::ClientConfig as TransportConfig;
use hush_net::messenger::{ConnectionState, Messenger, MessengerEvent, now_ms};
use tokio::sync::mpsc::UnboundedReceiver;
use zeroize::Zeroizing;

struct Person {
    messenger: Messenger,
    events: UnboundedReceiver<MessengerEvent>,
}

impl Person {
    async fn join(relay: &TestRelay, name: &str) -> Self {
        let url = format!("ws://{}/v1/ws", relay.addr);
        let store = Store::open_in_memory(Unlock::Key(Zeroizing::new([9; 32]))).unwrap();
        let client = Client::create(store, ClientConfig::new(url.clone(), name), now_ms()).unwrap();
        let mut transport = TransportConfig::new(url);
        transport.min_backoff = Duration::from_millis(50);
        transport.request_timeout = TIMEOUT;
        let (messenger, events) = Messenger::start(client, transport);
        let mut p = Self { messenger, events };
        p.wait(|e| matches!(e, MessengerEvent::Connection(ConnectionState::Connected))).await;
        p
    }

    fn link(&self) -> hush_core::ContactLink {
        self.messenger.with_client(|c, _| c.contact_link()).unwrap()
    }

    fn user(&self) -> hush_core::SigningPublicKey {
        self.messenger.with_client(|c, _| c.user_key()).unwrap()
    }

    async fn wait(&mut self, mut want: impl FnMut(&MessengerEvent) -> bool) -> MessengerEvent {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                let e = self.events.recv().await.expect("messenger stopped");
                if want(&e) {
                    return e;
                }
            }
        })
        .await
        .expect("no such event within the timeout")
    }

    async fn text(&mut self) -> (ConversationId, String, bool) {
        let e = self.wait(|e| matches!(e, MessengerEvent::Client(Event::Message(_) | Event::MessageRequest(_)))).await;
        let MessengerEvent::Client(Event::Message(m) | Event::MessageRequest(m)) = &e else { unreachable!() };
        let request = matches!(e, MessengerEvent::Client(Event::MessageRequest(_)));
        match m.content().unwrap().unwrap().body {
            ContentBody::Text(t) => (m.conversation, t, request),
            ContentBody::Attachment(a) => (m.conversation, format!("attachment {}", a.mime), request),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_and_a_group_of_three_shares_an_attachment() {
    let relay = TestRelay::start().await;
    let mut alice = Person::join(&relay, "Alice").await;
    let mut bob = Person::join(&relay, "Bob").await;
    let mut carol = Person::join(&relay, "Carol").await;
    let (bob_link, carol_link) = (bob.link(), carol.link());
    let (a, b, c) = (alice.user(), bob.user(), carol.user());

    // Alice adds Bob from his link and writes: Bob sees a request, accepts, answers.
    alice.messenger.with_client(|cl, now| cl.add_contact(&bob_link, now)).unwrap();
    alice.messenger.with_client(|cl, now| cl.send_text(&ConversationId::Direct(b), "hi Bob", now)).unwrap();
    assert_eq!(bob.text().await, (ConversationId::Direct(a), "hi Bob".into(), true));
    bob.messenger.with_client(|cl, _| cl.accept_contact(&a)).unwrap();
    let reply = bob.messenger.with_client(|cl, now| cl.send_text(&ConversationId::Direct(a), "hi Alice", now)).unwrap();
    assert_eq!(alice.text().await, (ConversationId::Direct(b), "hi Alice".into(), false));
    // Alice accepted Bob (she added him): he gets her delivery receipt.
    bob.wait(|e| matches!(e, MessengerEvent::Client(Event::Receipt { targets, .. }) if targets == &[reply])).await;

    // A group of three; Carol knows nobody but gets the welcome from Alice.
    alice.messenger.with_client(|cl, now| cl.add_contact(&carol_link, now)).unwrap();
    let group = alice.messenger.with_client(|cl, now| cl.create_group("trio", &[b, c], now)).unwrap();
    for p in [&mut bob, &mut carol] {
        p.wait(|e| matches!(e, MessengerEvent::Client(Event::GroupJoined { group: g, .. }) if *g == group)).await;
    }
    let conv = ConversationId::Group(group);
    carol.messenger.with_client(|cl, now| cl.send_text(&conv, "hello trio", now)).unwrap();
    assert_eq!(alice.text().await, (conv, "hello trio".into(), false));
    assert_eq!(bob.text().await, (conv, "hello trio".into(), false));

    // An attachment: encrypted, uploaded, pointed to, downloaded, decrypted.
    let photo: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let pointer =
        bob.messenger.blob_client().upload_attachment(&photo, "image/png", Some("cat.png".into())).await.unwrap();
    bob.messenger.with_client(|cl, now| cl.send_attachment(&conv, pointer, now)).unwrap();
    for p in [&mut alice, &mut carol] {
        let e = p
            .wait(|e| matches!(e, MessengerEvent::Client(Event::Message(m)) if matches!(m.content(), Ok(Some(hush_core::Content { body: ContentBody::Attachment(_), .. })))))
            .await;
        let MessengerEvent::Client(Event::Message(m)) = e else { unreachable!() };
        let Some(hush_core::Content { body: ContentBody::Attachment(pointer), .. }) = m.content().unwrap() else {
            unreachable!()
        };
        assert_eq!(p.messenger.blob_client().download_attachment(&pointer, 1 << 20).await.unwrap(), photo);
    }
    for p in [alice, bob, carol] {
        p.messenger.stop().await;
    }
}

/// A copy of the relay's database, to put back as an operator restoring an old backup would.
enum Backup {
    Sqlite(Vec<(std::path::PathBuf, Vec<u8>)>),
    Postgres { tables: Vec<String>, sequence: (i64, bool) },
}

/// Takes a backup of the (stopped) relay's database.
async fn back_up(relay: &TestRelay) -> Backup {
    let Some(url) = &relay.config.database_url else {
        let files = std::fs::read_dir(relay.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("relay.sqlite")))
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        return Backup::Sqlite(files);
    };
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = &relay.config.postgres_schema;
    let rows = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            &[schema],
        )
        .await
        .unwrap();
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    client.batch_execute(&format!("CREATE SCHEMA {schema}_backup")).await.unwrap();
    for t in &tables {
        client.batch_execute(&format!("CREATE TABLE {schema}_backup.{t} AS TABLE {schema}.{t}")).await.unwrap();
    }
    let seq =
        client.query_one(&format!("SELECT last_value, is_called FROM {schema}.messages_id_seq"), &[]).await.unwrap();
    Backup::Postgres { tables, sequence: (seq.get(0), seq.get(1)) }
}

/// Puts a backup back into the (stopped) relay's database, ids counter included.
async fn restore(relay: &TestRelay, backup: Backup) {
    match backup {
        Backup::Sqlite(files) => {
            for e in std::fs::read_dir(relay.dir.path()).unwrap() {
                let p = e.unwrap().path();
                if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("relay.sqlite")) {
                    std::fs::remove_file(p).unwrap();
                }
            }
            for (path, bytes) in files {
                std::fs::write(path, bytes).unwrap();
            }
        }
        Backup::Postgres { tables, sequence: (value, called) } => {
            let url = relay.config.database_url.as_ref().unwrap();
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let schema = &relay.config.postgres_schema;
            for t in &tables {
                let sql =
                    format!("DELETE FROM {schema}.{t}; INSERT INTO {schema}.{t} SELECT * FROM {schema}_backup.{t}");
                client.batch_execute(&sql).await.unwrap();
            }
            client
                .execute(&format!("SELECT setval('{schema}.messages_id_seq', $1, $2)"), &[&value, &called])
                .await
                .unwrap();
            client.batch_execute(&format!("DROP SCHEMA {schema}_backup CASCADE")).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restored_from_an_old_backup_mid_conversation_loses_nothing() {
    // After the restore the relay counts message ids again from the backup's (new envelopes get
    // ids Bob already processed) and hands out one-time prekeys that sessions used since: the
    // processed marks bind ids to bytes, and a first message on a used prekey comes back through
    // a retry receipt in a new session.
    let mut relay = TestRelay::start().await;
    let mut alice = Person::join(&relay, "Alice").await;
    let mut bob = Person::join(&relay, "Bob").await;
    let bob_link = bob.link();
    let (a, b) = (alice.user(), bob.user());
    let (to_bob, to_alice) = (ConversationId::Direct(b), ConversationId::Direct(a));
    alice.messenger.with_client(|cl, now| cl.add_contact(&bob_link, now)).unwrap();
    alice.messenger.with_client(|cl, now| cl.send_text(&to_bob, "before the backup", now)).unwrap();
    assert_eq!(bob.text().await, (to_alice, "before the backup".into(), true));
    bob.messenger.with_client(|cl, _| cl.accept_contact(&a)).unwrap();

    relay.stop().await;
    let backup = back_up(&relay).await;
    relay.restart_same_port().await;
    // Since the backup: Carol's first message uses one of Bob's one-time prekeys; Alice writes on.
    let carol = Person::join(&relay, "Carol").await;
    carol.messenger.with_client(|cl, now| cl.add_contact(&bob_link, now)).unwrap();
    carol.messenger.with_client(|cl, now| cl.send_text(&to_bob, "from Carol", now)).unwrap();
    assert_eq!(bob.text().await.1, "from Carol");
    alice.messenger.with_client(|cl, now| cl.send_text(&to_bob, "after the backup", now)).unwrap();
    assert_eq!(bob.text().await, (to_alice, "after the backup".into(), false));

    relay.stop().await;
    restore(&relay, backup).await;
    relay.restart_same_port().await;
    for p in [&mut alice, &mut bob] {
        p.wait(|e| matches!(e, MessengerEvent::Connection(ConnectionState::Connected))).await;
    }
    // New envelopes get ids Bob processed before the restore: still shown.
    alice.messenger.with_client(|cl, now| cl.send_text(&to_bob, "after the restore", now)).unwrap();
    assert_eq!(bob.text().await, (to_alice, "after the restore".into(), false));
    // Dave gets the prekey Carol's session used: Bob cannot decrypt, his retry receipt brings the
    // message again in a new session.
    let dave = Person::join(&relay, "Dave").await;
    dave.messenger.with_client(|cl, now| cl.add_contact(&bob_link, now)).unwrap();
    dave.messenger.with_client(|cl, now| cl.send_text(&to_bob, "from Dave", now)).unwrap();
    bob.wait(|e| matches!(e, MessengerEvent::Client(Event::Undecryptable { .. }))).await;
    assert_eq!(bob.text().await.1, "from Dave");

    let history: Vec<String> = bob
        .messenger
        .with_client(|cl, _| {
            let mut texts = Vec::new();
            for c in cl.conversations()? {
                for m in cl.history(&c.id, None, 100)?.0 {
                    if let Some(hush_core::Content { body: ContentBody::Text(t), .. }) = m.content()? {
                        texts.push(t);
                    }
                }
            }
            Ok(texts)
        })
        .unwrap();
    let mut history = history;
    history.sort();
    assert_eq!(history, ["after the backup", "after the restore", "before the backup", "from Carol", "from Dave"]);
    for p in [alice, bob, carol, dave] {
        p.messenger.stop().await;
    }
}
