//! Contacts (docs/PROTOCOL.md §13, §16): this user's contact link, adding a contact from theirs,
//! message requests and blocking, safety numbers and verification, and the device lists and prekey
//! bundles of the users this client talks to.

use super::{Client, ContactLink, Event, Pending, SETTING_DEVICE_LIST};
use crate::crypto::SigningPublicKey;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, ErrorKind, Result};
use crate::peer::{PeerEvent, PeerUser};
use crate::prekeys::PrekeyBundle;
use crate::safety_number::SafetyNumber;
use crate::sealed_sender;
use crate::store::{Contact, ContactState, Conversation, ConversationId};
use crate::wire::relay::{self as relay, client_frame::Body as Req};

impl Client {
    /// The link others open to add this user ([`Error::NotLinked`] before a pending link completes).
    pub fn contact_link(&self) -> Result<ContactLink> {
        Ok(ContactLink {
            relay_url: self.config.relay_url.clone(),
            user_key: self.user_key()?,
            delivery_token: self.token.clone().ok_or(Error::NotLinked)?,
            name_hint: self.config.display_name.clone(),
        })
    }

    /// Adds the user a contact link names (accepted at once: the user chose to add them), and
    /// fetches their devices. Adding a requested or blocked contact accepts them.
    pub fn add_contact(&mut self, link: &ContactLink, now_ms: u64) -> Result<Contact> {
        if link.user_key == self.user_key()? {
            return Err(Error::Malformed { what: "contact link names this user" });
        }
        let tx = self.store.transaction()?;
        let mut contact = tx.contact(&link.user_key)?.unwrap_or_else(|| Contact {
            user_key: link.user_key,
            display_name: link.name_hint.clone(),
            state: ContactState::Accepted,
            verified: false,
            relay_url: link.relay_url.clone(),
            delivery_token: None,
        });
        contact.state = ContactState::Accepted;
        contact.delivery_token = Some(link.delivery_token.clone());
        contact.relay_url = link.relay_url.clone();
        if contact.display_name.is_empty() {
            contact.display_name = link.name_hint.clone();
        }
        tx.put_contact(&contact)?;
        let id = ConversationId::Direct(link.user_key);
        if tx.conversation(&id)?.is_none() {
            let mut conversation = Conversation::new(id);
            conversation.last_activity_ms = now_ms;
            tx.put_conversation(&conversation)?;
        }
        tx.commit()?;
        self.request_device_list(link.user_key);
        Ok(contact)
    }

    /// Accepts a message request: the contact's messages become ordinary history.
    pub fn accept_contact(&mut self, user: &SigningPublicKey) -> Result<Contact> {
        self.set_contact_state(user, ContactState::Accepted)
    }

    /// Blocks a user: their messages are acked and dropped from now on, without events.
    pub fn block(&mut self, user: &SigningPublicKey) -> Result<Contact> {
        self.set_contact_state(user, ContactState::Blocked)
    }

    fn set_contact_state(&mut self, user: &SigningPublicKey, state: ContactState) -> Result<Contact> {
        if *user == self.user_key()? {
            return Err(Error::Malformed { what: "contact is this user" });
        }
        let tx = self.store.transaction()?;
        let mut contact = tx.contact(user)?.unwrap_or_else(|| new_contact(*user, state, &self.config.relay_url));
        contact.state = state;
        tx.put_contact(&contact)?;
        tx.commit()?;
        Ok(contact)
    }

    /// Every contact (accepted, requested and blocked).
    pub fn contacts(&mut self) -> Result<Vec<Contact>> {
        let tx = self.store.transaction()?;
        let contacts = tx.contacts()?;
        tx.commit()?;
        Ok(contacts)
    }

    /// The safety number with `user` (whose device list must have been fetched).
    pub fn safety_number(&mut self, user: &SigningPublicKey) -> Result<SafetyNumber> {
        let tx = self.store.transaction()?;
        let peer = tx.peer(user)?.ok_or(Error::NoSession)?;
        tx.commit()?;
        Ok(peer.safety_number(&self.user_key()?))
    }

    /// Marks `user` verified if `scanned` (their QR payload) matches the safety number; `false`
    /// (nothing changed) if it does not. Verifying also accepts a pending identity change.
    pub fn verify(&mut self, user: &SigningPublicKey, scanned: &[u8]) -> Result<bool> {
        let me = self.user_key()?;
        let tx = self.store.transaction()?;
        let mut peer = tx.peer(user)?.ok_or(Error::NoSession)?;
        if !peer.verify(&me, scanned)? {
            return Ok(false);
        }
        tx.put_peer(&peer)?;
        if let Some(mut contact) = tx.contact(user)? {
            contact.verified = true;
            tx.put_contact(&contact)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Accepts a peer's changed identity without verifying it (as a user tapping "OK").
    pub fn accept_identity_change(&mut self, user: &SigningPublicKey, now_ms: u64) -> Result<()> {
        self.user_key()?;
        let tx = self.store.transaction()?;
        let mut peer = tx.peer(user)?.ok_or(Error::NoSession)?;
        peer.accept_identity_change()?;
        tx.put_peer(&peer)?;
        if let Some(mut contact) = tx.contact(user)? {
            contact.verified = false;
            tx.put_contact(&contact)?;
        }
        tx.commit()?;
        self.flush(now_ms)
    }

    /// Asks the relay for `user`'s signed device list (once at a time).
    pub(super) fn request_device_list(&mut self, user: SigningPublicKey) {
        if self.connected && self.fetching_lists.insert(user) {
            let body = Req::FetchDeviceList(relay::FetchDeviceList { user_key: user.to_bytes().to_vec() });
            self.push(body, Pending::FetchList(user));
        }
    }

    /// Asks for `user`'s device list because a message named `version` as current: once per
    /// version and connection, so a relay that keeps serving an older list gets asked only once
    /// (what waits for it is dropped with the parked envelopes' age limit).
    pub(super) fn request_newer_list(&mut self, user: SigningPublicKey, version: u64) {
        if self.newer_lists_asked.len() >= crate::limits::MAX_NEWER_LISTS_ASKED {
            self.newer_lists_asked.clear();
        }
        if self.newer_lists_asked.insert((user, version)) {
            self.request_device_list(user);
        }
    }

    /// Asks the relay for a prekey bundle of `device` of `user` (once at a time).
    pub(super) fn request_bundle(&mut self, user: SigningPublicKey, device: SigningPublicKey) {
        if self.connected && self.fetching_bundles.insert(device) {
            let body = Req::FetchBundle(relay::FetchBundle { device_key: device.to_bytes().to_vec() });
            self.push(body, Pending::FetchBundle { user, device });
        }
    }

    pub(super) fn on_device_list(
        &mut self,
        user: SigningPublicKey,
        bytes: &[u8],
        now_ms: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let Ok(list) = SignedDeviceList::from_bytes(bytes) else { return Ok(()) };
        let own = self.user == Some(user);
        if own && list.user_key() != user {
            // This user's key does not change: a list under another key is not ours.
            return Ok(());
        }
        let this_device = self.device_key();
        if own && list.device(&this_device).is_err() {
            return self.on_list_without_this_device(bytes, events);
        }
        let mut own_version = None;
        let tx = self.store.transaction()?;
        if own && list.device(&this_device).is_ok() {
            // Another device linked one more device: keep the newest list as this device's own.
            let current = tx.setting(SETTING_DEVICE_LIST)?.map(|b| SignedDeviceList::from_bytes(&b)).transpose()?;
            if list.check_supersedes(current.as_ref()).is_ok() {
                tx.put_setting(SETTING_DEVICE_LIST, &list.to_bytes())?;
                own_version = Some(list.list_version());
            }
        }
        let peer = match tx.peer(&user)? {
            Some(mut peer) => {
                // A rollback, the same list again or a list for someone else keeps what is pinned.
                if let Ok(Some(PeerEvent::IdentityChanged { .. })) = peer.update_device_list(list) {
                    events.push(Event::IdentityChanged { user });
                }
                peer
            }
            None if list.user_key() == user => PeerUser::new(list),
            None => return Ok(()),
        };
        tx.put_peer(&peer)?;
        tx.commit()?;
        if let Some(version) = own_version {
            self.own_list_version = version;
        }
        for d in peer.device_list().devices() {
            self.presence_users.insert(d.device_key(), user);
        }
        // Envelopes parked for this list may now open; those from a device the user does not list
        // never will (a ghost device, or one removed): drop them.
        let mut acks = Vec::new();
        for envelope in core::mem::take(&mut self.parked) {
            let unlisted = sealed_sender::open(&self.identity, &envelope.payload).is_ok_and(|u| {
                u.sender_user_key == user && peer.device_list().device(&u.sender_device.device_key()).is_err()
            });
            if unlisted {
                self.drop_envelope(envelope.id, now_ms)?;
                acks.push(envelope.id);
                events.push(Event::Undecryptable { from: Some(user), reason: ErrorKind::Identity });
            } else {
                self.parked.push(envelope);
            }
        }
        self.send_acks(acks);
        let parked = core::mem::take(&mut self.parked);
        self.on_envelopes(parked, now_ms, events)
    }

    /// The relay has no device list for `user` (no such user there): what waited for their list
    /// cannot be read.
    pub(super) fn on_no_device_list(
        &mut self,
        user: SigningPublicKey,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        let (theirs, rest): (Vec<_>, Vec<_>) =
            core::mem::take(&mut self.parked).into_iter().partition(|e| self.parked_sender(e) == Some(user));
        self.parked = rest;
        let mut acks = Vec::new();
        for e in theirs {
            self.drop_envelope(e.id, now_ms)?;
            acks.push(e.id);
            events.push(Event::Undecryptable { from: Some(user), reason: ErrorKind::Identity });
        }
        self.send_acks(acks);
        Ok(())
    }

    fn parked_sender(&self, envelope: &relay::Envelope) -> Option<SigningPublicKey> {
        sealed_sender::open(&self.identity, &envelope.payload).ok().map(|u| u.sender_user_key)
    }

    pub(super) fn on_bundle(&mut self, user: SigningPublicKey, device: SigningPublicKey, bytes: &[u8]) -> Result<()> {
        let Ok(bundle) = PrekeyBundle::from_bytes(bytes) else { return Ok(()) };
        if bundle.device.device_key() != device {
            return Ok(());
        }
        let tx = self.store.transaction()?;
        let Some(mut peer) = tx.peer(&user)? else { return Ok(()) };
        if peer.add_session(&mut self.rng, &self.identity, &bundle, self.config.session).is_err() {
            return Ok(());
        }
        tx.put_peer(&peer)?;
        tx.commit()
    }
}

/// A contact known by their key alone (no name, delivery token or verification yet).
pub(super) fn new_contact(user_key: SigningPublicKey, state: ContactState, relay_url: &str) -> Contact {
    Contact {
        user_key,
        display_name: String::new(),
        state,
        verified: false,
        relay_url: relay_url.to_owned(),
        delivery_token: None,
    }
}
