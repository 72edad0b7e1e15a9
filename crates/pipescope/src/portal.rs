//! The web portal's files (built from web/ by vite), embedded in the binary and served at `/`.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "$OUT_DIR/portal"]
struct Assets;

/// Serves an embedded file, `/` being index.html. The portal routes with `#/...`, so any other
/// path that is not a file is a plain 404 (and an unknown `/api/...` path stays an error).
pub async fn serve(uri: Uri) -> Response {
    let name = match uri.path().trim_start_matches('/') {
        "" => "index.html",
        path => path,
    };
    let Some(file) = Assets::get(name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no such page: {}", uri.path()),
        )
            .into_response();
    };
    // vite puts a content hash in asset names: those can be cached for good, index.html not.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, file.metadata.mimetype().to_string()),
            (header::CACHE_CONTROL, cache.to_string()),
        ],
        file.data,
    )
        .into_response()
}
