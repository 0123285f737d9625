//! Embeds the web UI's built assets (`web/dist/`, committed) into the binary.
//!
//! Every file under `web/dist` becomes an entry of a static table in `$OUT_DIR/ui_assets.rs`.
//! Text assets (HTML, JS, CSS, SVG, JSON, maps) are gzipped here, once, at the best level, and
//! only the compressed bytes are embedded: the server hands them to clients that accept gzip
//! (all browsers) and inflates them for the rare client that does not. `index.html` is kept
//! plain because the server rewrites its base URL at start.
//!
//! With no `web/dist` (a checkout that deleted it), the table is empty and the server says so
//! on the UI's pages; nothing else changes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("../../web/dist");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed={}", dist.display());

    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &dist, &mut files);
    } else {
        println!(
            "cargo:warning=web/dist is missing: the binary will serve no UI (run `npm ci && npm run build` in web/)"
        );
    }
    files.sort();

    let blobs = out.join("ui");
    std::fs::create_dir_all(&blobs).expect("create OUT_DIR/ui");
    let mut table = String::from("pub(crate) static ASSETS: &[Asset] = &[\n");
    for (i, rel) in files.iter().enumerate() {
        let src = dist.join(rel);
        println!("cargo:rerun-if-changed={}", src.display());
        let body = std::fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
        let gzip = rel != "index.html" && compressible(rel);
        let blob = blobs.join(format!("{i}.bin"));
        let bytes = if gzip { deflate(&body) } else { body };
        std::fs::write(&blob, bytes).expect("write embedded asset");
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, gzip: {gzip}, body: include_bytes!({:?}) }},",
            blob.display().to_string()
        )
        .expect("write to string");
    }
    table.push_str("];\n");
    std::fs::write(out.join("ui_assets.rs"), table).expect("write ui_assets.rs");
}

/// Every file under `dir`, as a `/`-separated path relative to `root`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let parts: Vec<_> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push(parts.join("/"));
        }
    }
}

fn compressible(path: &str) -> bool {
    matches!(
        path.rsplit('.').next(),
        Some("html" | "js" | "mjs" | "css" | "svg" | "json" | "map" | "txt" | "webmanifest")
    )
}

fn deflate(body: &[u8]) -> Vec<u8> {
    // mtime 0 and no file name, so the same input always gives the same bytes.
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(body).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}
