//! [`hush_core::Error`] as a typed JS error.

use wasm_bindgen::prelude::*;

/// The error every hush-wasm export throws. `code` names the failure and is stable across releases
/// (the [`hush_core::Error`] variant name, e.g. `"Malformed"`, `"WrongStoreKey"`); `message` is for
/// people. Its prototype chain includes `Error.prototype`, so `e instanceof Error` holds too.
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HushError {
    code: &'static str,
    message: String,
}

#[wasm_bindgen]
impl HushError {
    /// The stable error code, e.g. `"Malformed"`.
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.code.to_owned()
    }

    /// A human-readable description.
    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.message.clone()
    }

    /// Always `"HushError"`, as `Error.prototype.name` would be for a subclass.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        "HushError".to_owned()
    }

    /// `HushError [code]: message`.
    #[wasm_bindgen(js_name = toString)]
    pub fn to_js_string(&self) -> String {
        format!("HushError [{}]: {}", self.code, self.message)
    }
}

impl HushError {
    /// An error with an explicit code, for failures the bindings detect themselves.
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl From<hush_core::Error> for HushError {
    fn from(err: hush_core::Error) -> Self {
        Self { code: code(&err), message: err.to_string() }
    }
}

/// The stable code of each [`hush_core::Error`] variant: its name.
pub(crate) fn code(err: &hush_core::Error) -> &'static str {
    use hush_core::Error as E;
    match err {
        E::Malformed { .. } => "Malformed",
        E::TooLarge { .. } => "TooLarge",
        E::UnsupportedVersion { .. } => "UnsupportedVersion",
        E::BadSignature { .. } => "BadSignature",
        E::NonContributoryKey => "NonContributoryKey",
        E::InvalidKem { .. } => "InvalidKem",
        E::PostQuantumRequired => "PostQuantumRequired",
        E::ClassicalRefused => "ClassicalRefused",
        E::UnknownPrekey { .. } => "UnknownPrekey",
        E::PeerMismatch => "PeerMismatch",
        E::SenderMismatch => "SenderMismatch",
        E::NoSession => "NoSession",
        E::DecryptionFailed => "DecryptionFailed",
        E::DuplicateMessage => "DuplicateMessage",
        E::TooFarAhead { .. } => "TooFarAhead",
        E::DeviceListRollback { .. } => "DeviceListRollback",
        E::UserKeyChanged => "UserKeyChanged",
        E::DuplicateDevice => "DuplicateDevice",
        E::UnknownDevice => "UnknownDevice",
        E::AttachmentTooLarge { .. } => "AttachmentTooLarge",
        E::AttachmentDigestMismatch => "AttachmentDigestMismatch",
        E::Io(_) => "Io",
        E::NotGroupMember => "NotGroupMember",
        E::GroupChangeRejected(_) => "GroupChangeRejected",
        E::UnknownSenderChain => "UnknownSenderChain",
        E::IdentityChangePending => "IdentityChangePending",
        E::NotLinked => "NotLinked",
        E::AlreadyLinked => "AlreadyLinked",
        E::WrongStoreKey => "WrongStoreKey",
        E::StoreCorrupt { .. } => "StoreCorrupt",
        E::StoreExists => "StoreExists",
        E::Database(_) => "Database",
        E::Internal(_) => "Internal",
        // `hush_core::Error` is non-exhaustive: a variant added later reads as "Unknown" until it
        // gets its own code here.
        _ => "Unknown",
    }
}

/// Makes `HushError.prototype` inherit from `Error.prototype` (`instanceof Error`, and tools that
/// treat errors specially), once, when the module starts.
#[wasm_bindgen(start)]
fn start() {
    let sample: JsValue = HushError::new("Internal", "").into();
    let proto = js_sys::Object::get_prototype_of(&sample);
    let error_proto = js_sys::Object::get_prototype_of(&js_sys::Error::new(""));
    js_sys::Object::set_prototype_of(&proto, &error_proto);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_the_variant() {
        let e = HushError::from(hush_core::Error::Malformed { what: "user key" });
        assert_eq!((e.code(), e.message()), ("Malformed".to_owned(), "malformed user key".to_owned()));
        assert_eq!(e.to_js_string(), "HushError [Malformed]: malformed user key");
        assert_eq!(code(&hush_core::Error::WrongStoreKey), "WrongStoreKey");
        assert_eq!(code(&hush_core::Error::Database("x".into())), "Database");
    }
}
