//! Puts the built portal (web/dist) where the binary embeds it from. When the portal has not
//! been built (`scripts/build-web`), the binary gets a page that says so instead of failing to
//! compile, so the Rust side builds and tests without Node.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = manifest.join("../../web/dist");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("portal");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("create OUT_DIR/portal");
    if dist.join("index.html").is_file() {
        copy_dir(&dist, &out);
    } else {
        std::fs::write(
            out.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>pipescope</title>\
             <p>This pipescope binary was built without its portal. Run <code>scripts/build-web</code> \
             and build again. The JSON API under <code>/api/v1/</code> works regardless.</p>\n",
        )
        .expect("write the stand-in page");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read web/dist") {
        let entry = entry.expect("read web/dist entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create dir");
            println!("cargo:rerun-if-changed={}", entry.path().display());
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy portal file");
        }
    }
}
