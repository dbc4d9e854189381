//! 1:1 sessions with one peer device (docs/PROTOCOL.md §8): a [`SessionRecord`] holds the
//! active session and up to [`MAX_ARCHIVED_SESSIONS`] archived ones (simultaneous initiation),
//! tries the active one first and promotes whichever decrypts.

pub(crate) mod pickle;

use std::collections::VecDeque;

use rand_core::CryptoRngCore;

use crate::account::{Account, UsedPrekeys};
use crate::crypto::aead;
use crate::crypto::{DeviceKeys, PublicKey};
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::limits::{MAX_ARCHIVED_SESSIONS, MAX_PLAINTEXT_BYTES};
use crate::message::{PrekeyMessage, RatchetMessage, SessionMessage};
use crate::pqxdh::{self, SessionConfig};
use crate::prekeys::PrekeyBundle;
use crate::ratchet::pq::{self, PqRatchet};
use crate::ratchet::{RatchetState, Suite, open_v1, padding};

/// What an initiator repeats in every message until the responder answers.
#[derive(Clone, Debug)]
pub(crate) struct PendingPrekey {
    pub(crate) local: DeviceKeys,
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) kem_prekey_id: Option<u32>,
    pub(crate) kem_ciphertext: Vec<u8>,
}

/// One Double Ratchet session.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) ratchet: RatchetState,
    pub(crate) peer: DeviceKeys,
    /// Initiator's device and identity keys, then the responder's.
    pub(crate) ad: Vec<u8>,
    /// The initiator's PQXDH ephemeral key: identifies the session on both sides.
    pub(crate) base_key: PublicKey,
    pub(crate) post_quantum: bool,
    pub(crate) pending_prekey: Option<PendingPrekey>,
    /// The triple ratchet (§7A): from PQXDH's secret in a new session; `None` in a session of a
    /// version-1 record until either side upgrades it.
    pub(crate) pq: Option<PqRatchet>,
    /// Whether we send version-2 (triple ratchet) messages: from the peer's first message that
    /// advertised or was version 2 on; never cleared.
    pub(crate) sends_v2: bool,
}

/// Whether `half` of a session's AD is `device`'s device key then identity key.
pub(crate) fn names_device(half: &[u8], device: &DeviceKeys) -> bool {
    half.get(..32) == Some(device.device_key().as_bytes().as_slice())
        && half.get(32..) == Some(device.identity_key().as_bytes().as_slice())
}

impl Session {
    /// Initiator side: runs PQXDH with a verified bundle and starts the Double Ratchet from its
    /// output (the ratchet draws its first key pair from `rng` after the key agreement).
    pub(crate) fn initiate(
        rng: &mut impl CryptoRngCore,
        local: &DeviceIdentity,
        bundle: &PrekeyBundle,
        config: SessionConfig,
    ) -> Result<Self> {
        let agreed = pqxdh::initiate(rng, local, bundle, config)?;
        let ratchet = RatchetState::initiator(rng, &agreed.sk, agreed.peer_signed_prekey)?;
        let pq = PqRatchet::new(true, pq::keys::initial(&agreed.sk)?);
        Ok(Session {
            ratchet,
            peer: bundle.device,
            ad: agreed.ad,
            base_key: agreed.base_key,
            post_quantum: agreed.kem_prekey_id.is_some(),
            pending_prekey: Some(PendingPrekey {
                local: local.keys(),
                signed_prekey_id: agreed.signed_prekey_id,
                one_time_prekey_id: agreed.one_time_prekey_id,
                kem_prekey_id: agreed.kem_prekey_id,
                kem_ciphertext: agreed.kem_ciphertext,
            }),
            pq: Some(pq),
            sends_v2: false,
        })
    }

    /// Responder side: runs PQXDH for a first message and starts the Double Ratchet from its
    /// output, without changing the account. The caller decrypts the first message with the
    /// session and only then consumes the prekeys returned.
    pub(crate) fn respond(
        account: &Account,
        msg: &PrekeyMessage,
        config: SessionConfig,
    ) -> Result<(Self, UsedPrekeys)> {
        let agreed = pqxdh::respond(account, msg, config)?;
        let ratchet = RatchetState::responder(&agreed.sk, agreed.signed_prekey)?;
        let session = Session {
            ratchet,
            peer: msg.initiator,
            ad: agreed.ad,
            base_key: msg.base_key,
            post_quantum: agreed.post_quantum,
            pending_prekey: None,
            pq: Some(PqRatchet::new(false, pq::keys::initial(&agreed.sk)?)),
            sends_v2: false,
        };
        Ok((session, agreed.used))
    }

    /// Whether we initiated the session: the AD names the initiator first (§6.3).
    fn is_initiator(&self) -> bool {
        self.pending_prekey.is_some() || !self.ad.get(..64).is_some_and(|first| names_device(first, &self.peer))
    }

    /// A session of a version-1 record starts its epochs from its AD when either side upgrades.
    fn upgraded_pq(&self) -> Result<PqRatchet> {
        Ok(PqRatchet::new(self.is_initiator(), pq::keys::upgraded(&self.ad)?))
    }

    fn encrypt(&mut self, rng: &mut impl CryptoRngCore, plaintext: &[u8]) -> Result<SessionMessage> {
        let message = if self.sends_v2 {
            if plaintext.len() > MAX_PLAINTEXT_BYTES {
                return Err(Error::TooLarge { what: "plaintext", size: plaintext.len(), max: MAX_PLAINTEXT_BYTES });
            }
            if !self.ratchet.can_send() {
                return Err(Error::NoSession);
            }
            // On a copy: kept only with the message.
            let mut pq = match &self.pq {
                Some(pq) => pq.clone(),
                None => self.upgraded_pq()?,
            };
            let (epoch, key, shard) = pq.prepare_send(rng)?;
            let body = pq::chunk::encode(shard.as_ref(), plaintext);
            let message = self.ratchet.encrypt_with(rng, &self.ad, &body, Suite::V2 { epoch, key: &key })?;
            self.pq = Some(pq);
            message
        } else {
            self.ratchet.encrypt_with(rng, &self.ad, plaintext, Suite::V1 { advertise: true })?
        };
        Ok(match &self.pending_prekey {
            None => SessionMessage::Ratchet(message),
            Some(p) => SessionMessage::Prekey(Box::new(PrekeyMessage {
                initiator: p.local,
                base_key: self.base_key,
                signed_prekey_id: p.signed_prekey_id,
                one_time_prekey_id: p.one_time_prekey_id,
                kem_prekey_id: p.kem_prekey_id,
                kem_ciphertext: p.kem_ciphertext.clone(),
                message,
            })),
        })
    }

    /// Decrypts a version-1 or -2 message; the triple ratchet's new state is computed on a copy and
    /// kept with the Double Ratchet's, only if the whole message opened.
    fn decrypt(&mut self, rng: &mut impl CryptoRngCore, message: &RatchetMessage) -> Result<Vec<u8>> {
        let initiator = self.is_initiator();
        let (ad, current) = (&self.ad, &self.pq);
        let (plaintext, pq, advertised) =
            self.ratchet.decrypt_with(rng, ad, message, |header, key, body_ad| match header.epoch {
                None => open_v1(key, body_ad, &message.ciphertext)
                    .map(|(plaintext, advertised)| (plaintext, None, advertised)),
                Some(epoch) => {
                    let mut pq = match current {
                        Some(pq) => pq.clone(),
                        None => PqRatchet::new(initiator, pq::keys::upgraded(ad)?),
                    };
                    let secrets = key.expand_hybrid(pq.epoch_key(epoch)?)?;
                    let padded = aead::open(&secrets.key, &secrets.nonce, body_ad, &message.ciphertext)?;
                    let body = padding::unpad(padded)?;
                    let (shard, plaintext) = pq::chunk::decode(&body)?;
                    let plaintext = plaintext.to_vec();
                    pq.receive(epoch, shard)?;
                    Ok((plaintext, Some(pq), true))
                }
            })?;
        if let Some(pq) = pq {
            self.pq = Some(pq);
        }
        self.sends_v2 |= advertised;
        // The peer answered, so it has the session: stop sending prekey messages.
        self.pending_prekey = None;
        Ok(plaintext)
    }
}

/// All sessions with one peer device.
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub(crate) active: Option<Session>,
    /// Most recently active first.
    pub(crate) archived: VecDeque<Session>,
}

impl SessionRecord {
    /// An empty record, for a peer device with no session yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there is a session to encrypt with.
    pub fn has_session(&self) -> bool {
        self.active.is_some()
    }

    /// The peer device's keys, once a session exists.
    pub fn peer(&self) -> Option<DeviceKeys> {
        self.active.as_ref().or(self.archived.front()).map(|s| s.peer)
    }

    /// Whether the active session was set up with ML-KEM (PQXDH) rather than classical X3DH.
    pub fn is_post_quantum(&self) -> bool {
        self.active.as_ref().is_some_and(|s| s.post_quantum)
    }

    /// Benchmark-only (`bench/core/benches/session.rs`, its "Double Ratchet only" rows): makes the
    /// active session send version 1 and forget the triple ratchet, as a session of a version-1
    /// record that has not upgraded yet. Call it again after every decrypt (which may upgrade).
    /// Exists only with the `bench-classical` feature; never enable it in an application.
    #[cfg(feature = "bench-classical")]
    #[doc(hidden)]
    pub fn benchmark_without_triple_ratchet(&mut self) {
        if let Some(session) = self.active.as_mut() {
            session.sends_v2 = false;
            session.pq = None;
        }
    }

    /// The epoch the active session's triple ratchet sends in (§7A), once it sends version-2
    /// messages; `None` while it sends version 1.
    pub fn pq_epoch(&self) -> Option<u32> {
        let session = self.active.as_ref().filter(|s| s.sends_v2)?;
        Some(session.pq.as_ref().map_or(0, |pq| pq.sending_epoch))
    }

    /// Whether the active session still sends prekey messages (the peer has not answered yet).
    pub fn awaiting_reply(&self) -> bool {
        self.active.as_ref().is_some_and(|s| s.pending_prekey.is_some())
    }

    /// Number of archived sessions.
    pub fn archived_count(&self) -> usize {
        self.archived.len()
    }

    /// The active session's id: the initiator's base key, the same on both sides.
    pub fn session_id(&self) -> Option<[u8; 32]> {
        self.active.as_ref().map(|s| s.base_key.to_bytes())
    }

    /// Archives the active session (the peer reported it cannot decrypt with it): the next message
    /// needs a new session from a fresh bundle, while a late message in the old one still decrypts.
    pub fn archive_active(&mut self) {
        if let Some(previous) = self.active.take() {
            self.archived.push_front(previous);
            self.archived.truncate(MAX_ARCHIVED_SESSIONS);
        }
    }

    /// Opens a new session from a peer's verified prekey bundle; it becomes the active session
    /// and any previous one is archived. The peer must be the record's peer, if it has one.
    pub fn initiate(
        &mut self,
        rng: &mut impl CryptoRngCore,
        local: &DeviceIdentity,
        bundle: &PrekeyBundle,
        config: SessionConfig,
    ) -> Result<()> {
        self.check_peer(&bundle.device)?;
        let session = Session::initiate(rng, local, bundle, config)?;
        self.activate(session);
        Ok(())
    }

    /// Encrypts with the active session, returning an encoded [`SessionMessage`].
    pub fn encrypt(&mut self, rng: &mut impl CryptoRngCore, plaintext: &[u8]) -> Result<Vec<u8>> {
        let session = self.active.as_mut().ok_or(Error::NoSession)?;
        Ok(session.encrypt(rng, plaintext)?.to_bytes())
    }

    /// Decrypts an encoded [`SessionMessage`] from this record's peer. A prekey message for an
    /// unknown session opens one (consuming the account's one-time prekeys only on success).
    /// On any error, neither the record nor the account has changed.
    pub fn decrypt(
        &mut self,
        rng: &mut impl CryptoRngCore,
        account: &mut Account,
        message: &[u8],
        config: SessionConfig,
    ) -> Result<Vec<u8>> {
        match SessionMessage::from_bytes(message)? {
            SessionMessage::Ratchet(m) => self.decrypt_ratchet(rng, &m),
            SessionMessage::Prekey(m) => self.decrypt_prekey(rng, account, &m, config),
        }
    }

    fn decrypt_ratchet(&mut self, rng: &mut impl CryptoRngCore, message: &RatchetMessage) -> Result<Vec<u8>> {
        if let Some(active) = self.active.as_mut() {
            match active.decrypt(rng, message) {
                Err(Error::DecryptionFailed) => {}
                other => return other,
            }
        }
        for i in 0..self.archived.len() {
            let Some(session) = self.archived.get_mut(i) else { break };
            match session.decrypt(rng, message) {
                Err(Error::DecryptionFailed) => continue,
                Err(e) => return Err(e),
                Ok(plaintext) => {
                    self.promote(i);
                    return Ok(plaintext);
                }
            }
        }
        if self.active.is_none() && self.archived.is_empty() {
            return Err(Error::NoSession);
        }
        Err(Error::DecryptionFailed)
    }

    fn decrypt_prekey(
        &mut self,
        rng: &mut impl CryptoRngCore,
        account: &mut Account,
        message: &PrekeyMessage,
        config: SessionConfig,
    ) -> Result<Vec<u8>> {
        self.check_peer(&message.initiator)?;
        // A session this message already opened: decrypt there (a replay is a duplicate).
        if self.active.as_ref().is_some_and(|s| s.base_key == message.base_key) {
            let active = self.active.as_mut().ok_or(Error::Internal("active session"))?;
            return active.decrypt(rng, &message.message);
        }
        if let Some(i) = self.archived.iter().position(|s| s.base_key == message.base_key) {
            let session = self.archived.get_mut(i).ok_or(Error::Internal("archived session"))?;
            let plaintext = session.decrypt(rng, &message.message)?;
            self.promote(i);
            return Ok(plaintext);
        }
        if account.has_seen_base_key(&message.base_key) {
            return Err(Error::DuplicateMessage);
        }
        let (mut session, used) = Session::respond(account, message, config)?;
        let plaintext = session.decrypt(rng, &message.message)?;
        account.consume(rng, &used);
        self.activate(session);
        Ok(plaintext)
    }

    fn check_peer(&self, device: &DeviceKeys) -> Result<()> {
        match self.peer() {
            Some(peer) if peer.device_key() != device.device_key() || peer.identity_key() != device.identity_key() => {
                Err(Error::PeerMismatch)
            }
            _ => Ok(()),
        }
    }

    fn activate(&mut self, session: Session) {
        if let Some(previous) = self.active.replace(session) {
            self.archived.push_front(previous);
            self.archived.truncate(MAX_ARCHIVED_SESSIONS);
        }
    }

    fn promote(&mut self, archived_index: usize) {
        if let Some(session) = self.archived.remove(archived_index) {
            self.activate(session);
        }
    }
}
