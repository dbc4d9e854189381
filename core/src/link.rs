//! Linking a new device to a user (docs/PROTOCOL.md §12).
//!
//! 1. The new device makes an [`Account`] and shows a [`LinkRequest`] as a QR code: its prekey
//!    bundle and a 16-byte link secret.
//! 2. The primary device (the one holding the user key) scans it, signs a device list naming the
//!    new device (version + 1), opens a PQXDH session from the bundle and sends, through it, the
//!    link secret, the new list and the recent-contacts state ([`approve`]). It publishes the new
//!    list to the relay. The user key itself never leaves the primary.
//! 3. The new device decrypts and checks it ([`complete`]): the link secret must match (so only a
//!    device that saw the QR code can link it), and the list must name it and the approver. The
//!    list's signer is the user the new device joins.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::account::Account;
use crate::crypto::SigningPublicKey;
use crate::crypto::keys::random_array;
use crate::device_list::SignedDeviceList;
use crate::error::{Error, Result};
use crate::identity::{DeviceIdentity, UserIdentity};
use crate::limits::{MAX_LINK_APPROVAL_BYTES, MAX_LINK_REQUEST_BYTES};
use crate::pqxdh::SessionConfig;
use crate::prekeys::PrekeyBundle;
use crate::session::SessionRecord;
use crate::wire;

/// Generated from `core/proto/link.proto`. `LinkApproval` carries the link secret and contacts: it
/// zeroizes on drop and its `Debug` is redacted.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/hush.link.rs"));

    crate::wire::redacted_debug!("link": LinkApproval, LinkRequest);
}

const VERSION: u32 = 1;

/// The approval's version: 2 since the user key stays on the primary (version 1 carried it).
const APPROVAL_VERSION: u32 = 2;

/// The URI scheme and path of a link request: `hush://link/<base64url of the request's bytes>`.
pub const LINK_URI_PREFIX: &str = "hush://link/";

/// The longest link URI accepted: the prefix and base64url (no padding) of the largest request.
pub const MAX_LINK_URI_CHARS: usize = LINK_URI_PREFIX.len() + MAX_LINK_REQUEST_BYTES.div_ceil(3) * 4;

/// What a new device shows to be linked. `Debug` shows the bundle, never the link secret, which
/// is wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkRequest {
    /// The new device's bundle (verified).
    pub bundle: PrekeyBundle,
    link_secret: [u8; 16],
}

impl core::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkRequest").field("bundle", &self.bundle).field("link_secret", &"[redacted]").finish()
    }
}

impl Drop for LinkRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.link_secret);
    }
}

impl LinkRequest {
    /// A request for `account`'s device, with a fresh link secret. Keep it until the link completes.
    pub fn new(rng: &mut impl CryptoRngCore, account: &Account) -> Result<Self> {
        Ok(Self { bundle: account.prekey_bundle(None, None)?, link_secret: random_array(rng) })
    }

    /// The bytes to show as a QR code.
    pub fn to_bytes(&self) -> Vec<u8> {
        proto::LinkRequest {
            version: VERSION,
            prekey_bundle: self.bundle.to_bytes(),
            link_secret: self.link_secret.to_vec(),
        }
        .encode_to_vec()
    }

    /// Parses a scanned request and verifies its bundle.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let p: proto::LinkRequest = wire::decode(bytes, MAX_LINK_REQUEST_BYTES, "link request")?;
        wire::check_version("link request", p.version, VERSION)?;
        Ok(Self {
            bundle: PrekeyBundle::from_bytes(&p.prekey_bundle)?,
            link_secret: p.link_secret.as_slice().try_into().map_err(|_| Error::Malformed { what: "link secret" })?,
        })
    }

    /// The `hush://link/…` URI (the same bytes as [`to_bytes`](Self::to_bytes), for a QR code or
    /// for pasting). It carries the link secret: show it only to the user.
    pub fn to_uri(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{LINK_URI_PREFIX}{}", URL_SAFE_NO_PAD.encode(Zeroizing::new(self.to_bytes()))))
    }

    /// Parses a `hush://link/…` URI: the prefix, at most [`MAX_LINK_URI_CHARS`], base64url without
    /// padding, then [`from_bytes`](Self::from_bytes) (versioned, size-limited, bundle verified).
    pub fn from_uri(uri: &str) -> Result<Self> {
        let uri = uri.trim();
        if uri.len() > MAX_LINK_URI_CHARS {
            return Err(Error::TooLarge { what: "link URI", size: uri.len(), max: MAX_LINK_URI_CHARS });
        }
        let encoded = uri.strip_prefix(LINK_URI_PREFIX).ok_or(Error::Malformed { what: "link URI" })?;
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(encoded).map_err(|_| Error::Malformed { what: "link URI" })?);
        Self::from_bytes(&bytes)
    }
}

/// What the approving device sends and keeps.
#[derive(Debug)]
pub struct LinkApprovalOutput {
    /// The new device list: publish it to the relay and pin it.
    pub device_list: SignedDeviceList,
    /// The session with the new device.
    pub session: SessionRecord,
    /// The encrypted approval, for the new device.
    pub message: Vec<u8>,
}

/// Approves a scanned link request on an existing device of `user`.
pub fn approve(
    rng: &mut impl CryptoRngCore,
    user: &UserIdentity,
    this_device: &DeviceIdentity,
    current: &SignedDeviceList,
    request: &LinkRequest,
    contacts: &[u8],
    now: u64,
) -> Result<LinkApprovalOutput> {
    if current.user_key() != user.user_key() {
        return Err(Error::UserKeyChanged);
    }
    if current.device(&request.bundle.device.device_key()).is_ok() {
        return Err(Error::DuplicateDevice);
    }
    let mut devices = current.devices().to_vec();
    devices.push(request.bundle.device);
    let version = current.list_version().checked_add(1).ok_or(Error::Malformed { what: "device list version" })?;
    let device_list = SignedDeviceList::sign(user, version, &devices, now)?;
    let approval = proto::LinkApproval {
        version: APPROVAL_VERSION,
        link_secret: request.link_secret.to_vec(),
        device_list: device_list.to_bytes(),
        contacts: contacts.to_vec(),
    };
    let plaintext = Zeroizing::new(approval.encode_to_vec());
    let mut session = SessionRecord::new();
    session.initiate(rng, this_device, &request.bundle, SessionConfig::default())?;
    let message = session.encrypt(rng, &plaintext)?;
    Ok(LinkApprovalOutput { device_list, session, message })
}

/// What the new device learns when the link completes.
#[derive(Debug)]
pub struct LinkedDevice {
    /// The user this device now belongs to: the signer of the list. Its secret stays on the
    /// primary device.
    pub user_key: SigningPublicKey,
    /// The device list naming this device.
    pub device_list: SignedDeviceList,
    /// The recent-contacts state passed along.
    pub contacts: Vec<u8>,
    /// The session with the approving device.
    pub session: SessionRecord,
}

/// Completes the link on the new device. On error nothing changed (the account included).
pub fn complete(
    rng: &mut impl CryptoRngCore,
    account: &mut Account,
    request: &LinkRequest,
    message: &[u8],
) -> Result<LinkedDevice> {
    let mut trial = account.clone();
    let mut session = SessionRecord::new();
    let plaintext = Zeroizing::new(session.decrypt(rng, &mut trial, message, SessionConfig::default())?);
    let approval: proto::LinkApproval = wire::decode(&plaintext, MAX_LINK_APPROVAL_BYTES, "link approval")?;
    wire::check_version("link approval", approval.version, APPROVAL_VERSION)?;
    if !bool::from(approval.link_secret.ct_eq(&request.link_secret)) {
        return Err(Error::Malformed { what: "link secret" });
    }
    let device_list = SignedDeviceList::from_bytes(&approval.device_list)?;
    if device_list.device(&account.device_keys().device_key())? != &account.device_keys() {
        return Err(Error::UnknownDevice);
    }
    // The approving device must itself be on the list it signed.
    let approver = session.peer().ok_or(Error::Internal("linked session has no peer"))?;
    device_list.device(&approver.device_key())?;
    *account = trial;
    Ok(LinkedDevice { user_key: device_list.user_key(), device_list, contacts: approval.contacts.clone(), session })
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn request() -> LinkRequest {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let account = Account::new(&mut rng);
        LinkRequest::new(&mut rng, &account).unwrap()
    }

    #[test]
    fn uris_round_trip_and_fit_the_limit() {
        let r = request();
        let uri = r.to_uri();
        assert!(uri.starts_with(LINK_URI_PREFIX) && uri.len() <= MAX_LINK_URI_CHARS);
        assert_eq!(LinkRequest::from_uri(&uri).unwrap(), r);
        assert_eq!(LinkRequest::from_uri(&format!("  {}\n", *uri)).unwrap(), r, "surrounding space is ignored");
    }

    #[test]
    fn bad_uris_are_typed_errors() {
        let uri = request().to_uri();
        let malformed = |u: &str| matches!(LinkRequest::from_uri(u), Err(Error::Malformed { .. }));
        assert!(malformed(""));
        assert!(malformed(&uri.replace("hush://link/", "hush://contact/")));
        assert!(malformed(&format!("{}=", *uri)), "padding");
        assert!(malformed(&format!("{}*", *uri)));
        assert!(LinkRequest::from_uri(&uri[..uri.len() - 8]).is_err(), "truncated");
        assert!(LinkRequest::from_uri("hush://link/").is_err(), "empty");
        let long = format!("{LINK_URI_PREFIX}{}", "A".repeat(MAX_LINK_URI_CHARS));
        assert!(matches!(LinkRequest::from_uri(&long), Err(Error::TooLarge { what: "link URI", .. })));
        let p = proto::LinkRequest { version: 9, prekey_bundle: request().bundle.to_bytes(), link_secret: vec![0; 16] };
        let v9 = format!("{LINK_URI_PREFIX}{}", URL_SAFE_NO_PAD.encode(p.encode_to_vec()));
        assert_eq!(LinkRequest::from_uri(&v9), Err(Error::UnsupportedVersion { what: "link request", version: 9 }));
    }

    #[test]
    fn debug_hides_the_link_secret() {
        let r = request();
        let text = format!("{r:?}");
        assert!(text.contains("[redacted]"));
        crate::test_util::assert_no_secret(&text, &r.link_secret);
    }
}
