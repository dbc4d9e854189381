//! [`hush_core::Error`] as a typed JS error.

use hush_core::ErrorKind;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_ERROR_CODES: &'static str = r#"
/** The `code` of a `HushError`: its kind, the same in every hush binding (see `errorCodes()`). */
export type HushErrorCode =
  | "bad_input" | "decryption" | "duplicate" | "identity" | "protocol"
  | "storage" | "wrong_key" | "network" | "not_found" | "internal";
"#;

/// The error every hush-wasm export throws. `code` is the kind of the failure, stable across
/// releases and the same in every hush binding ([`ErrorKind::code`]: `"bad_input"`,
/// `"wrong_key"`, …; the native bindings' exception classes `HushError.BadInput`, …); `message`
/// says exactly what happened, for people. Its prototype chain includes `Error.prototype`, so
/// `e instanceof Error` holds too.
#[wasm_bindgen]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HushError {
    code: &'static str,
    message: String,
}

#[wasm_bindgen]
impl HushError {
    /// The stable error code, e.g. `"bad_input"`: one of [`errorCodes()`](error_codes).
    #[wasm_bindgen(getter, unchecked_return_type = "HushErrorCode")]
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
    /// An error of this kind, for failures the bindings detect themselves.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { code: kind.code(), message: message.into() }
    }
}

impl From<hush_core::Error> for HushError {
    fn from(err: hush_core::Error) -> Self {
        Self::new(err.kind(), err.to_string())
    }
}

/// Every code a `HushError` can have, in hush-core's order ([`ErrorKind::ALL`]).
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "HushErrorCode[]")]
pub fn error_codes() -> Vec<String> {
    ErrorKind::ALL.iter().map(|k| k.code().to_owned()).collect()
}

/// Makes `HushError.prototype` inherit from `Error.prototype` (`instanceof Error`, and tools that
/// treat errors specially), once, when the module starts.
#[wasm_bindgen(start)]
fn start() {
    let sample: JsValue = HushError::new(ErrorKind::Internal, "").into();
    let proto = js_sys::Object::get_prototype_of(&sample);
    let error_proto = js_sys::Object::get_prototype_of(&js_sys::Error::new(""));
    js_sys::Object::set_prototype_of(&proto, &error_proto);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_the_kind() {
        let e = HushError::from(hush_core::Error::Malformed { what: "user key" });
        assert_eq!((e.code(), e.message()), ("bad_input".to_owned(), "malformed user key".to_owned()));
        assert_eq!(e.to_js_string(), "HushError [bad_input]: malformed user key");
        assert_eq!(HushError::from(hush_core::Error::WrongStoreKey).code(), "wrong_key");
        assert_eq!(HushError::from(hush_core::Error::Database("x".into())).code(), "storage");
        assert_eq!(error_codes().len(), ErrorKind::ALL.len());
    }
}
