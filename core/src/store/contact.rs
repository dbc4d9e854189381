//! Contacts (docs/PROTOCOL.md §13): who the user talks to, where to reach
//! them, and how far they are trusted.

use zeroize::Zeroizing;

use super::cipher::Table;
use super::records::{self, ContactRecord};
use super::tx::StoreTx;
use crate::crypto::SigningPublicKey;
use crate::delivery_token::DeliveryToken;
use crate::error::Result;

/// Where a contact stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactState {
    /// They wrote first and the user has not accepted yet: their messages wait as a request.
    Requested,
    /// Accepted (or added by the user from their link).
    Accepted,
    /// Blocked: their messages are acked and dropped.
    Blocked,
}

impl ContactState {
    fn to_u32(self) -> u32 {
        match self {
            ContactState::Requested => 1,
            ContactState::Accepted => 2,
            ContactState::Blocked => 3,
        }
    }

    fn from_u32(n: u32) -> Result<Self> {
        match n {
            1 => Ok(ContactState::Requested),
            2 => Ok(ContactState::Accepted),
            3 => Ok(ContactState::Blocked),
            _ => Err(Table::Contacts.corrupt()),
        }
    }
}

/// A contact. `Debug` shows no byte of the delivery token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Their user key: the contact's identity.
    pub user_key: SigningPublicKey,
    /// The name the user sees (from the link's hint, or set by the user).
    pub display_name: String,
    /// Requested, accepted or blocked.
    pub state: ContactState,
    /// Whether the user verified the safety number.
    pub verified: bool,
    /// The relay their mailbox is on.
    pub relay_url: String,
    /// Their delivery token, which authorises sealed sends to them (from their link or profile).
    pub delivery_token: Option<DeliveryToken>,
}

impl Contact {
    fn to_record(&self) -> ContactRecord {
        ContactRecord {
            user_key: self.user_key.to_bytes().to_vec(),
            display_name: self.display_name.clone(),
            state: self.state.to_u32(),
            verified: self.verified,
            relay_url: self.relay_url.clone(),
            delivery_token: self.delivery_token.as_ref().map(|t| t.to_bytes().to_vec()),
        }
    }

    fn from_record(r: &ContactRecord) -> Result<Self> {
        let corrupt = |_| Table::Contacts.corrupt();
        Ok(Self {
            user_key: SigningPublicKey::from_slice(&r.user_key, "contact user key").map_err(corrupt)?,
            display_name: r.display_name.clone(),
            state: ContactState::from_u32(r.state)?,
            verified: r.verified,
            relay_url: r.relay_url.clone(),
            delivery_token: r.delivery_token.as_deref().map(DeliveryToken::from_bytes).transpose().map_err(corrupt)?,
        })
    }
}

impl StoreTx<'_> {
    /// The contact with this user key.
    pub fn contact(&self, user_key: &SigningPublicKey) -> Result<Option<Contact>> {
        let lookup = self.cipher.lookup(Table::Contacts, user_key.as_bytes())?;
        let Some(value) = self.get_value(Table::Contacts, &lookup)? else { return Ok(None) };
        let contact = Contact::from_record(&records::decode(Table::Contacts, &value)?)?;
        // The AD pins the value to its lookup, and the lookup is the user key's HMAC.
        if contact.user_key != *user_key {
            return Err(Table::Contacts.corrupt());
        }
        Ok(Some(contact))
    }

    /// Stores a contact under its user key, replacing any earlier one.
    pub fn put_contact(&self, contact: &Contact) -> Result<()> {
        let lookup = self.cipher.lookup(Table::Contacts, contact.user_key.as_bytes())?;
        let bytes = Zeroizing::new(prost::Message::encode_to_vec(&contact.to_record()));
        self.put_value(Table::Contacts, &lookup, &bytes)
    }

    /// Deletes a contact; whether there was one.
    pub fn delete_contact(&self, user_key: &SigningPublicKey) -> Result<bool> {
        let lookup = self.cipher.lookup(Table::Contacts, user_key.as_bytes())?;
        self.delete_value(Table::Contacts, &lookup)
    }

    /// Every contact, by display name.
    pub fn contacts(&self) -> Result<Vec<Contact>> {
        let mut contacts = self
            .all_values(Table::Contacts)?
            .iter()
            .map(|v| Contact::from_record(&records::decode(Table::Contacts, v)?))
            .collect::<Result<Vec<_>>>()?;
        contacts
            .sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.user_key.as_bytes().cmp(b.user_key.as_bytes())));
        Ok(contacts)
    }
}
