//! Linking a device to a user through the client (docs/PROTOCOL.md §12; the protocol is
//! [`crate::link`]).
//!
//! 1. The new device: [`Client::create_for_link`] makes a device account with no user and a
//!    [`LinkRequest`]; [`Client::link_request`] shows it as `hush://link/…` (or a QR code of it).
//!    Connected, it publishes its prekeys, so its mailbox exists.
//! 2. An existing device: [`Client::link_device`] checks the URI, signs the device list version + 1
//!    naming the new device, pins it, and queues (in one transaction, through the outbox) the new
//!    list for the relay and the approval — user key, list, delivery token, profile name and
//!    contacts — sealed to the new device.
//! 3. The new device, on that envelope: [`link::complete`] (the link secret must match), then one
//!    transaction stores the user, the list, the session with the approving device and the
//!    contacts, and drops the request; [`Event::DeviceLinked`] follows.
//!
//! Contacts learn of the new device the first time it writes to them (a message from a device not
//! on a pinned list makes the client fetch the user's list again before reading it); the user's
//! other devices likewise, and at every connect.

use prost::Message as _;
use zeroize::Zeroizing;

use super::outbox::frame_entry;
use super::{
    Client, ClientConfig, Event, SETTING_DELIVERY_TOKEN, SETTING_DEVICE_LIST, SETTING_LINK_REQUEST, SETTING_PROFILE,
};
use crate::account::Account;
use crate::crypto::SigningPublicKey;
use crate::delivery_token::DeliveryToken;
use crate::error::{Error, Result};
use crate::link::{self, LinkRequest};
use crate::peer::PeerUser;
use crate::sealed_sender::{self, InnerKind, Unsealed};
use crate::store::{Contact, ContactState, Conversation, ConversationId, OutboxItem, Store};
use crate::wire::client::{LinkedContact, LinkedState};
use crate::wire::relay::{self as relay, client_frame::Body as Req};

/// The most contacts an approval passes to a new device (the approval must fit one message).
pub const MAX_LINKED_CONTACTS: usize = 5_000;

const LINKED_STATE_VERSION: u32 = 1;

/// The longest display name or relay URL of a passed contact.
const MAX_LINKED_TEXT_BYTES: usize = 512;

impl Client {
    /// Creates a device that waits to be linked to an existing user, in an empty `store`: a device
    /// account and a link request, no user yet. Show [`link_request`](Self::link_request) to the
    /// user's existing device and connect; [`Event::DeviceLinked`] says when it is done. Until
    /// then, what needs a user fails with [`Error::NotLinked`].
    pub fn create_for_link(mut store: Store, config: ClientConfig, now_ms: u64) -> Result<Self> {
        config.check()?;
        let mut rng = super::new_rng()?;
        let mut account = Account::new(&mut rng);
        account.rotate_due_prekeys(&mut rng, now_ms);
        let request = LinkRequest::new(&mut rng, &account)?;
        {
            let tx = store.transaction()?;
            if tx.account()?.is_some() {
                return Err(Error::StoreExists);
            }
            tx.put_account(&account)?;
            tx.put_setting(SETTING_LINK_REQUEST, &Zeroizing::new(request.to_bytes()))?;
            tx.put_setting(SETTING_PROFILE, config.display_name.as_bytes())?;
            tx.commit()?;
        }
        Self::open(store, config)
    }

    /// The `hush://link/…` URI this waiting device shows (as text or a QR code). It holds a secret
    /// that lets whoever scans it hand this device the user key's trust: show it to the user only.
    /// [`Error::AlreadyLinked`] once linked.
    pub fn link_request(&mut self) -> Result<Zeroizing<String>> {
        if self.user.is_some() {
            return Err(Error::AlreadyLinked);
        }
        Ok(self.stored_link_request()?.to_uri())
    }

    fn stored_link_request(&mut self) -> Result<LinkRequest> {
        let tx = self.store.transaction()?;
        let bytes = tx.setting(SETTING_LINK_REQUEST)?.ok_or(Error::AlreadyLinked)?;
        tx.commit()?;
        LinkRequest::from_bytes(&bytes)
    }

    /// Approves a new device of this user from the URI it shows: signs and pins the device list
    /// naming it (version + 1), and queues that list for the relay and the sealed approval for the
    /// device — all in one transaction, sent now if connected. Returns the new device's key.
    ///
    /// A malformed, oversized or unverifiable URI, or a device already on the list (the same URI
    /// again, or this device's own), is an error and changes nothing.
    pub fn link_device(&mut self, uri: &str, now_ms: u64) -> Result<SigningPublicKey> {
        let user = self.primary_user()?.clone();
        let me = user.user_key();
        let request = LinkRequest::from_uri(uri)?;
        let new_device = request.bundle.device;
        let current = self.own_device_list()?;
        let state = Zeroizing::new(self.linked_state()?.encode_to_vec());
        let out = link::approve(&mut self.rng, &user, &self.identity, &current, &request, &state, now_ms / 1000)?;
        let envelope = sealed_sender::seal(
            &mut self.rng,
            &me,
            &sealed_sender::SenderState::new(self.own_list_version, self.token.clone()),
            &self.identity,
            &new_device,
            InnerKind::Session,
            &out.message,
        )?;

        let tx = self.store.transaction()?;
        let mut own = tx.peer(&me)?.unwrap_or_else(|| PeerUser::new(current));
        own.update_device_list(out.device_list.clone())?;
        own.insert_session(&new_device.device_key(), out.session)?;
        tx.put_peer(&own)?;
        tx.put_setting(SETTING_DEVICE_LIST, &out.device_list.to_bytes())?;
        // Through the outbox, in this order: the relay learns the list, then the device its approval.
        let mut id = [0u8; crate::content::CLIENT_MESSAGE_ID_LEN];
        rand_core::RngCore::fill_bytes(&mut self.rng, &mut id);
        let publish =
            Req::PublishDeviceList(relay::PublishDeviceList { signed_device_list: out.device_list.to_bytes() });
        let approval = Req::Send(relay::Send {
            messages: vec![relay::Outgoing {
                recipient_device: new_device.device_key().to_bytes().to_vec(),
                payload: envelope,
                online_only: false,
            }],
        });
        for body in [publish, approval] {
            tx.outbox_push(&OutboxItem {
                id: 0,
                conversation: ConversationId::Direct(me),
                message_id: id,
                frame: frame_entry(body),
                attempts: 0,
                next_attempt_ms: 0,
            })?;
        }
        tx.commit()?;
        self.own_list_version = out.device_list.list_version();
        self.flush(now_ms)?;
        Ok(new_device.device_key())
    }

    /// What a new device gets besides the user key: the delivery token, the profile name and the
    /// contacts (at most [`MAX_LINKED_CONTACTS`]).
    fn linked_state(&mut self) -> Result<LinkedState> {
        let token = self.token.clone().ok_or(Error::NotLinked)?;
        let tx = self.store.transaction()?;
        let name = tx.setting(SETTING_PROFILE)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let contacts = tx.contacts()?;
        tx.commit()?;
        Ok(LinkedState {
            version: LINKED_STATE_VERSION,
            delivery_token: token.to_bytes().to_vec(),
            display_name: name,
            contacts: contacts
                .iter()
                .take(MAX_LINKED_CONTACTS)
                .map(|c| LinkedContact {
                    user_key: c.user_key.to_bytes().to_vec(),
                    display_name: c.display_name.clone(),
                    state: match c.state {
                        ContactState::Requested => 1,
                        ContactState::Accepted => 2,
                        ContactState::Blocked => 3,
                    },
                    verified: c.verified,
                    relay_url: c.relay_url.clone(),
                    delivery_token: c.delivery_token.as_ref().map(|t| t.to_bytes().to_vec()),
                })
                .collect(),
        })
    }

    /// An envelope reached this waiting device: its approval completes the link, anything else
    /// (or an approval that does not check out) is dropped with [`Event::Undecryptable`] and
    /// changes nothing but the mark that the relay id was seen.
    pub(super) fn complete_link(
        &mut self,
        id: u64,
        unsealed: &Unsealed,
        now_ms: u64,
        events: &mut Vec<Event>,
    ) -> Result<()> {
        match self.try_complete_link(id, unsealed, now_ms) {
            Ok(user) => {
                events.push(Event::DeviceLinked { user });
                if self.connected {
                    self.user_setup()?;
                }
                Ok(())
            }
            Err(Error::Database(e)) => Err(Error::Database(e)),
            Err(e) => {
                self.drop_envelope(id, now_ms)?;
                events.push(Event::Undecryptable { from: None, reason: e.kind() });
                Ok(())
            }
        }
    }

    fn try_complete_link(&mut self, id: u64, unsealed: &Unsealed, now_ms: u64) -> Result<SigningPublicKey> {
        if unsealed.kind != InnerKind::Session {
            return Err(Error::Malformed { what: "link approval" });
        }
        let request = self.stored_link_request()?;
        let mut account = self.account.clone();
        let linked = link::complete(&mut self.rng, &mut account, &request, &unsealed.inner)?;
        let user_key = linked.user_key;
        // The sealed sender must be the user and the approving device the list names.
        if user_key != unsealed.sender_user_key {
            return Err(Error::SenderMismatch);
        }
        unsealed.check_device_list(&linked.device_list)?;
        let approver = unsealed.sender_device.device_key();
        let state = decode_linked_state(&linked.contacts)?;
        let token = DeliveryToken::from_bytes(&state.delivery_token)?;
        let contacts = state
            .contacts
            .iter()
            .map(|c| contact_from(c, &self.config.relay_url))
            .filter(|c| !c.as_ref().is_ok_and(|c| c.user_key == user_key))
            .collect::<Result<Vec<_>>>()?;

        let mut own = PeerUser::new(linked.device_list.clone());
        own.insert_session(&approver, linked.session)?;
        let tx = self.store.transaction()?;
        tx.put_account(&account)?;
        tx.put_setting(SETTING_DEVICE_LIST, &linked.device_list.to_bytes())?;
        tx.put_setting(SETTING_DELIVERY_TOKEN, token.to_bytes().as_slice())?;
        if !state.display_name.is_empty() {
            tx.put_setting(SETTING_PROFILE, state.display_name.as_bytes())?;
        }
        tx.put_peer(&own)?;
        for contact in &contacts {
            tx.put_contact(contact)?;
            let conversation = ConversationId::Direct(contact.user_key);
            if contact.state == ContactState::Accepted && tx.conversation(&conversation)?.is_none() {
                let mut c = Conversation::new(conversation);
                c.last_activity_ms = now_ms;
                tx.put_conversation(&c)?;
            }
        }
        tx.delete_setting(SETTING_LINK_REQUEST)?;
        if id != 0 {
            tx.mark_processed(id, now_ms)?;
        }
        tx.commit()?;
        self.account = account;
        self.user = Some(user_key);
        self.user_identity = None;
        self.token = Some(token);
        self.own_list_version = linked.device_list.list_version();
        Ok(user_key)
    }
}

fn decode_linked_state(bytes: &[u8]) -> Result<LinkedState> {
    let state: LinkedState = crate::wire::decode(bytes, crate::limits::MAX_LINK_APPROVAL_BYTES, "linked state")?;
    crate::wire::check_version("linked state", state.version, LINKED_STATE_VERSION)?;
    if state.contacts.len() > MAX_LINKED_CONTACTS {
        return Err(Error::TooLarge { what: "linked contacts", size: state.contacts.len(), max: MAX_LINKED_CONTACTS });
    }
    if state.display_name.len() > MAX_LINKED_TEXT_BYTES {
        return Err(Error::TooLarge {
            what: "linked name",
            size: state.display_name.len(),
            max: MAX_LINKED_TEXT_BYTES,
        });
    }
    Ok(state)
}

fn contact_from(c: &LinkedContact, default_relay: &str) -> Result<Contact> {
    if c.display_name.len() > MAX_LINKED_TEXT_BYTES || c.relay_url.len() > MAX_LINKED_TEXT_BYTES {
        return Err(Error::TooLarge {
            what: "linked contact text",
            size: c.display_name.len().max(c.relay_url.len()),
            max: MAX_LINKED_TEXT_BYTES,
        });
    }
    Ok(Contact {
        user_key: SigningPublicKey::from_slice(&c.user_key, "linked contact")?,
        display_name: c.display_name.clone(),
        state: match c.state {
            1 => ContactState::Requested,
            2 => ContactState::Accepted,
            3 => ContactState::Blocked,
            _ => return Err(Error::Malformed { what: "linked contact state" }),
        },
        verified: c.verified,
        relay_url: if c.relay_url.is_empty() { default_relay.to_owned() } else { c.relay_url.clone() },
        delivery_token: c.delivery_token.as_deref().map(DeliveryToken::from_bytes).transpose()?,
    })
}
