//! The SDK sources embedded in this binary, and vendoring them into a job project.
//!
//! The SDKs are not published (no registry is reachable from where mr is built), so a project
//! carries its own copy in `vendor/mr-sdk/`, referenced by a relative path the ordinary way for
//! its ecosystem: a Cargo path dependency (`vendor/mr-sdk/sdk/rust`), `pip install
//! ./vendor/mr-sdk`, an npm `file:vendor/mr-sdk` dependency. The project then builds wherever
//! it is moved, copied or cloned, with or without an mr checkout, and `mr-host sdk vendor`
//! replaces the copy with the SDK of the `mr-host` that runs it. `runtime/cli/embed_sdks.rs`
//! embeds the sources at build time.
//!
//! The Rust SDK's manifests inherit from the mr workspace (`version.workspace = true`,
//! `mr-codec.workspace = true`, `[lints] workspace = true`); the vendored copies are rewritten
//! into standalone manifests with the workspace's values, so they need no mr workspace around
//! them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::Lang;

mod files {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// Where a project's copy of the SDK lives, relative to the project.
pub const VENDOR_DIR: &str = "vendor/mr-sdk";
/// The file `vendor` writes into the copy: which SDK it is. Its presence also marks the
/// directory as one `mr-host` may replace.
const MARKER: &str = "VENDORED.md";
/// The Rust SDK crate inside the vendored tree (the tree mirrors the mr repository's layout).
pub const RUST_SDK_CRATE: &str = "vendor/mr-sdk/sdk/rust";

/// The mr workspace manifest, for the values the SDK crates inherit.
const WORKSPACE_MANIFEST: &str = include_str!("../../../../Cargo.toml");

/// The embedded files of `lang`'s SDK: (path in the vendored tree, contents).
fn files(lang: Lang) -> &'static [(&'static str, &'static [u8])] {
    match lang {
        Lang::Rust => files::RUST,
        Lang::Python => files::PYTHON,
        Lang::Js => files::JS,
    }
}

/// A short hash of `lang`'s embedded SDK (paths and contents): which SDK a copy is.
pub fn fingerprint(lang: Lang) -> String {
    let mut hash = Sha256::new();
    for (path, bytes) in files(lang) {
        hash.update((path.len() as u64).to_le_bytes());
        hash.update(path.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint recorded in a project's vendored SDK, if it has one.
pub fn vendored_fingerprint(project: &Path) -> Option<String> {
    let marker = std::fs::read_to_string(project.join(VENDOR_DIR).join(MARKER)).ok()?;
    marker
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .map(|f| f.trim().to_owned())
}

/// Writes (or replaces) the project's copy of `lang`'s SDK; returns its directory.
pub fn vendor(project: &Path, lang: Lang) -> Result<PathBuf> {
    let dest = project.join(VENDOR_DIR);
    if dest.exists() {
        if !dest.join(MARKER).is_file() {
            bail!(
                "{} exists but was not written by mr-host (it has no {MARKER}); move it away to vendor the SDK there",
                dest.display()
            );
        }
        std::fs::remove_dir_all(&dest)
            .with_context(|| format!("cannot remove the old copy {}", dest.display()))?;
    }
    for (path, bytes) in files(lang) {
        let target = dest.join(path);
        let parent = target.parent().expect("a file in the tree");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let contents = if lang == Lang::Rust && path.ends_with("Cargo.toml") {
            let crate_dir = Path::new(path).parent().expect("a crate directory");
            let text = std::str::from_utf8(bytes).context("a Cargo.toml that is not UTF-8")?;
            standalone_manifest(text, crate_dir, WORKSPACE_MANIFEST)?.into_bytes()
        } else {
            bytes.to_vec()
        };
        std::fs::write(&target, contents)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    let what = match lang {
        Lang::Rust => "Rust (the mr-sdk crate, its mr-codec and the WIT contract)",
        Lang::Python => "Python (the mr_sdk package)",
        Lang::Js => "JavaScript (the mr-sdk package)",
    };
    let marker = format!(
        "# The mr SDK for {what}\n\n\
         Copied into this project by `mr-host new` or `mr-host sdk vendor` (mr-host {}).\n\
         Keep it with the project: the project builds from this copy, wherever it is.\n\
         Do not edit it: `mr-host sdk vendor` replaces this directory with the SDK of the\n\
         `mr-host` that runs it.\n\n\
         fingerprint: {}\n",
        env!("CARGO_PKG_VERSION"),
        fingerprint(lang)
    );
    std::fs::write(dest.join(MARKER), marker)
        .with_context(|| format!("cannot write {}", dest.join(MARKER).display()))?;
    Ok(dest)
}

/// The JavaScript project lockfile that pins the SDK's dependency tree exactly as the SDK's own
/// `package-lock.json` does (npm ignores a linked package's lockfile, so without this a
/// project would resolve the SDK's transitive dependencies afresh). The SDK's development
/// dependencies are left out: a project does not install them.
pub fn js_project_lock(name: &str, version: &str) -> Result<String> {
    use serde_json::{Map, Value, json};
    let sdk_lock = files(Lang::Js)
        .iter()
        .find(|(path, _)| *path == "package-lock.json")
        .context("the JavaScript SDK has no package-lock.json")?
        .1;
    let sdk_lock: Value =
        serde_json::from_slice(sdk_lock).context("the SDK's package-lock.json")?;
    let packages = sdk_lock["packages"]
        .as_object()
        .context("the SDK's package-lock.json has no packages")?;
    let sdk = &packages[""];
    let mut out = Map::new();
    out.insert(
        String::new(),
        json!({"name": name, "version": version, "dependencies": {"mr-sdk": format!("file:{VENDOR_DIR}")}}),
    );
    out.insert(
        "node_modules/mr-sdk".into(),
        json!({"resolved": VENDOR_DIR, "link": true}),
    );
    let mut linked = Map::new();
    for key in [
        "name",
        "version",
        "license",
        "dependencies",
        "bin",
        "engines",
    ] {
        if let Some(v) = sdk.get(key) {
            linked.insert(key.into(), v.clone());
        }
    }
    out.insert(VENDOR_DIR.into(), Value::Object(linked));
    for (path, entry) in packages {
        if path.starts_with("node_modules/") && entry["dev"] != true {
            out.insert(path.clone(), entry.clone());
        }
    }
    let lock = json!({
        "name": name,
        "version": version,
        "lockfileVersion": 3,
        "requires": true,
        "packages": out,
    });
    Ok(serde_json::to_string_pretty(&lock)? + "\n")
}

/// `crate_dir`'s manifest (a path relative to the repository root) without workspace
/// inheritance: `KEY.workspace = true` takes the value of the workspace's `[workspace.package]`
/// or `[workspace.dependencies]` (a dependency's `path` made relative to the crate), and
/// `[lints] workspace = true` is dropped (lints are the mr workspace's own business).
fn standalone_manifest(manifest: &str, crate_dir: &Path, workspace: &str) -> Result<String> {
    let package = section_entries(workspace, "workspace.package");
    let dependencies = section_entries(workspace, "workspace.dependencies");
    let up = "../".repeat(crate_dir.components().count());
    let mut out = String::new();
    let mut section = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.trim_matches(['[', ']']).to_owned();
            if section == "lints" {
                continue;
            }
        } else if section == "lints" {
            // `workspace = true` is all the SDK crates put under [lints].
            if !(trimmed.is_empty() || trimmed == "workspace = true") {
                bail!(
                    "{}: unexpected [lints] entry {trimmed:?}",
                    crate_dir.display()
                );
            }
            continue;
        } else if let Some(key) = trimmed.strip_suffix(".workspace = true") {
            let value = if section == "package" {
                package
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            } else if section.ends_with("dependencies") {
                dependencies
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| relative_path(v, &up))
            } else {
                None
            };
            let Some(value) = value else {
                bail!(
                    "{}: no workspace value for {key} in [{section}]",
                    crate_dir.display()
                );
            };
            out.push_str(&format!("{key} = {value}\n"));
            continue;
        }
        if trimmed.contains("workspace") && !trimmed.starts_with('#') {
            bail!(
                "{}: cannot make {trimmed:?} standalone",
                crate_dir.display()
            );
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The `key = value` lines of `[name]` in a manifest.
fn section_entries(manifest: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == format!("[{name}]");
        } else if inside && let Some((k, v)) = trimmed.split_once(" = ") {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// A dependency spec with its `path = "..."` (relative to the workspace root) made relative to
/// a crate `up` levels below it.
fn relative_path(spec: &str, up: &str) -> String {
    match spec.split_once("path = \"") {
        Some((before, after)) => format!("{before}path = \"{up}{after}"),
        None => spec.to_owned(),
    }
}

/// `mr-host sdk vendor [DIR]`: replaces the project's copy of its SDK with this binary's.
pub fn vendor_command(dir: &Path) -> Result<()> {
    let lang = super::detect(dir)?;
    let before = vendored_fingerprint(dir);
    let dest = vendor(dir, lang)?;
    let now = fingerprint(lang);
    match before {
        Some(old) if old == now => eprintln!("{} is unchanged (fingerprint {now})", dest.display()),
        Some(old) => eprintln!("replaced {} (fingerprint {old} -> {now})", dest.display()),
        None => eprintln!("wrote {} (fingerprint {now})", dest.display()),
    }
    let hint = match lang {
        Lang::Rust => format!(
            "its Cargo.toml should depend on it: mr-sdk = {{ path = \"{RUST_SDK_CRATE}\" }}"
        ),
        Lang::Python => "the next `mr-host build` installs it into the project's .venv".to_owned(),
        Lang::Js => format!(
            "its package.json should depend on it (\"mr-sdk\": \"file:{VENDOR_DIR}\"); run `npm install` there"
        ),
    };
    eprintln!("{hint}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_embeds_its_sources_and_no_caches() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let paths: Vec<&str> = files(lang).iter().map(|(p, _)| *p).collect();
            let expected: &[&str] = match lang {
                Lang::Rust => &[
                    "wit/job.wit",
                    "wit/v0.2/job.wit",
                    "sdk/rust/Cargo.toml",
                    "sdk/rust/src/lib.rs",
                    "sdk/rust/mapper-world/src/lib.rs",
                    "sdk/codec/src/lib.rs",
                ],
                Lang::Python => &[
                    "pyproject.toml",
                    "src/mr_sdk/__init__.py",
                    "src/mr_sdk/wit/job.wit",
                ],
                Lang::Js => &[
                    "package.json",
                    "package-lock.json",
                    "src/index.js",
                    "wit/job.wit",
                ],
            };
            for e in expected {
                assert!(paths.contains(e), "{lang:?} lacks {e}: {paths:?}");
            }
            for p in &paths {
                assert!(
                    !p.contains("__pycache__")
                        && !p.contains("node_modules")
                        && !p.contains("egg-info")
                        && !p.contains("/tests/")
                        && !p.starts_with("test/"),
                    "{p}"
                );
            }
        }
        assert_ne!(fingerprint(Lang::Rust), fingerprint(Lang::Python));
        assert_eq!(fingerprint(Lang::Js).len(), 16);
    }

    #[test]
    fn vendored_manifests_are_standalone() {
        let dir = tempfile::tempdir().unwrap();
        vendor(dir.path(), Lang::Rust).unwrap();
        let root = dir.path().join(VENDOR_DIR);
        let sdk = std::fs::read_to_string(root.join("sdk/rust/Cargo.toml")).unwrap();
        assert!(!sdk.contains("workspace"), "{sdk}");
        assert!(
            sdk.contains("mr-codec = { path = \"../../sdk/codec\" }"),
            "{sdk}"
        );
        assert!(sdk.contains("edition = \"2024\""), "{sdk}");
        assert!(sdk.contains(&format!("version = \"{}\"", env!("CARGO_PKG_VERSION"))));
        for manifest in ["sdk/codec/Cargo.toml", "sdk/rust/mapper-world/Cargo.toml"] {
            let text = std::fs::read_to_string(root.join(manifest)).unwrap();
            assert!(!text.contains("workspace"), "{manifest}: {text}");
        }
        assert!(root.join("wit/job.wit").is_file());
        assert_eq!(
            vendored_fingerprint(dir.path()),
            Some(fingerprint(Lang::Rust))
        );
        // Vendoring again replaces the copy; a directory mr-host did not write is left alone.
        std::fs::write(root.join("stray.txt"), "x").unwrap();
        vendor(dir.path(), Lang::Rust).unwrap();
        assert!(!root.join("stray.txt").exists());
        std::fs::remove_file(root.join(MARKER)).unwrap();
        let err = vendor(dir.path(), Lang::Rust).unwrap_err().to_string();
        assert!(err.contains("was not written by mr-host"), "{err}");
    }

    #[test]
    fn manifest_rewriting_refuses_what_it_cannot_resolve() {
        let ws = "[workspace.package]\nversion = \"1.0.0\"\n\n[workspace.dependencies]\nx = { path = \"a/x\", features = [\"f\"] }\n";
        let ok = standalone_manifest(
            "[package]\nname = \"p\"\nversion.workspace = true\n\n[lints]\nworkspace = true\n\n[dependencies]\nx.workspace = true\n",
            Path::new("c/p"),
            ws,
        )
        .unwrap();
        assert_eq!(
            ok,
            "[package]\nname = \"p\"\nversion = \"1.0.0\"\n\n[dependencies]\nx = { path = \"../../a/x\", features = [\"f\"] }\n"
        );
        for bad in [
            "[package]\nedition.workspace = true\n",
            "[dependencies]\ny.workspace = true\n",
            "[dependencies]\nx = { workspace = true }\n",
        ] {
            assert!(
                standalone_manifest(bad, Path::new("c"), ws).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_js_lock_pins_the_sdk_tree_without_its_dev_dependencies() {
        let lock: serde_json::Value =
            serde_json::from_str(&js_project_lock("demo", "0.1.0").unwrap()).unwrap();
        let packages = lock["packages"].as_object().unwrap();
        assert_eq!(packages[""]["dependencies"]["mr-sdk"], "file:vendor/mr-sdk");
        assert_eq!(packages["node_modules/mr-sdk"]["link"], true);
        assert_eq!(packages["vendor/mr-sdk"]["name"], "mr-sdk");
        assert_eq!(
            packages["node_modules/@bytecodealliance/componentize-js"]["version"],
            "0.23.0"
        );
        assert!(packages.values().all(|p| p["dev"] != true));
    }
}
