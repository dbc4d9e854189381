//! 1:1 session messages on the wire: a [`PrekeyMessage`] until the responder answers, then plain
//! [`RatchetMessage`]s. Parsing checks sizes and field lengths; authenticity is the session's job.

use prost::Message;

use crate::crypto::aead::NONCE_LEN;
use crate::crypto::kem::KEM_CIPHERTEXT_LEN;
use crate::crypto::{DeviceKeys, PublicKey};
use crate::error::{Error, Result};
use crate::limits::MAX_SESSION_MESSAGE_BYTES;
use crate::ratchet::header::{ENCRYPTED_HEADER_LEN, ENCRYPTED_HEADER_LEN_PQ};
use crate::wire::{self, proto};

const MESSAGE_VERSION: u32 = 1;

/// A Double Ratchet message: encrypted header and encrypted, padded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatchetMessage {
    pub(crate) header_nonce: [u8; NONCE_LEN],
    pub(crate) encrypted_header: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

impl RatchetMessage {
    fn to_proto(&self) -> proto::RatchetMessage {
        proto::RatchetMessage {
            version: MESSAGE_VERSION,
            header_nonce: self.header_nonce.to_vec(),
            encrypted_header: self.encrypted_header.clone(),
            ciphertext: self.ciphertext.clone(),
        }
    }

    fn from_proto(p: proto::RatchetMessage) -> Result<Self> {
        wire::check_version("ratchet message", p.version, MESSAGE_VERSION)?;
        let header_nonce =
            p.header_nonce.as_slice().try_into().map_err(|_| Error::Malformed { what: "header nonce" })?;
        // Version 1 (the Double Ratchet alone) or 2 (the triple ratchet, §7A.6).
        if ![ENCRYPTED_HEADER_LEN, ENCRYPTED_HEADER_LEN_PQ].contains(&p.encrypted_header.len()) {
            return Err(Error::Malformed { what: "encrypted header" });
        }
        if p.ciphertext.is_empty() {
            return Err(Error::Malformed { what: "ciphertext" });
        }
        Ok(Self { header_nonce, encrypted_header: p.encrypted_header, ciphertext: p.ciphertext })
    }
}

/// The first messages of a session: the initiator's PQXDH values and a ratchet message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrekeyMessage {
    /// The initiator device's public keys (verified on parse).
    pub initiator: DeviceKeys,
    pub(crate) base_key: PublicKey,
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
    pub(crate) kem_prekey_id: Option<u32>,
    pub(crate) kem_ciphertext: Vec<u8>,
    pub(crate) message: RatchetMessage,
}

impl PrekeyMessage {
    /// Whether the session it opens is post-quantum (PQXDH) rather than classical X3DH.
    pub fn is_post_quantum(&self) -> bool {
        self.kem_prekey_id.is_some()
    }

    fn to_proto(&self) -> proto::PrekeyMessage {
        proto::PrekeyMessage {
            version: MESSAGE_VERSION,
            initiator: Some(self.initiator.to_proto()),
            base_key: self.base_key.to_bytes().to_vec(),
            signed_prekey_id: self.signed_prekey_id,
            one_time_prekey_id: self.one_time_prekey_id,
            kem_prekey_id: self.kem_prekey_id,
            kem_ciphertext: self.kem_ciphertext.clone(),
            message: Some(self.message.to_proto()),
        }
    }

    fn from_proto(p: proto::PrekeyMessage) -> Result<Self> {
        wire::check_version("prekey message", p.version, MESSAGE_VERSION)?;
        let initiator = DeviceKeys::from_proto(wire::required(&p.initiator, "prekey message initiator")?)?;
        let expected_ct = if p.kem_prekey_id.is_some() { KEM_CIPHERTEXT_LEN } else { 0 };
        if p.kem_ciphertext.len() != expected_ct {
            return Err(Error::InvalidKem { what: "ciphertext" });
        }
        let message = p.message.ok_or(Error::Malformed { what: "prekey message body" })?;
        Ok(Self {
            initiator,
            base_key: PublicKey::from_slice(&p.base_key, "base key")?,
            signed_prekey_id: p.signed_prekey_id,
            one_time_prekey_id: p.one_time_prekey_id,
            kem_prekey_id: p.kem_prekey_id,
            kem_ciphertext: p.kem_ciphertext,
            message: RatchetMessage::from_proto(message)?,
        })
    }
}

/// Any 1:1 session message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionMessage {
    /// A first message, which may open a new session at the responder.
    Prekey(Box<PrekeyMessage>),
    /// A message on an established session.
    Ratchet(RatchetMessage),
}

impl SessionMessage {
    /// Encodes the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = match self {
            SessionMessage::Prekey(m) => proto::session_message::Body::Prekey(m.to_proto()),
            SessionMessage::Ratchet(m) => proto::session_message::Body::Ratchet(m.to_proto()),
        };
        proto::SessionMessage { version: MESSAGE_VERSION, body: Some(body) }.encode_to_vec()
    }

    /// Decodes with the size limit, version and field-length checks (no decryption).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: proto::SessionMessage = wire::decode(bytes, MAX_SESSION_MESSAGE_BYTES, "session message")?;
        wire::check_version("session message", p.version, MESSAGE_VERSION)?;
        match p.body {
            Some(proto::session_message::Body::Prekey(m)) => {
                PrekeyMessage::from_proto(m).map(|m| Self::Prekey(Box::new(m)))
            }
            Some(proto::session_message::Body::Ratchet(m)) => RatchetMessage::from_proto(m).map(Self::Ratchet),
            None => Err(Error::Malformed { what: "session message body" }),
        }
    }
}
