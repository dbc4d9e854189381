//! The demo web chat: the relay serves the static files of `wasm/web` (built by `scripts/web.sh`:
//! HTML, JavaScript and the hush-wasm module) at `/`, so opening the relay's URL in two browsers is
//! enough to chat. Off with `--no-web`; elsewhere with `--web-dir`.
//!
//! Only GET and HEAD of plain file names under the directory are answered: no directory listing, no
//! `..`, no hidden files. Everything else the relay routes (`/v1/…`, `/healthz`, `/metrics`) comes
//! first; this is the fallback.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::Config;

/// Where `cargo run -p hush-relay` finds the demo: `wasm/web` of this source tree.
const SOURCE_WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm/web");

/// The page's policy: scripts and the wasm module from this origin only, sockets to any relay.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws: wss:; \
                   img-src 'self' data: blob:; style-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The directory to serve, if the demo is on and built: `--web-dir`, or else `wasm/web` of the
/// source tree the relay was built from, when it holds an `index.html`.
pub fn web_dir(config: &Config) -> Option<PathBuf> {
    if config.no_web {
        return None;
    }
    let dir = match &config.web_dir {
        Some(dir) => dir.clone(),
        None => PathBuf::from(SOURCE_WEB_DIR),
    };
    dir.join("index.html").is_file().then_some(dir)
}

/// Logs where the demo is (or why it is not complete) at startup.
pub fn announce(config: &Config, addr: SocketAddr) {
    let Some(dir) = web_dir(config) else { return };
    if dir.join("pkg/web/hush_wasm_bg.wasm").is_file() {
        tracing::info!(dir = %dir.display(), "demo web chat: open http://{addr}/ in two browsers");
    } else {
        tracing::warn!(dir = %dir.display(), "demo web chat not built: run ./scripts/web.sh build (or ./scripts/run.sh)");
    }
}

/// A router answering every request with a file of `dir` (use it as the fallback).
pub fn router(dir: PathBuf) -> Router {
    let dir = Arc::new(dir);
    Router::new().fallback(move |method: Method, uri: Uri| {
        let dir = dir.clone();
        async move { serve(&dir, &method, &uri).await }
    })
}

async fn serve(dir: &Path, method: &Method, uri: &Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some(relative) = file_path(uri.path()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = dir.join(relative);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut response = if method == Method::HEAD { Body::empty() } else { Body::from(bytes) }.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The file a URL path names, relative to the directory: `/` and `/dir/` mean `index.html`; every
/// segment must be a plain name (letters, digits, `-`, `_`, `.`; not starting with a dot).
fn file_path(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let trimmed = path.strip_prefix('/')?;
    let mut segments: Vec<&str> = trimmed.split('/').collect();
    if segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
        segments.push("index.html");
    }
    for s in segments {
        let plain = !s.is_empty()
            && !s.starts_with('.')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return None;
        }
        out.push(s);
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_served() {
        assert_eq!(file_path("/"), Some(PathBuf::from("index.html")));
        assert_eq!(file_path("/app.js"), Some(PathBuf::from("app.js")));
        assert_eq!(file_path("/pkg/web/hush_wasm_bg.wasm"), Some(PathBuf::from("pkg/web/hush_wasm_bg.wasm")));
        assert_eq!(file_path("/pkg/"), Some(PathBuf::from("pkg/index.html")));
        for bad in ["/../etc/passwd", "/a/../b", "/.git/config", "//x", "/a%2f..", "relative", "/a\\b", "/a//b"] {
            assert_eq!(file_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn wasm_is_served_as_wasm() {
        assert_eq!(content_type(Path::new("x/hush_wasm_bg.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("index.html")), "text/html; charset=utf-8");
        assert_eq!(content_type(Path::new("secret")), "application/octet-stream");
    }

    #[tokio::test]
    async fn serves_files_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>hush</h1>").unwrap();
        let get = |p: &'static str| {
            let d = dir.path().to_owned();
            async move { serve(&d, &Method::GET, &Uri::from_static(p)).await }
        };
        let ok = get("/").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(get("/missing.js").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/../index.html").await.status(), StatusCode::NOT_FOUND);
        let post = serve(dir.path(), &Method::POST, &Uri::from_static("/")).await;
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
