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
