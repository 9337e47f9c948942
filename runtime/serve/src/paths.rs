//! Paths in a submitted spec, against `--data-root`: relative paths are taken relative to the
//! root, and a path that leaves it (`..`, an absolute path elsewhere) is refused before
//! anything is read. `mr_exec::submit` checks again after resolving links and globs
//! ([`mr_exec::JobRequest::root`]), so a symbolic link out of the root is refused too.

use std::path::{Component, Path, PathBuf};

use crate::error::ApiError;

/// `path` under `root`: joined when relative; refused when it has a `..` component or is an
/// absolute path outside the root.
pub fn under_root(root: &Path, path: &str, what: &str) -> Result<PathBuf, ApiError> {
    let given = Path::new(path);
    if given.components().any(|c| c == Component::ParentDir) {
        return Err(ApiError::bad_request(format!(
            "{what} `{path}`: `..` is not allowed; paths are relative to the data root {}",
            root.display()
        )));
    }
    if given.is_absolute() && !given.starts_with(root) {
        return Err(ApiError::bad_request(format!(
            "{what} `{path}` is outside the data root {}; give a path relative to it",
            root.display()
        )));
    }
    Ok(root.join(given))
}

/// An input spec with its path (if it has one) put under `root`: a plain path, a glob, or a
/// prefixed spec (`zip:PATH`, `sqlite:PATH?table=T`, ...); generators (`random:`, `range:`)
/// name no file.
pub fn input_under_root(root: &Path, spec: &str) -> Result<String, ApiError> {
    spec_under_root(root, spec, "input")
}

/// A `sink` spec with a SQLite database put under `root` (`text` and `jsonl` name no file).
pub fn sink_under_root(root: &Path, sink: &str) -> Result<String, ApiError> {
    if sink.starts_with("sqlite:") {
        spec_under_root(root, sink, "sink database")
    } else {
        Ok(sink.to_owned())
    }
}

fn spec_under_root(root: &Path, spec: &str, what: &str) -> Result<String, ApiError> {
    let (prefix, rest) = match mr_io::PREFIXES.iter().find(|p| spec.starts_with(*p)) {
        Some(p) => (*p, &spec[p.len()..]),
        None => ("", spec),
    };
    if prefix == "random:" || prefix == "range:" {
        return Ok(spec.to_owned());
    }
    // A SQLite spec's query (`?table=T...`) is not part of its path.
    let (path, query) = match rest.split_once('?').filter(|_| prefix == "sqlite:") {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let joined = under_root(root, path, what)?;
    Ok(match query {
        Some(query) => format!("{prefix}{}?{query}", joined.display()),
        None => format!("{prefix}{}", joined.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_root_and_escapes_are_refused() {
        let root = Path::new("/data");
        for (given, under) in [
            ("in.txt", "/data/in.txt"),
            ("logs/*.gz", "/data/logs/*.gz"),
            ("zip:a.zip", "zip:/data/a.zip"),
            (
                "sqlite:app.db?table=users",
                "sqlite:/data/app.db?table=users",
            ),
            ("range:0..100", "range:0..100"),
            ("/data/x", "/data/x"),
        ] {
            assert_eq!(input_under_root(root, given).unwrap(), under);
        }
        for escape in [
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "lines:../x",
            "sqlite:/x.db?table=t",
        ] {
            let e = input_under_root(root, escape).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{escape}");
        }
        assert!(under_root(root, "out/../..", "output").is_err());
        assert_eq!(
            sink_under_root(root, "sqlite:o.db?table=t").unwrap(),
            "sqlite:/data/o.db?table=t"
        );
        assert!(sink_under_root(root, "sqlite:../o.db?table=t").is_err());
        assert_eq!(sink_under_root(root, "jsonl").unwrap(), "jsonl");
    }
}
