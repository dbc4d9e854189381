//! Blobs over HTTP: `PUT /v1/blobs` with a one-use upload token streams the body to a file (the size
//! cap is enforced while streaming) and answers an unguessable id; `GET /v1/blobs/{id}` streams it
//! back to anyone holding the id. Blobs are ciphertext; the relay never parses them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rand_core::{OsRng, RngCore};
use tokio::io::AsyncWriteExt;

use crate::requests::upload_token_hash;
use crate::state::{RelayState, now_secs};

/// Temporary uploads live here until complete.
pub fn tmp_dir(blob_dir: &Path) -> PathBuf {
    blob_dir.join("tmp")
}

fn blob_path(blob_dir: &Path, id: &[u8; 32]) -> PathBuf {
    blob_dir.join(hex::encode(id))
}

fn status(state: &RelayState, code: StatusCode, result: &'static str) -> Response {
    state.metrics.blobs.get_or_create(&[("result", result)]).inc();
    (code, result).into_response()
}

fn bearer(request: &Request) -> Option<[u8; 32]> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    let bytes = hex::decode(token).ok()?;
    <[u8; 32]>::try_from(bytes).ok()
}

/// `PUT /v1/blobs`.
pub async fn put_blob(
    State(state): State<Arc<RelayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    if !state.ip_limits.check(&peer.ip()) {
        state.metrics.reject("rate_limited");
        return status(&state, StatusCode::TOO_MANY_REQUESTS, "rate limited");
    }
    let max = state.config.max_blob_bytes;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return status(&state, StatusCode::PAYLOAD_TOO_LARGE, "too large");
    }
    let Some(token) = bearer(&request) else { return status(&state, StatusCode::UNAUTHORIZED, "unauthorized") };
    match state.storage.take_upload_token(upload_token_hash(&token), now_secs()).await {
        Ok(true) => {}
        Ok(false) => return status(&state, StatusCode::UNAUTHORIZED, "unauthorized"),
        Err(e) => {
            tracing::error!(error = %e, "upload token lookup failed");
            return status(&state, StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    }
    let mut id = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    let tmp = tmp_dir(&state.blob_dir).join(hex::encode(id));
    let outcome = stream_to_file(request.into_body(), &tmp, max).await;
    let size = match outcome {
        Ok(size) => size,
        Err(code) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            let result = if code == StatusCode::PAYLOAD_TOO_LARGE { "too large" } else { "upload failed" };
            return status(&state, code, result);
        }
    };
    let path = blob_path(&state.blob_dir, &id);
    if let Err(e) = tokio::fs::rename(&tmp, &path).await {
        tracing::error!(error = %e, "moving an upload into place failed");
        let _ = tokio::fs::remove_file(&tmp).await;
        return status(&state, StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    if let Err(e) = state.storage.put_blob(id, size, now_secs()).await {
        tracing::error!(error = %e, "recording a blob failed");
        let _ = tokio::fs::remove_file(&path).await;
        return status(&state, StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    state.metrics.blobs.get_or_create(&[("result", "stored")]).inc();
    let body = format!("{{\"id\":\"{}\",\"size\":{size}}}", hex::encode(id));
    (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Streams `body` into a new file at `path`, refusing past `max` bytes without reading further.
async fn stream_to_file(body: Body, path: &Path, max: u64) -> Result<u64, StatusCode> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        size += chunk.len() as u64;
        if size > max {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        file.write_all(&chunk).await.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    }
    // The id is handed out only once the bytes are on disk.
    file.sync_all().await.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(size)
}

/// `GET /v1/blobs/{id}`.
pub async fn get_blob(
    State(state): State<Arc<RelayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if !state.ip_limits.check(&peer.ip()) {
        state.metrics.reject("rate_limited");
        return status(&state, StatusCode::TOO_MANY_REQUESTS, "rate limited");
    }
    let Some(id) = hex::decode(&id).ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) else {
        return status(&state, StatusCode::NOT_FOUND, "not found");
    };
    let not_before = now_secs().saturating_sub(state.config.blob_ttl.as_secs());
    match state.storage.blob_exists(id, not_before).await {
        Ok(true) => {}
        Ok(false) => return status(&state, StatusCode::NOT_FOUND, "not found"),
        Err(e) => {
            tracing::error!(error = %e, "blob lookup failed");
            return status(&state, StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    }
    let Ok(file) = tokio::fs::File::open(blob_path(&state.blob_dir, &id)).await else {
        return status(&state, StatusCode::NOT_FOUND, "not found");
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    state.metrics.blobs.get_or_create(&[("result", "served")]).inc();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CONTENT_LENGTH, len.to_string())],
        body,
    )
        .into_response()
}

/// Deletes the files of expired blobs and uploads abandoned for over an hour.
pub async fn remove_files(blob_dir: &Path, expired: &[[u8; 32]]) {
    for id in expired {
        let _ = tokio::fs::remove_file(blob_path(blob_dir, id)).await;
    }
    let Ok(mut entries) = tokio::fs::read_dir(tmp_dir(blob_dir)).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let stale = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if stale {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}
