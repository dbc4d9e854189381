//! The own user's devices over their life (docs/PROTOCOL.md §12.9): removing one from the signed
//! device list, and what a removed device does when it is shown the list without itself.

use super::outbox::frame_entry;
use super::{Client, Event, SETTING_DEVICE_LIST};
use crate::crypto::{DeviceKeys, SigningPublicKey};
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::peer::PeerUser;
use crate::store::{ConversationId, OutboxItem};
use crate::wire::relay::{self as relay, client_frame::Body as Req};

impl Client {
    /// The devices on this user's current signed device list (this one included).
    pub fn devices(&mut self) -> Result<Vec<DeviceKeys>> {
        self.user_key()?;
        Ok(self.own_device_list()?.devices().to_vec())
    }

    /// Removes `device` (a lost or stolen one) from this user's devices: signs the next device
    /// list without it, pins it here (the session with it is dropped) and publishes it through the
    /// outbox. The relay then refuses the device's logins and prekey fetches and drops its mailbox;
    /// contacts and the user's other devices see the new list's version in the next message from
    /// this user, fetch it before reading on and stop encrypting to the device; the device itself,
    /// shown the list, wipes its store ([`Event::DeviceRemoved`]).
    ///
    /// [`Error::UnknownDevice`] for a device not on the list, [`Error::Malformed`] for this
    /// device itself; either changes nothing.
    pub fn remove_device(&mut self, device: &SigningPublicKey, now_ms: u64) -> Result<()> {
        let user = self.primary_user()?.clone();
        let me = user.user_key();
        if *device == self.device_key() {
            return Err(Error::Malformed { what: "device to remove: this device" });
        }
        let current = self.own_device_list()?;
        current.device(device)?;
        let kept: Vec<DeviceKeys> = current.devices().iter().filter(|d| d.device_key() != *device).copied().collect();
        let version = current.list_version().checked_add(1).ok_or(Error::Internal("device list version"))?;
        let list = SignedDeviceList::sign(&user, version, &kept, now_ms / 1000)?;

        let tx = self.store.transaction()?;
        let mut own = tx.peer(&me)?.unwrap_or_else(|| PeerUser::new(current));
        own.update_device_list(list.clone())?;
        tx.put_peer(&own)?;
        tx.put_setting(SETTING_DEVICE_LIST, &list.to_bytes())?;
        let publish = Req::PublishDeviceList(relay::PublishDeviceList { signed_device_list: list.to_bytes() });
        let mut id = [0u8; crate::content::CLIENT_MESSAGE_ID_LEN];
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut id);
        tx.outbox_push(&OutboxItem {
            id: 0,
            conversation: ConversationId::Direct(me),
            message_id: id,
            frame: frame_entry(publish),
            attempts: 0,
            next_attempt_ms: 0,
        })?;
        tx.commit()?;
        self.own_list_version = version;
        self.presence_users.remove(device);
        self.flush(now_ms)
    }

    /// The relay answered this device's login with its user's signed device list instead of
    /// admitting it (§15.3: a transport that authenticates on its own, as hush-net does, hands the
    /// list here). Returns [`Event::DeviceRemoved`] when the list proves this device was removed
    /// (and wipes the store), nothing otherwise.
    pub fn handle_removal(&mut self, signed_device_list: &[u8]) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        self.on_list_without_this_device(signed_device_list, &mut events)?;
        Ok(events)
    }

    /// `bytes` is a device list of this user that does not name this device (from a fetch, or
    /// the relay's answer to a removed device's login). If it is signed by the user key and newer
    /// than the list this device holds, this device was removed: everything in the store is
    /// deleted ([`Store::wipe`](crate::Store::wipe)), the client sends nothing more, and
    /// [`Event::DeviceRemoved`] tells the application to close the store and delete its files.
    /// Anything else (an old list from before this device was linked, another user's, a forgery)
    /// changes nothing.
    pub(super) fn on_list_without_this_device(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<()> {
        let Some(user) = self.user else { return Ok(()) };
        let Ok(list) = SignedDeviceList::from_bytes(bytes) else { return Ok(()) };
        if list.user_key() != user || list.device(&self.device_key()).is_ok() {
            return Ok(());
        }
        let current = self.own_device_list()?;
        if list.check_supersedes(Some(&current)).is_err() {
            return Ok(());
        }
        self.store.wipe()?;
        self.removed = true;
        self.user = None;
        self.user_identity = None;
        self.token = None;
        self.outgoing.clear();
        self.pending.clear();
        self.parked.clear();
        self.backlog.clear();
        events.push(Event::DeviceRemoved { user });
        Ok(())
    }

    /// Whether nothing may leave this client: its store is an older copy opened read-only
    /// (§14.16), or this device was removed (§12.9).
    pub(super) fn sends_nothing(&self) -> bool {
        self.removed || self.store.is_read_only()
    }
}
