//! `mr-host new NAME --lang rust|python|js`: scaffolds a job project that builds and runs as
//! generated (a word count with a combiner and a native test), to be edited into the user's job.
//!
//! The templates live in `runtime/cli/templates/` and are compiled into the binary, as are the
//! SDKs: the project gets its own copy of its language's SDK in `vendor/mr-sdk/` (see
//! [`crate::build::sdk`]), referenced by a relative path, so it builds wherever it is moved and
//! needs no mr checkout. Unless `--no-install`, `new` also installs what the project's README
//! commands need: a `.venv` with the SDK, componentize-py and pytest for Python, `npm install`
//! for JavaScript (Rust needs nothing: cargo fetches at the first build).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::build::{self, Lang, sdk};

/// `mr-host new`'s arguments.
#[derive(clap::Args)]
pub struct NewArgs {
    /// The project's name and directory.
    name: String,
    /// The project's language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Do not set up the Python virtualenv or run `npm install` now (the first `mr-host build`
    /// does it).
    #[arg(long)]
    no_install: bool,
}

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

/// `mr-host new`: scaffolds the project under the current directory, installs its toolchain
/// unless told not to, and says what to run next.
pub fn run(args: NewArgs) -> Result<()> {
    let dir = scaffold(Path::new("."), &args.name, args.lang)?;
    eprintln!(
        "created {} (a {} word count; the SDK is vendored in {})",
        dir.display(),
        match args.lang {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        },
        dir.join(sdk::VENDOR_DIR).display()
    );
    if !args.no_install {
        match args.lang {
            Lang::Rust => {}
            Lang::Python => build::python::ensure_venv(&dir)?,
            Lang::Js => build::js::npm_install(&dir)?,
        }
    }
    eprint!("{}", next_steps(&dir, args.lang));
    Ok(())
}

/// Creates the project `name` in a new directory of that name under `parent`, with its
/// vendored SDK; returns it.
pub fn scaffold(parent: &Path, name: &str, lang: Lang) -> Result<PathBuf> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() && dir.read_dir().map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "{} already exists and is not empty; choose another name or remove it",
            dir.display()
        );
    }
    let vars = [
        ("{{name}}", name.to_owned()),
        ("{{module}}", name.replace('-', "_")),
        ("{{type}}", type_name(name)),
        ("{{sdk_dir}}", sdk::VENDOR_DIR.to_owned()),
        ("{{sdk_rust}}", sdk::RUST_SDK_CRATE.to_owned()),
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
        write(&dir.join(fill(path)), &fill(text))?;
    }
    sdk::vendor(&dir, lang)?;
    if lang == Lang::Js {
        // Pins the SDK's dependency tree for `npm install` (see `sdk::js_project_lock`).
        write(
            &dir.join("package-lock.json"),
            &sdk::js_project_lock(name, "0.1.0")?,
        )?;
    }
    Ok(dir)
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What to run next, for the message after scaffolding.
pub fn next_steps(dir: &Path, lang: Lang) -> String {
    let d = dir.display();
    let test = match lang {
        Lang::Rust => "cargo test",
        Lang::Python => ".venv/bin/python -m pytest",
        Lang::Js => "npm test",
    };
    let setup = match lang {
        Lang::Rust => {
            "\n  rustup target add wasm32-wasip2   # once, if `mr-host build` asks for it"
        }
        _ => "",
    };
    format!(
        "next (its README.md has more):{setup}\n  cd {d} && {test}\n  mr-host run {d} --input INPUT --output OUT   # builds it first when its sources changed\n"
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
    fn templates_fill_every_placeholder_and_vendor_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        for (lang, name) in [
            (Lang::Rust, "r-job"),
            (Lang::Python, "py-job"),
            (Lang::Js, "js-job"),
        ] {
            let project = scaffold(dir.path(), name, lang).unwrap();
            for entry in walk(&project) {
                let text = std::fs::read(&entry).unwrap();
                // (The vendored SDK's sources are copied verbatim: `{{` is Rust syntax there.)
                assert!(
                    entry.starts_with(project.join("vendor"))
                        || !String::from_utf8_lossy(&text).contains("{{"),
                    "{} has a placeholder",
                    entry.display()
                );
                assert!(!entry.to_string_lossy().contains("{{"));
                // Nothing points back into this checkout: the project stands alone.
                let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
                let checkout = checkout.canonicalize().unwrap();
                assert!(
                    !String::from_utf8_lossy(&text).contains(checkout.to_str().unwrap()),
                    "{} names the checkout",
                    entry.display()
                );
            }
            assert_eq!(
                sdk::vendored_fingerprint(&project),
                Some(sdk::fingerprint(lang))
            );
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
