//! Frames of relay.proto on the relay's side: decoding with hush-core's rules (size cap, canonical
//! encoding), the version check, and the names used as metric labels.

use hush_core::wire::relay::{ClientFrame, ErrorCode, ServerFrame, client_frame, server_frame};
use prost::Message;

use crate::error::RequestError;
use crate::limits::PROTOCOL_VERSION;

/// Decodes a client frame: at most `max` bytes, canonical protobuf, this protocol's version, a body.
/// On error, the request id (0 when the frame did not decode) to answer with.
pub fn decode_client(bytes: &[u8], max: usize) -> Result<(u64, client_frame::Body), (u64, RequestError)> {
    let frame: ClientFrame =
        hush_core::wire::decode_canonical(bytes, max, "client frame").map_err(|e| (0, e.into()))?;
    if frame.version != PROTOCOL_VERSION {
        return Err((frame.request_id, RequestError::UnsupportedVersion(frame.version)));
    }
    match frame.body {
        Some(body) => Ok((frame.request_id, body)),
        None => Err((frame.request_id, RequestError::Malformed("client frame (no body)"))),
    }
}

/// A server frame.
pub fn server(request_id: u64, body: server_frame::Body) -> ServerFrame {
    ServerFrame { version: PROTOCOL_VERSION, request_id, body: Some(body) }
}

/// An error frame for `error`.
pub fn error(request_id: u64, error: &RequestError) -> ServerFrame {
    let code: ErrorCode = error.code();
    server(
        request_id,
        server_frame::Body::Error(hush_core::wire::relay::Error {
            code: code.into(),
            detail: error.to_string(),
            retry_after_ms: error.retry_after_ms(),
        }),
    )
}

/// Encodes a server frame.
pub fn encode(frame: &ServerFrame) -> Vec<u8> {
    frame.encode_to_vec()
}

/// The metric label of a client frame's body.
pub fn client_type(body: &client_frame::Body) -> &'static str {
    use client_frame::Body as B;
    match body {
        B::Auth(_) => "auth",
        B::PublishDeviceList(_) => "publish_device_list",
        B::FetchDeviceList(_) => "fetch_device_list",
        B::PublishPrekeys(_) => "publish_prekeys",
        B::GetPrekeyCounts(_) => "get_prekey_counts",
        B::FetchBundle(_) => "fetch_bundle",
        B::Send(_) => "send",
        B::SealedSend(_) => "sealed_send",
        B::Ack(_) => "ack",
        B::SubscribePresence(_) => "subscribe_presence",
        B::SetDeliveryToken(_) => "set_delivery_token",
        B::RegisterPush(_) => "register_push",
        B::RequestUploadToken(_) => "request_upload_token",
        B::GroupLogAppend(_) => "group_log_append",
        B::GroupLogFetch(_) => "group_log_fetch",
    }
}

/// The metric label of a server frame's body.
pub fn server_type(frame: &ServerFrame) -> &'static str {
    use server_frame::Body as B;
    match &frame.body {
        None => "none",
        Some(B::Challenge(_)) => "challenge",
        Some(B::Ok(_)) => "ok",
        Some(B::Error(_)) => "error",
        Some(B::DeviceList(_)) => "device_list",
        Some(B::PrekeyCounts(_)) => "prekey_counts",
        Some(B::Bundle(_)) => "bundle",
        Some(B::SendResult(_)) => "send_result",
        Some(B::Envelope(_)) => "envelope",
        Some(B::Presence(_)) => "presence",
        Some(B::UploadToken(_)) => "upload_token",
        Some(B::GroupLog(_)) => "group_log",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_core::wire::relay::GetPrekeyCounts;

    #[test]
    fn decode_rules() {
        let good = ClientFrame {
            version: PROTOCOL_VERSION,
            request_id: 7,
            body: Some(client_frame::Body::GetPrekeyCounts(GetPrekeyCounts {})),
        }
        .encode_to_vec();
        assert!(matches!(decode_client(&good, 100), Ok((7, client_frame::Body::GetPrekeyCounts(_)))));
        assert!(matches!(decode_client(&good, 2), Err((0, RequestError::TooLarge { .. }))));
        let mut extra = good.clone();
        extra.extend_from_slice(&[0xf8, 0x07, 0x01]); // unknown field 127
        assert!(matches!(decode_client(&extra, 100), Err((0, RequestError::Malformed(_)))));
        for old_or_new in [PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1] {
            let other = ClientFrame { version: old_or_new, request_id: 9, body: None }.encode_to_vec();
            assert_eq!(decode_client(&other, 100).err(), Some((9, RequestError::UnsupportedVersion(old_or_new))));
        }
        let empty = ClientFrame { version: PROTOCOL_VERSION, request_id: 3, body: None }.encode_to_vec();
        assert!(matches!(decode_client(&empty, 100), Err((3, RequestError::Malformed(_)))));
        assert!(decode_client(&[0xff, 0xff, 0xff], 100).is_err());
    }
}
