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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sha256_hex(bytes: &[u8]) -> String {
        ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let entry = entry.unwrap();
            let path = dir.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                files_under(root, &path, out);
            } else {
                out.push(path.to_str().unwrap().to_owned());
            }
        }
    }

    /// web/dist is kept in the repository so that building the binary needs no Node.js. The
    /// digest of the sources it was built from is recorded beside it, computed as
    /// `scripts/build-web` computes it (`sha256sum` of each file, sorted by path, then the
    /// sha256 of those lines).
    #[test]
    fn the_built_portal_is_current_with_its_sources() {
        let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut files = vec![];
        files_under(&web, Path::new("src"), &mut files);
        files_under(&web, Path::new("scripts"), &mut files);
        files.extend(
            [
                "index.html",
                "openapi.json",
                "package.json",
                "package-lock.json",
                "tsconfig.json",
                "vite.config.ts",
            ]
            .map(String::from),
        );
        files.sort();
        let lines: String = files
            .iter()
            .map(|f| {
                format!(
                    "{}  {f}\n",
                    sha256_hex(&std::fs::read(web.join(f)).unwrap())
                )
            })
            .collect();
        let recorded = std::fs::read_to_string(web.join("dist/SOURCES.sha256"))
            .expect("web/dist/SOURCES.sha256: run scripts/build-web and commit web/dist");
        assert_eq!(
            recorded.trim(),
            sha256_hex(lines.as_bytes()),
            "web/dist is stale against web/src: run scripts/build-web and commit web/dist"
        );
    }
}
