//! The view layer: the plain records every binding shows, built here once.
//!
//! hush-ffi (Kotlin, Swift, Python) and hush-wasm (TypeScript) show the same messages, chat list,
//! contacts, safety numbers and events, with the same fields. They are built in this module from
//! the [`Client`]'s store types and [`Event`]s; the bindings only derive their foreign form (uniffi
//! records and enums in hush-ffi, `serde` objects in hush-wasm through this crate's `serde`
//! feature) and add no logic of their own. Every id is lowercase hex ([`hex_id`](super::hex_id)).
//!
//! The records are deliberately exhaustive (not `#[non_exhaustive]`): a binding that mirrors them
//! fails to compile when a field or an event is added here, instead of drifting.
//!
//! With the `serde` feature the records serialize as hush-wasm hands them to JavaScript: fields in
//! camelCase, an absent `Option` left out, events tagged by `type` (`{ "type": "message", … }`),
//! a [`MessageStatus`] as its lowercase name.

use crate::content::ContentBody;
use crate::crypto::SigningPublicKey;
use crate::error::Result;
use crate::group::GroupEvent;
use crate::limits::MAX_SEARCH_RESULTS;
use crate::safety_number::SafetyNumber;
use crate::store::{Contact, ContactState, ConversationId, HistoryCursor, MessageStatus, StoredMessage};

use super::hex_id::to_hex;
use super::{Client, Event};

/// An attachment a message points to (the bindings download it by the message's id).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct AttachmentView {
    /// MIME type.
    pub mime: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// File name, if the sender gave one.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub file_name: Option<String>,
}

/// One reaction on a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct ReactionView {
    /// Who reacted (user id).
    pub user: String,
    /// The emoji.
    pub emoji: String,
}

/// A message of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct MessageView {
    /// The conversation it is in.
    pub conversation: String,
    /// Its id.
    pub id: String,
    /// Who sent it (user id).
    pub sender: String,
    /// Sent by this user (from this device or another of theirs).
    pub outgoing: bool,
    /// The sender's timestamp (ms).
    pub sent_at_ms: u64,
    /// When this device got it (ms).
    pub received_at_ms: u64,
    /// The text, for a text message.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub text: Option<String>,
    /// The attachment, for an attachment message.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub attachment: Option<AttachmentView>,
    /// Sending, sent, delivered, read, failed or received.
    pub status: MessageStatus,
    /// Edited by its sender.
    pub edited: bool,
    /// Deleted for everyone (text and attachment are gone).
    pub deleted: bool,
    /// Reactions, in arrival order.
    pub reactions: Vec<ReactionView>,
    /// When it disappears (ms), if the conversation has a timer.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub expires_at_ms: Option<u64>,
}

/// A page of history, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct HistoryPageView {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// The cursor of the next (older) page; `None` at the start of the conversation.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub next: Option<String>,
}

/// A conversation of the chat list: the conversation joined with its contact's or group's name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct ConversationView {
    /// Its id.
    pub id: String,
    /// `true` for a group chat.
    pub is_group: bool,
    /// The peer's user id (1:1) or the group id.
    pub peer: String,
    /// The contact's or the group's name (empty if unknown).
    pub name: String,
    /// Last activity (ms).
    pub last_activity_ms: u64,
    /// Unread messages.
    pub unread: u32,
    /// Disappearing-message timer (s); 0 = off.
    pub disappearing_secs: u32,
}

/// A contact.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub struct ContactView {
    /// Their user id.
    pub user_id: String,
    /// Their name.
    pub name: String,
    /// "requested", "accepted" or "blocked".
    pub state: String,
    /// Whether the safety number was verified.
    pub verified: bool,
}

/// A safety number to compare or scan. (hush-wasm hands `qr` to JavaScript as a `Uint8Array`,
/// which `serde` cannot say; it builds the object from these two fields.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyNumberView {
    /// 60 digits, in groups of five.
    pub digits: String,
    /// The QR code's bytes.
    pub qr: Vec<u8>,
}

/// The state of the connection to the relay, as the transport reports it (hush-net natively; the
/// JavaScript wrapper of hush-wasm reports its own `connection` events).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(rename_all = "camelCase"))]
pub enum ConnectionView {
    /// Authenticated; messages flow.
    Connected,
    /// Lost; reconnecting.
    Disconnected,
    /// A connection attempt failed; the client tries again in `retry_in_ms`.
    Unreachable {
        /// Why (cannot connect, not a hush relay, …).
        reason: String,
        /// Milliseconds until the next attempt.
        retry_in_ms: u64,
    },
    /// The relay refused this device; the client stopped trying.
    Refused {
        /// What the relay said.
        detail: String,
    },
}

/// Something that happened, as the application sees it ([`event`] builds it from an [`Event`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")
)]
pub enum EventView {
    /// A new message.
    Message {
        /// It.
        message: MessageView,
    },
    /// A message from someone not (yet) a contact: accept or block them.
    MessageRequest {
        /// It.
        message: MessageView,
    },
    /// A message was edited.
    Edited {
        /// Where.
        conversation: String,
        /// Which.
        message_id: String,
    },
    /// A message was deleted for everyone.
    Deleted {
        /// Where.
        conversation: String,
        /// Which.
        message_id: String,
    },
    /// A reaction was added or withdrawn.
    Reaction {
        /// Where.
        conversation: String,
        /// On which message.
        message_id: String,
        /// Who.
        sender: String,
        /// The emoji.
        emoji: String,
        /// Withdrawn.
        removed: bool,
    },
    /// Delivery or read receipt.
    Receipt {
        /// Where.
        conversation: String,
        /// The messages.
        message_ids: Vec<String>,
        /// Who.
        sender: String,
        /// `true`: read; `false`: delivered.
        read: bool,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Where.
        conversation: String,
        /// Who.
        sender: String,
        /// Started or stopped.
        started: bool,
    },
    /// A contact's device went online or offline.
    Presence {
        /// The user, when known.
        #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
        user: Option<String>,
        /// Online or not.
        online: bool,
    },
    /// This user joined (or created) a group.
    GroupJoined {
        /// The group's conversation id.
        conversation: String,
        /// Its name.
        name: String,
    },
    /// A group changed: members added or removed, renamed, …
    GroupChanged {
        /// The group's conversation id.
        conversation: String,
        /// What changed, one line each ([`group_change`]: `added <user id>`, `renamed <name>`, …).
        changes: Vec<String>,
    },
    /// A contact's identity key changed: verify or accept before sending again.
    IdentityChanged {
        /// Who.
        user: String,
    },
    /// A conversation's disappearing timer changed.
    DisappearingTimer {
        /// Where.
        conversation: String,
        /// Seconds; 0 = off.
        seconds: u32,
    },
    /// An outgoing message changed status.
    MessageStatus {
        /// Where.
        conversation: String,
        /// Which.
        message_id: String,
        /// Now.
        status: MessageStatus,
    },
    /// A message could not be read (decrypted, authenticated or applied) and was dropped.
    Undecryptable {
        /// The sender, when known.
        #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
        sender: Option<String>,
        /// Why: the stable code of the error's kind (`"decryption"`, `"identity"`, `"bad_input"`, …).
        reason: String,
    },
    /// Disappearing messages were removed.
    Expired {
        /// How many.
        count: u64,
    },
    /// This device (made by `createForLink`) was approved: it now belongs to `user`.
    DeviceLinked {
        /// The user's id.
        user: String,
    },
    /// This device was removed from `user`'s devices by another of them: its store was wiped and
    /// nothing more is sent. Close the client and delete the store's files.
    DeviceRemoved {
        /// The user's id.
        user: String,
    },
    /// A conversation was read on another device of this user.
    ConversationRead {
        /// Which.
        conversation: String,
    },
    /// The connection changed. Reported by the transport, never by [`event`].
    Connection {
        /// Now.
        state: ConnectionView,
    },
}

/// The stable name of a status, as hush-wasm shows it: "sending", "sent", "delivered", "read",
/// "failed" or "received".
pub fn status_name(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Sending => "sending",
        MessageStatus::Sent => "sent",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Read => "read",
        MessageStatus::Failed => "failed",
        MessageStatus::Received => "received",
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MessageStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(status_name(*self))
    }
}

/// A user id: the hex user key.
pub fn user_id(user: &SigningPublicKey) -> String {
    to_hex(user.as_bytes())
}

/// A conversation id: the hex of [`ConversationId::to_bytes`].
pub fn conversation_id(conversation: &ConversationId) -> String {
    to_hex(&conversation.to_bytes())
}

/// A history cursor: the hex of [`HistoryCursor::to_bytes`].
pub fn cursor_id(cursor: &HistoryCursor) -> String {
    to_hex(&cursor.to_bytes())
}

/// Whose messages are outgoing for `client`: its user's. A device waiting to be linked has no user
/// and no messages; its device key (never a message's sender) stands in.
pub fn viewer(client: &Client) -> SigningPublicKey {
    client.user_key().unwrap_or_else(|_| client.device_key())
}

/// The view of a stored message; `me` is the [`viewer`] (whose messages are outgoing). A body that
/// does not decode shows as neither text nor attachment.
pub fn message(m: &StoredMessage, me: &SigningPublicKey) -> MessageView {
    let body = m.content().ok().flatten().map(|c| c.body);
    let (text, attachment) = match body {
        Some(ContentBody::Text(t)) => (Some(t), None),
        Some(ContentBody::Attachment(a)) => {
            (None, Some(AttachmentView { mime: a.mime, size: a.encryption.size, file_name: a.file_name }))
        }
        _ => (None, None),
    };
    MessageView {
        conversation: conversation_id(&m.conversation),
        id: to_hex(&m.id),
        sender: user_id(&m.sender),
        outgoing: m.sender == *me,
        sent_at_ms: m.sent_at_ms,
        received_at_ms: m.received_at_ms,
        text,
        attachment,
        status: m.status,
        edited: m.edited,
        deleted: m.deleted,
        reactions: m.reactions.iter().map(|(u, e)| ReactionView { user: user_id(u), emoji: e.clone() }).collect(),
        expires_at_ms: m.expires_at_ms,
    }
}

/// The view of a contact.
pub fn contact(c: Contact) -> ContactView {
    ContactView {
        user_id: user_id(&c.user_key),
        name: c.display_name,
        state: match c.state {
            ContactState::Requested => "requested",
            ContactState::Accepted => "accepted",
            ContactState::Blocked => "blocked",
        }
        .into(),
        verified: c.verified,
    }
}

/// The view of a safety number.
pub fn safety_number(n: &SafetyNumber) -> SafetyNumberView {
    SafetyNumberView { digits: n.display(), qr: n.qr_payload().to_vec() }
}

/// One line of a [`EventView::GroupChanged`]: `added <user id>`, `removed <user id>`,
/// `admin <user id>`, `renamed <name>` or `rejected <user id> <reason>`.
pub fn group_change(e: &GroupEvent) -> String {
    match e {
        GroupEvent::MemberAdded(u) => format!("added {}", user_id(u)),
        GroupEvent::MemberRemoved(u) => format!("removed {}", user_id(u)),
        GroupEvent::AdminAdded(u) => format!("admin {}", user_id(u)),
        GroupEvent::Renamed(name) => format!("renamed {name}"),
        GroupEvent::ChangeRejected { author, reason } => format!("rejected {} {reason:?}", user_id(author)),
    }
}

/// The view of an event; `me` is the [`viewer`]. `None` for [`Event::UploadToken`]: the answer
/// of a request the transport made, which it handles itself (hush-wasm hands it to its wrapper);
/// and for [`Event::GroupRequest`], which the bindings do not turn on yet.
pub fn event(e: Event, me: &SigningPublicKey) -> Option<EventView> {
    Some(match e {
        Event::Message(m) => EventView::Message { message: message(&m, me) },
        Event::MessageRequest(m) => EventView::MessageRequest { message: message(&m, me) },
        Event::Edited { conversation, id } => {
            EventView::Edited { conversation: conversation_id(&conversation), message_id: to_hex(&id) }
        }
        Event::Deleted { conversation, id } => {
            EventView::Deleted { conversation: conversation_id(&conversation), message_id: to_hex(&id) }
        }
        Event::Reaction { conversation, target, from, emoji, removed } => EventView::Reaction {
            conversation: conversation_id(&conversation),
            message_id: to_hex(&target),
            sender: user_id(&from),
            emoji,
            removed,
        },
        Event::Receipt { conversation, kind, targets, from } => EventView::Receipt {
            conversation: conversation_id(&conversation),
            message_ids: targets.iter().map(|t| to_hex(t)).collect(),
            sender: user_id(&from),
            read: kind == crate::content::ReceiptKind::Read,
        },
        Event::Typing { conversation, from, started } => {
            EventView::Typing { conversation: conversation_id(&conversation), sender: user_id(&from), started }
        }
        Event::Presence { user, online, .. } => EventView::Presence { user: user.as_ref().map(user_id), online },
        Event::GroupJoined { group, name } => {
            EventView::GroupJoined { conversation: conversation_id(&ConversationId::Group(group)), name }
        }
        Event::GroupChanged { group, events } => EventView::GroupChanged {
            conversation: conversation_id(&ConversationId::Group(group)),
            changes: events.iter().map(group_change).collect(),
        },
        Event::IdentityChanged { user } => EventView::IdentityChanged { user: user_id(&user) },
        Event::DisappearingTimer { conversation, seconds, .. } => {
            EventView::DisappearingTimer { conversation: conversation_id(&conversation), seconds }
        }
        Event::MessageStatus { conversation, id, status } => {
            EventView::MessageStatus { conversation: conversation_id(&conversation), message_id: to_hex(&id), status }
        }
        Event::Undecryptable { from, reason } => {
            EventView::Undecryptable { sender: from.as_ref().map(user_id), reason: reason.code().to_owned() }
        }
        Event::UploadToken { .. } => return None,
        // Only with `ClientConfig::group_requests`, which the bindings leave off until they show
        // group requests.
        Event::GroupRequest { .. } => return None,
        Event::Expired { count } => EventView::Expired { count: count as u64 },
        Event::DeviceLinked { user } => EventView::DeviceLinked { user: user_id(&user) },
        Event::DeviceRemoved { user } => EventView::DeviceRemoved { user: user_id(&user) },
        Event::ConversationRead { conversation } => {
            EventView::ConversationRead { conversation: conversation_id(&conversation) }
        }
    })
}

/// The views of the client's store, as the bindings show them.
impl Client {
    /// The chat list, most recent first: each conversation with its contact's or group's name.
    pub fn conversation_views(&mut self) -> Result<Vec<ConversationView>> {
        let contacts = self.contacts()?;
        let mut out = Vec::new();
        for conv in self.conversations()? {
            let (is_group, peer, name) = match &conv.id {
                ConversationId::Direct(u) => {
                    let name = contacts.iter().find(|k| k.user_key == *u).map(|k| k.display_name.clone());
                    (false, user_id(u), name.unwrap_or_default())
                }
                ConversationId::Group(g) => {
                    let name = self.group(g)?.map(|g| g.roster().name.clone());
                    (true, to_hex(&g.to_bytes()), name.unwrap_or_default())
                }
            };
            out.push(ConversationView {
                id: conversation_id(&conv.id),
                is_group,
                peer,
                name,
                last_activity_ms: conv.last_activity_ms,
                unread: conv.unread,
                disappearing_secs: conv.disappearing_secs,
            });
        }
        Ok(out)
    }

    /// Every contact.
    pub fn contact_views(&mut self) -> Result<Vec<ContactView>> {
        Ok(self.contacts()?.into_iter().map(contact).collect())
    }

    /// A page of history, newest first, older than `before` ([`Client::history`]).
    pub fn history_view(
        &mut self,
        conversation: &ConversationId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<HistoryPageView> {
        let (page, next) = self.history(conversation, before, limit)?;
        let me = viewer(self);
        Ok(HistoryPageView {
            messages: page.iter().map(|m| message(m, &me)).collect(),
            next: next.as_ref().map(cursor_id),
        })
    }

    /// One message, if there is one.
    pub fn message_view(
        &mut self,
        conversation: &ConversationId,
        id: &crate::content::MessageId,
    ) -> Result<Option<MessageView>> {
        let m = self.message(conversation, id)?;
        let me = viewer(self);
        Ok(m.map(|m| message(&m, &me)))
    }

    /// Messages containing every word of `query` ([`Client::search`]), at most
    /// [`MAX_SEARCH_RESULTS`].
    pub fn search_view(&mut self, query: &str) -> Result<Vec<MessageView>> {
        let found = self.search(query, MAX_SEARCH_RESULTS)?;
        let me = viewer(self);
        Ok(found.iter().map(|m| message(m, &me)).collect())
    }

    /// The safety number with a contact ([`Client::safety_number`]).
    pub fn safety_number_view(&mut self, user: &SigningPublicKey) -> Result<SafetyNumberView> {
        Ok(safety_number(&self.safety_number(user)?))
    }

    /// The views of `events` (the ones [`event`] shows), seen by this client's [`viewer`].
    pub fn event_views(&self, events: Vec<Event>) -> Vec<EventView> {
        let me = viewer(self);
        events.into_iter().filter_map(|e| event(e, &me)).collect()
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::super::test_relay::TestRelay;
    use super::*;
    use crate::ClientConfig;
    use crate::store::{Store, Unlock};

    const T0: u64 = 1_700_000_000_000;

    fn client(name: &str) -> Client {
        let store = Store::open_in_memory(Unlock::Key(Zeroizing::new([7; 32]))).unwrap();
        Client::create(store, ClientConfig::new("ws://relay.test/v1/ws", name), T0).unwrap()
    }

    /// Alice and Bob, connected, each the other's accepted contact.
    fn pair() -> (TestRelay, Client, Client) {
        let mut relay = TestRelay::default();
        let (mut alice, mut bob) = (client("Alice"), client("Bob"));
        relay.connect(&mut alice, T0);
        relay.connect(&mut bob, T0);
        relay.pump(&mut [&mut alice, &mut bob], T0);
        alice.add_contact(&bob.contact_link().unwrap(), T0).unwrap();
        bob.add_contact(&alice.contact_link().unwrap(), T0).unwrap();
        relay.pump(&mut [&mut alice, &mut bob], T0);
        (relay, alice, bob)
    }

    #[test]
    fn messages_show_who_sent_them_and_the_chat_list_joins_names() {
        let (mut relay, mut alice, mut bob) = pair();
        let (a, b) = (user_id(&alice.user_key().unwrap()), user_id(&bob.user_key().unwrap()));
        let to_bob = ConversationId::Direct(bob.user_key().unwrap());
        let id = alice.send_text(&to_bob, "hi bob", T0 + 1).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1);

        let seen = bob.event_views(events[1].clone());
        let message = seen
            .iter()
            .find_map(|e| match e {
                EventView::Message { message } => Some(message.clone()),
                _ => None,
            })
            .unwrap();
        let at_bob = conversation_id(&ConversationId::Direct(alice.user_key().unwrap()));
        assert_eq!(
            message,
            MessageView {
                conversation: at_bob.clone(),
                id: to_hex(&id),
                sender: a.clone(),
                outgoing: false,
                sent_at_ms: T0 + 1,
                received_at_ms: T0 + 1,
                text: Some("hi bob".into()),
                attachment: None,
                status: MessageStatus::Received,
                edited: false,
                deleted: false,
                reactions: vec![],
                expires_at_ms: None,
            }
        );
        assert!(alice.event_views(events[0].clone()).iter().any(|e| matches!(e,
            EventView::Receipt { sender, read: false, .. } if *sender == b)));

        let page = alice.history_view(&to_bob, None, 10).unwrap();
        assert_eq!(page.messages.len(), 1);
        assert!(page.messages[0].outgoing);
        assert_eq!(page.messages[0].sender, a);
        assert_eq!(page.next, None);
        assert_eq!(alice.message_view(&to_bob, &id).unwrap(), Some(page.messages[0].clone()));
        assert_eq!(alice.message_view(&to_bob, &[9; 16]).unwrap(), None);
        assert_eq!(bob.search_view("bob").unwrap(), [message]);

        let chats = bob.conversation_views().unwrap();
        assert_eq!(chats.len(), 1);
        assert_eq!(
            (chats[0].id.as_str(), chats[0].is_group, chats[0].peer.as_str(), chats[0].name.as_str()),
            (at_bob.as_str(), false, a.as_str(), "Alice")
        );
        assert_eq!(chats[0].unread, 1);
        assert_eq!(
            bob.contact_views().unwrap(),
            [ContactView { user_id: a.clone(), name: "Alice".into(), state: "accepted".into(), verified: false }]
        );
        let n = bob.safety_number_view(&alice.user_key().unwrap()).unwrap();
        assert_eq!(n, alice.safety_number_view(&bob.user_key().unwrap()).unwrap());
        assert_eq!(n.digits.len(), 60 + 11);
    }

    #[test]
    fn groups_show_their_name_and_changes() {
        let (mut relay, mut alice, mut bob) = pair();
        let group = alice.create_group("trip", &[bob.user_key().unwrap()], T0).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob], T0);
        let conversation = conversation_id(&ConversationId::Group(group));
        assert!(
            bob.event_views(events[1].clone())
                .contains(&EventView::GroupJoined { conversation: conversation.clone(), name: "trip".into() })
        );
        alice.rename_group(&group, "trip 2027", T0 + 1).unwrap();
        let events = relay.pump(&mut [&mut alice, &mut bob], T0 + 1);
        assert!(bob.event_views(events[1].clone()).contains(&EventView::GroupChanged {
            conversation: conversation.clone(),
            changes: vec!["renamed trip 2027".into()]
        }));
        let chats = bob.conversation_views().unwrap();
        let chat = chats.iter().find(|c| c.is_group).unwrap();
        assert_eq!(
            (chat.id.as_str(), chat.peer.as_str(), chat.name.as_str()),
            (conversation.as_str(), to_hex(&group.to_bytes()).as_str(), "trip 2027")
        );

        let someone = alice.user_key().unwrap();
        let lines: Vec<String> = [
            GroupEvent::MemberAdded(someone),
            GroupEvent::MemberRemoved(someone),
            GroupEvent::AdminAdded(someone),
            GroupEvent::ChangeRejected { author: someone, reason: crate::group::ChangeRejection::NotAdmin },
        ]
        .iter()
        .map(group_change)
        .collect();
        let u = user_id(&someone);
        assert_eq!(
            lines,
            [format!("added {u}"), format!("removed {u}"), format!("admin {u}"), format!("rejected {u} NotAdmin")]
        );
    }

    #[test]
    fn upload_tokens_are_the_transports_and_a_waiting_device_is_its_own_viewer() {
        let me = client("Alice");
        assert_eq!(me.event_views(vec![Event::UploadToken { request: 1, token: None }]), []);
        assert_eq!(viewer(&me), me.user_key().unwrap());
        let store = Store::open_in_memory(Unlock::Key(Zeroizing::new([7; 32]))).unwrap();
        let waiting = Client::create_for_link(store, ClientConfig::new("ws://relay.test/v1/ws", "x"), T0).unwrap();
        assert_eq!(viewer(&waiting), waiting.device_key());
        let names: Vec<&str> = [
            MessageStatus::Sending,
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Failed,
            MessageStatus::Received,
        ]
        .into_iter()
        .map(status_name)
        .collect();
        assert_eq!(names, ["sending", "sent", "delivered", "read", "failed", "received"]);
    }

    /// The JavaScript shape hush-wasm relies on.
    #[cfg(feature = "serde")]
    #[test]
    fn records_serialize_as_javascript_objects() {
        let message = MessageView {
            conversation: "c".into(),
            id: "i".into(),
            sender: "s".into(),
            outgoing: true,
            sent_at_ms: 1,
            received_at_ms: 2,
            text: Some("t".into()),
            attachment: Some(AttachmentView { mime: "m".into(), size: 3, file_name: None }),
            status: MessageStatus::Delivered,
            edited: false,
            deleted: false,
            reactions: vec![ReactionView { user: "u".into(), emoji: "e".into() }],
            expires_at_ms: None,
        };
        let json = serde_json::to_value(EventView::MessageRequest { message }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "type": "messageRequest", "message": {
                "conversation": "c", "id": "i", "sender": "s", "outgoing": true, "sentAtMs": 1, "receivedAtMs": 2,
                "text": "t", "attachment": { "mime": "m", "size": 3 }, "status": "delivered",
                "edited": false, "deleted": false, "reactions": [{ "user": "u", "emoji": "e" }] } })
        );
        let json = serde_json::to_value(EventView::Receipt {
            conversation: "c".into(),
            message_ids: vec!["i".into()],
            sender: "s".into(),
            read: true,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "type": "receipt", "conversation": "c", "messageIds": ["i"], "sender": "s", "read": true })
        );
        let json = serde_json::to_value(EventView::Presence { user: None, online: false }).unwrap();
        assert_eq!(json, serde_json::json!({ "type": "presence", "online": false }));
        let chat = ConversationView {
            id: "c".into(),
            is_group: true,
            peer: "p".into(),
            name: "n".into(),
            last_activity_ms: 4,
            unread: 5,
            disappearing_secs: 6,
        };
        assert_eq!(
            serde_json::to_value(chat).unwrap(),
            serde_json::json!({ "id": "c", "isGroup": true, "peer": "p", "name": "n", "lastActivityMs": 4, "unread": 5, "disappearingSecs": 6 })
        );
        let page = HistoryPageView { messages: vec![], next: Some("x".into()) };
        assert_eq!(serde_json::to_value(page).unwrap(), serde_json::json!({ "messages": [], "next": "x" }));
        let contact = ContactView { user_id: "u".into(), name: "n".into(), state: "blocked".into(), verified: true };
        assert_eq!(
            serde_json::to_value(contact).unwrap(),
            serde_json::json!({ "userId": "u", "name": "n", "state": "blocked", "verified": true })
        );
    }
}
