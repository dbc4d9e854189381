//! A stolen device, end to end through the relay (docs/PROTOCOL.md §12.9, §15.5): Alice links a
//! laptop, the laptop is stolen (its store copied), Alice removes it from her phone. The stolen
//! copy can neither log in nor read anything new (it wipes itself), and Bob, after one message from
//! Alice, pins her list without the laptop and no longer encrypts to it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use hush_core::store::{ConversationId, Unlock};
use hush_core::{Client, ClientConfig, ContentBody, Event, SigningPublicKey, Store};
use hush_net::client::ClientConfig as TransportConfig;
use hush_net::messenger::{ConnectionState, Messenger, MessengerEvent, now_ms};
use tokio::sync::mpsc::UnboundedReceiver;
use zeroize::Zeroizing;

struct Device {
    messenger: Messenger,
    events: UnboundedReceiver<MessengerEvent>,
}

impl Device {
    fn start(relay: &TestRelay, client: Client) -> Self {
        let mut transport = TransportConfig::new(format!("ws://{}/v1/ws", relay.addr));
        transport.min_backoff = Duration::from_millis(50);
        transport.request_timeout = TIMEOUT;
        let (messenger, events) = Messenger::start(client, transport);
        Self { messenger, events }
    }

    async fn join(relay: &TestRelay, name: &str) -> Self {
        let store = Store::open_in_memory(Unlock::Key(Zeroizing::new([9; 32]))).unwrap();
        let client = Client::create(store, config(relay, name), now_ms()).unwrap();
        let mut d = Self::start(relay, client);
        d.wait(|e| matches!(e, MessengerEvent::Connection(ConnectionState::Connected))).await;
        d
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

    async fn text(&mut self) -> String {
        let e = self.wait(|e| matches!(e, MessengerEvent::Client(Event::Message(_) | Event::MessageRequest(_)))).await;
        let MessengerEvent::Client(Event::Message(m) | Event::MessageRequest(m)) = e else { unreachable!() };
        match m.content().unwrap().unwrap().body {
            ContentBody::Text(t) => t,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn user(&self) -> SigningPublicKey {
        self.messenger.with_client(|c, _| c.user_key()).unwrap()
    }

    fn say(&self, to: SigningPublicKey, text: &str) {
        self.messenger.with_client(|c, now| c.send_text(&ConversationId::Direct(to), text, now)).unwrap();
    }

    /// The devices this device pins for `user`.
    fn pinned(&self, user: SigningPublicKey) -> Vec<SigningPublicKey> {
        self.messenger
            .with_client(|c, _| {
                let tx = c.store_mut().transaction()?;
                let peer = tx.peer(&user)?.expect("a pinned peer");
                Ok(peer.device_list().devices().iter().map(|d| d.device_key()).collect())
            })
            .unwrap()
    }
}

fn config(relay: &TestRelay, name: &str) -> ClientConfig {
    ClientConfig::new(format!("ws://{}/v1/ws", relay.addr), name)
}

fn laptop_key() -> Unlock {
    Unlock::Key(Zeroizing::new([0x1a; 32]))
}

/// Copies the store at `from` (closed) and its anchor to `to`: what a thief with the disk has.
fn copy_store(from: &Path, to: &Path) {
    for suffix in ["", "-anchor"] {
        let name = |p: &Path| format!("{}{suffix}", p.display());
        std::fs::copy(name(from), name(to)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_device_removed_by_its_user_is_cut_off_and_contacts_stop_encrypting_to_it() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Device::join(&relay, "Alice").await;
    let mut bob = Device::join(&relay, "Bob").await;
    let (alice, b) = (phone.user(), bob.user());
    let bob_link = bob.messenger.with_client(|c, _| c.contact_link()).unwrap();
    let alice_link = phone.messenger.with_client(|c, _| c.contact_link()).unwrap();
    phone.messenger.with_client(|c, now| c.add_contact(&bob_link, now)).unwrap();
    bob.messenger.with_client(|c, now| c.add_contact(&alice_link, now)).unwrap();

    // Alice links a laptop; Bob hears of it from her next message.
    let laptop_path = dir.path().join("laptop.db");
    let store = Store::create(&laptop_path, laptop_key()).unwrap();
    let client = Client::create_for_link(store, config(&relay, "Alice's laptop"), now_ms()).unwrap();
    let mut laptop = Device::start(&relay, client);
    laptop.wait(|e| matches!(e, MessengerEvent::Connection(ConnectionState::Connected))).await;
    let uri = laptop.messenger.with_client(|c, _| c.link_request()).unwrap();
    let laptop_device = phone.messenger.with_client(|c, now| c.link_device(&uri, now)).unwrap();
    laptop.wait(|e| matches!(e, MessengerEvent::Client(Event::DeviceLinked { .. }))).await;
    phone.say(b, "I have a laptop now");
    assert_eq!(bob.text().await, "I have a laptop now");
    assert_eq!(laptop.text().await, "I have a laptop now", "the laptop gets the sent sync");
    assert_eq!(bob.pinned(alice).len(), 2);

    // Stolen: the thief has a copy of the laptop's store (and its anchor).
    laptop.messenger.stop().await;
    drop(laptop.events);
    let stolen = dir.path().join("stolen.db");
    copy_store(&laptop_path, &stolen);

    // Alice removes the laptop from her phone, then writes to Bob: Bob fetches her newer list
    // before he reads it and from then on encrypts to her phone only.
    phone.messenger.with_client(|c, now| c.remove_device(&laptop_device, now)).unwrap();
    phone.say(b, "my laptop was stolen");
    assert_eq!(bob.text().await, "my laptop was stolen");
    assert_eq!(bob.pinned(alice), [phone.messenger.with_client(|c, _| Ok(c.device_key())).unwrap()]);
    bob.say(alice, "sorry to hear");
    assert_eq!(phone.text().await, "sorry to hear");

    // The thief starts the copy: the relay refuses its login with the list that removed it, and
    // the copy wipes itself.
    let client = Client::open(Store::open(&stolen, laptop_key()).unwrap(), config(&relay, "thief")).unwrap();
    let mut thief = Device::start(&relay, client);
    let removed = thief.wait(|e| matches!(e, MessengerEvent::Client(Event::DeviceRemoved { .. }))).await;
    assert_eq!(removed, MessengerEvent::Client(Event::DeviceRemoved { user: alice }));
    thief.wait(|e| matches!(e, MessengerEvent::Connection(ConnectionState::Refused(_)))).await;
    let wiped = thief
        .messenger
        .with_client(|c, _| {
            let tx = c.store_mut().transaction()?;
            Ok(tx.account()?.is_none() && tx.user()?.is_none() && tx.contacts()?.is_empty())
        })
        .unwrap();
    assert!(wiped, "the stolen copy still holds keys");
    assert!(thief.messenger.with_client(|c, _| c.conversations()).unwrap().is_empty());
}
