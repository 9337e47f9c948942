//! `mr-host new NAME --lang rust|python|js`: scaffolds a job project that builds and runs as
//! generated (a word count with a combiner and a native test), to be edited into the user's job.
//!
//! The templates live in `runtime/cli/templates/` and are compiled into the binary. None of the
//! SDKs is published, so a project refers to the SDK of the mr checkout this `mr-host` was built
//! from, by absolute path (`mr-sdk = { path = ... }`, `mr-sdk @ file://...`, `"mr-sdk":
//! "file:..."`): a binary copied away from its checkout cannot scaffold and says so.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::{Lang, source_tree};

/// One file of a template: where it goes (with placeholders) and its text.
type TemplateFile = (&'static str, &'static str);

const RUST: &[TemplateFile] = &[
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    ("README.md", include_str!("../templates/rust/README.md")),
    (".gitignore", include_str!("../templates/rust/gitignore")),
];

const PYTHON: &[TemplateFile] = &[
    (
        "pyproject.toml",
        include_str!("../templates/python/pyproject.toml"),
    ),
    ("{{module}}.py", include_str!("../templates/python/job.py")),
    (
        "test_{{module}}.py",
        include_str!("../templates/python/test_job.py"),
    ),
    ("README.md", include_str!("../templates/python/README.md")),
    (".gitignore", include_str!("../templates/python/gitignore")),
];

const JS: &[TemplateFile] = &[
    ("package.json", include_str!("../templates/js/package.json")),
    ("{{name}}.js", include_str!("../templates/js/job.js")),
    (
        "{{name}}.test.js",
        include_str!("../templates/js/job.test.js"),
    ),
    ("README.md", include_str!("../templates/js/README.md")),
    (".gitignore", include_str!("../templates/js/gitignore")),
];

/// Creates the project `name` in a new directory of that name under `parent`; returns it.
pub fn scaffold(parent: &Path, name: &str, lang: Lang) -> Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() && dir.read_dir().map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "{} already exists and is not empty; choose another name or remove it",
            dir.display()
        );
    }
    let Some(root) = source_tree() else {
        bail!(
            "mr-host new needs the mr checkout this mr-host was built from ({}), for the path of the SDK the project depends on; it is gone: run mr-host from a checkout",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
        );
    };
    let vars = [
        ("{{name}}", name.to_owned()),
        ("{{module}}", name.replace('-', "_")),
        ("{{type}}", type_name(name)),
        ("{{sdk_rust}}", path_text(&root.join("sdk/rust"))?),
        ("{{sdk_python}}", path_text(&root.join("sdk/python"))?),
        ("{{sdk_js}}", path_text(&root.join("sdk/js"))?),
    ];
    let fill = |text: &str| {
        vars.iter()
            .fold(text.to_owned(), |t, (k, v)| t.replace(k, v))
    };
    let files = match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    for (path, text) in files {
        let path = dir.join(fill(path));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, fill(text))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(dir)
}

/// What to run next, for the message after scaffolding.
pub fn next_steps(dir: &Path, lang: Lang) -> String {
    let d = dir.display();
    let setup = match lang {
        Lang::Rust => "rustup target add wasm32-wasip2   # once".to_owned(),
        Lang::Python => match source_tree() {
            Some(root) => format!(
                "pip install {}   # once: the Python SDK and its pinned componentize-py",
                root.join("sdk/python").display()
            ),
            None => "pip install <mr checkout>/sdk/python   # once".to_owned(),
        },
        Lang::Js => format!("(cd {d} && npm install)   # links the JavaScript SDK"),
    };
    format!(
        "created {d}\nnext:\n  {setup}\n  mr-host build {d}\n  mr-host run <the printed .wasm> --input INPUT --output OUT\n"
    )
}

/// Project names become package, module and directory names: keep them portable.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "invalid project name {name:?}: use lowercase ASCII letters, digits, `-` and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// `word-count` → `WordCount`, the Rust job type.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Paths go into TOML and JSON strings: refuse the characters that would need escaping there.
fn path_text(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    if text.contains(['"', '\\']) {
        bail!(
            "the mr checkout path {text} contains a quote or backslash, which mr-host new cannot put into a manifest"
        );
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name("word-count_2"), "WordCount2");
        assert!(check_name("demo-1").is_ok());
        for bad in ["", "Demo", "1demo", "de mo", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_fill_every_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        for (lang, name) in [
            (Lang::Rust, "r-job"),
            (Lang::Python, "py-job"),
            (Lang::Js, "js-job"),
        ] {
            let project = scaffold(dir.path(), name, lang).unwrap();
            for entry in walk(&project) {
                let text = std::fs::read_to_string(&entry).unwrap();
                assert!(
                    !text.contains("{{"),
                    "{} has a placeholder",
                    entry.display()
                );
                assert!(!entry.to_string_lossy().contains("{{"));
            }
            assert!(scaffold(dir.path(), name, lang).is_err(), "exists already");
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
