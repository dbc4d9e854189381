//! One peer user and all their devices (docs/PROTOCOL.md §4 and §12; Signal's Sesame in
//! spirit): the pinned signed device list, a session record per listed device, and the trust state.
//!
//! A message to a user goes to every device on their current list; a message from a device that is
//! not on it is refused, so the relay cannot add a ghost device. A list signed by a different user
//! key is an identity change: it is held aside and blocks sending until the user accepts it or
//! verifies the new safety number. Your own other devices are a `PeerUser` too (your own user key).

pub(crate) mod pickle;

use std::collections::BTreeMap;

use rand_core::CryptoRngCore;

use crate::account::Account;
use crate::crypto::{DeviceKeys, SigningPublicKey};
use crate::delivery_token::DeliveryToken;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::message::SessionMessage;
use crate::pqxdh::SessionConfig;
use crate::prekeys::PrekeyBundle;
use crate::safety_number::SafetyNumber;
use crate::session::SessionRecord;

/// What a device-list update changed, for the application to show.
// Events are rare and short-lived; boxing the keys would only make matching on them clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// The user's device list changed: sessions with removed devices were dropped.
    DevicesChanged {
        /// Devices now listed that were not before.
        added: Vec<SigningPublicKey>,
        /// Devices no longer listed.
        removed: Vec<SigningPublicKey>,
    },
    /// A device list signed by a different user key arrived: sending is blocked until
    /// [`PeerUser::accept_identity_change`] or a successful [`PeerUser::verify`] with the new key.
    IdentityChanged {
        /// The pinned user key.
        previous: SigningPublicKey,
        /// The new one.
        new: SigningPublicKey,
    },
}

/// One encrypted copy of a message, for one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceMessage {
    /// The recipient device.
    pub device: SigningPublicKey,
    /// The encoded session message.
    pub message: Vec<u8>,
}

/// A peer user: pinned device list, sessions with each listed device, trust state.
#[derive(Clone, Debug)]
pub struct PeerUser {
    pub(crate) devices: SignedDeviceList,
    pub(crate) sessions: BTreeMap<[u8; 32], SessionRecord>,
    pub(crate) verified: bool,
    pub(crate) pending_identity: Option<SignedDeviceList>,
    pub(crate) delivery_token: Option<DeliveryToken>,
}

impl PeerUser {
    /// Pins a user's first device list (trust on first use; verify the safety number to do better).
    pub fn new(devices: SignedDeviceList) -> Self {
        Self { devices, sessions: BTreeMap::new(), verified: false, pending_identity: None, delivery_token: None }
    }

    /// The pinned user key.
    pub fn user_key(&self) -> SigningPublicKey {
        self.devices.user_key()
    }

    /// The pinned device list.
    pub fn device_list(&self) -> &SignedDeviceList {
        &self.devices
    }

    /// Whether the safety number was compared and matched (reset by an identity change).
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The new user key of an identity change not yet accepted, if any.
    pub fn pending_identity_change(&self) -> Option<SigningPublicKey> {
        self.pending_identity.as_ref().map(SignedDeviceList::user_key)
    }

    /// The safety number between `local_user_key` and this peer's pinned user key.
    pub fn safety_number(&self, local_user_key: &SigningPublicKey) -> SafetyNumber {
        SafetyNumber::new(local_user_key, &self.user_key())
    }

    /// Takes in a device list fetched from the relay. A lower version than the pinned one is refused
    /// ([`Error::DeviceListRollback`]); another user key becomes a pending identity change.
    pub fn update_device_list(&mut self, list: SignedDeviceList) -> Result<Option<PeerEvent>> {
        if list.user_key() != self.user_key() {
            // Keep the newest list of the new key, refusing rollbacks of that one too.
            if let Some(pending) = &self.pending_identity
                && pending.user_key() == list.user_key()
            {
                list.check_supersedes(Some(pending))?;
            }
            let event = PeerEvent::IdentityChanged { previous: self.user_key(), new: list.user_key() };
            self.pending_identity = Some(list);
            return Ok(Some(event));
        }
        list.check_supersedes(Some(&self.devices))?;
        if list == self.devices {
            return Ok(None);
        }
        let (added, removed) = diff(&self.devices, &list);
        self.sessions.retain(|k, _| list.devices().iter().any(|d| d.device_key().as_bytes() == k));
        self.devices = list;
        Ok(Some(PeerEvent::DevicesChanged { added, removed }))
    }

    /// Accepts a pending identity change: pins the new list, drops every session (they were with
    /// the old identity's devices) and clears the verified mark.
    pub fn accept_identity_change(&mut self) -> Result<()> {
        let list = self.pending_identity.take().ok_or(Error::Malformed { what: "no pending identity change" })?;
        self.devices = list;
        self.sessions.clear();
        self.verified = false;
        // The old identity's token: the new one's devices come with their own.
        self.delivery_token = None;
        Ok(())
    }

    /// The user's delivery token, as its latest sealed envelope gave it (§9.5).
    pub fn delivery_token(&self) -> Option<&DeliveryToken> {
        self.delivery_token.as_ref()
    }

    /// Keeps the delivery token an envelope from this user carried. Only for an envelope whose
    /// sender was checked against this user's list and whose inner message decrypted, so a replayed
    /// or forged envelope cannot set it.
    pub fn set_delivery_token(&mut self, token: DeliveryToken) {
        self.delivery_token = Some(token);
    }

    /// Compares a scanned safety-number QR payload. If a change is pending, the comparison is with
    /// the new key, and a match accepts it. Returns whether it matched; a mismatch changes nothing.
    pub fn verify(&mut self, local_user_key: &SigningPublicKey, scanned: &[u8]) -> Result<bool> {
        let key = self.pending_identity_change().unwrap_or(self.user_key());
        if !SafetyNumber::new(local_user_key, &key).matches_scanned(scanned)? {
            return Ok(false);
        }
        if self.pending_identity.is_some() {
            self.accept_identity_change()?;
        }
        self.verified = true;
        Ok(true)
    }

    /// Listed devices with no session yet: fetch a bundle for each and call [`PeerUser::add_session`].
    pub fn devices_without_session(&self, exclude: Option<&SigningPublicKey>) -> Vec<DeviceKeys> {
        self.devices
            .devices()
            .iter()
            .filter(|d| Some(&d.device_key()) != exclude)
            .filter(|d| !self.sessions.get(d.device_key().as_bytes()).is_some_and(SessionRecord::has_session))
            .copied()
            .collect()
    }

    /// Opens a session with a listed device from its bundle.
    pub fn add_session(
        &mut self,
        rng: &mut impl CryptoRngCore,
        local: &DeviceIdentity,
        bundle: &PrekeyBundle,
        config: SessionConfig,
    ) -> Result<()> {
        let listed = self.devices.device(&bundle.device.device_key())?;
        if listed != &bundle.device {
            return Err(Error::UnknownDevice);
        }
        self.with_record(bundle.device.device_key().to_bytes(), |r| r.initiate(rng, local, bundle, config))
    }

    /// Encrypts for every listed device (but `exclude`, the sending device itself when this is the
    /// own user). Refused while an identity change is pending or a listed device has no session;
    /// on error nothing was encrypted.
    pub fn encrypt(
        &mut self,
        rng: &mut impl CryptoRngCore,
        plaintext: &[u8],
        exclude: Option<&SigningPublicKey>,
    ) -> Result<Vec<DeviceMessage>> {
        if self.pending_identity.is_some() {
            return Err(Error::IdentityChangePending);
        }
        if !self.devices_without_session(exclude).is_empty() {
            return Err(Error::NoSession);
        }
        let mut out = Vec::new();
        for device in self.devices.devices().iter().filter(|d| Some(&d.device_key()) != exclude) {
            let record = self.sessions.get_mut(device.device_key().as_bytes()).ok_or(Error::NoSession)?;
            out.push(DeviceMessage { device: device.device_key(), message: record.encrypt(rng, plaintext)? });
        }
        Ok(out)
    }

    /// Encrypts for one listed device (the outbox sends each device's copy on its own, so a copy
    /// the relay refused is encrypted again for that device alone). Refused while an identity change
    /// is pending or the device has no session.
    pub fn encrypt_to(
        &mut self,
        rng: &mut impl CryptoRngCore,
        plaintext: &[u8],
        device: &SigningPublicKey,
    ) -> Result<Vec<u8>> {
        if self.pending_identity.is_some() {
            return Err(Error::IdentityChangePending);
        }
        self.devices.device(device)?;
        let record = self.sessions.get_mut(device.as_bytes()).ok_or(Error::NoSession)?;
        record.encrypt(rng, plaintext)
    }

    /// The id of the active session with a device (see [`SessionRecord::session_id`]).
    pub fn session_id(&self, device: &SigningPublicKey) -> Option<[u8; 32]> {
        self.sessions.get(device.as_bytes()).and_then(SessionRecord::session_id)
    }

    /// Archives the active session with a device, so the next message starts a new one.
    pub fn archive_session(&mut self, device: &SigningPublicKey) {
        if let Some(record) = self.sessions.get_mut(device.as_bytes()) {
            record.archive_active();
        }
    }

    /// Decrypts a message from `sender` (the device the relay or the sealed envelope names), which
    /// must be on the pinned list; a prekey message must come from that same device.
    pub fn decrypt(
        &mut self,
        rng: &mut impl CryptoRngCore,
        account: &mut Account,
        sender: &SigningPublicKey,
        message: &[u8],
        config: SessionConfig,
    ) -> Result<Vec<u8>> {
        if self.pending_identity.is_some() {
            return Err(Error::IdentityChangePending);
        }
        let listed = *self.devices.device(sender)?;
        if let SessionMessage::Prekey(m) = SessionMessage::from_bytes(message)?
            && m.initiator != listed
        {
            return Err(Error::PeerMismatch);
        }
        self.with_record(sender.to_bytes(), |r| r.decrypt(rng, account, message, config))
    }

    /// Keeps a session set up outside this peer (by device linking) with one of its listed devices.
    pub(crate) fn insert_session(&mut self, device: &SigningPublicKey, record: SessionRecord) -> Result<()> {
        self.devices.device(device)?;
        self.sessions.insert(device.to_bytes(), record);
        Ok(())
    }

    /// Runs `f` on the device's record. `SessionRecord` operations change nothing on error, so a
    /// record made for the occasion is kept only if `f` succeeded: a failure leaves no trace.
    fn with_record<T>(&mut self, device: [u8; 32], f: impl FnOnce(&mut SessionRecord) -> Result<T>) -> Result<T> {
        if let Some(record) = self.sessions.get_mut(&device) {
            return f(record);
        }
        let mut record = SessionRecord::new();
        let out = f(&mut record)?;
        self.sessions.insert(device, record);
        Ok(out)
    }
}

fn diff(old: &SignedDeviceList, new: &SignedDeviceList) -> (Vec<SigningPublicKey>, Vec<SigningPublicKey>) {
    let keys = |l: &SignedDeviceList| l.devices().iter().map(DeviceKeys::device_key).collect::<Vec<_>>();
    let (o, n) = (keys(old), keys(new));
    (n.iter().filter(|k| !o.contains(k)).copied().collect(), o.iter().filter(|k| !n.contains(k)).copied().collect())
}
