//! The client state machine's entry point for everything the relay sends: arbitrary server
//! frames (answers, envelopes, presence, challenges) must give an error or events, never a panic,
//! and leave the client usable.

use std::sync::{Mutex, OnceLock};

use hush_core::store::Unlock;
use hush_core::{Client, ClientConfig, Store};

fn client() -> &'static Mutex<Client> {
    static CLIENT: OnceLock<Mutex<Client>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let store = Store::open_in_memory(Unlock::Key([5u8; 32].into())).unwrap();
        let mut client =
            Client::create(store, ClientConfig::new("ws://fuzz/v1/ws", "fuzz"), 1_700_000_000_000).unwrap();
        client.on_connected(1_700_000_000_000).unwrap();
        Mutex::new(client)
    })
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let mut client = client().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = client.handle_incoming(data, 1_700_000_000_000);
    let _ = client.take_outgoing();
}
