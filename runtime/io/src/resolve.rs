//! Input specs to input files, checked before anything is planned.
//!
//! A spec is a file, a directory (read recursively), a glob pattern, or one of the prefixed
//! specs (`lines:`, `jsonl:`, `csv:`, `zip:`, `zip-members:` force a format; `sqlite:`,
//! `random:`, `range:` name inputs that are not text files). The rules, each there because its
//! absence lost or invented data:
//!
//! - **Only regular files.** A FIFO, a device (`/dev/zero`) or a socket has no size to plan by:
//!   it is refused by name and type instead of being read as empty (or forever).
//! - **Walks and globs never follow a symbolic link to a directory** (a link to a parent
//!   would list the same files again and again, without end with two such links), skip a
//!   directory already visited (same device and inode: bind mounts), and read a file reached
//!   twice (two links, two specs, a hard link) once, by device and inode.
//! - **Bookkeeping is not data.** Below the root the user named, a walk or a glob skips every
//!   path component starting with `_` or `.` (an mr output's `_MANIFEST`, `_bad_records` and
//!   `_mr/`; `.git`), and everything under the job's output directory. A spec naming a file or
//!   directory inside the output directory is refused.
//! - **Text is text.** The first bytes of every text input are sniffed: a compressed or binary
//!   file whose name says text (a gzip file named `.txt`, a PNG named `.csv`) is refused naming
//!   what it is, unless a prefix (`lines:`) forces reading it as text; a file named `.gz`,
//!   `.zst`, `.bz2` or `.xz` must hold that format.
//!
//! The order is deterministic: specs in the order given, each spec's matches sorted by path.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::compress::Compression;
use crate::format::{format_by_name, format_by_prefix, split_prefix};
use crate::sniff::{SNIFF_BYTES, Sniffed, sniff};
use crate::{InputError, InputFile};

/// Resolves input specs to files (see the module documentation), excluding everything inside
/// `output` (the job's output directory, which need not exist yet).
pub fn resolve_inputs(
    specs: &[String],
    output: Option<&Path>,
) -> Result<Vec<InputFile>, InputError> {
    let output_url = output
        .and_then(Path::to_str)
        .filter(|o| crate::objects::is_url(o));
    let output = output.filter(|_| output_url.is_none()).map(OutputDir::new);
    let mut files: Vec<InputFile> = Vec::new();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    for spec in specs {
        let prefix = split_prefix(spec);
        if let Some((p @ ("sqlite" | "random" | "range"), rest)) = prefix {
            let input = if p == "sqlite" {
                crate::sqlite::parse(spec, rest)?
            } else {
                crate::generate::parse(spec, p, rest)?
            };
            if input.format.is_file()
                && let Some(out) = &output
            {
                out.refuse_inside(&input.path, &input.display)?;
            }
            if !files.iter().any(|f| f.display == input.display) {
                files.push(input);
            }
            continue;
        }
        let (prefix, pattern) = match prefix {
            Some((p, rest)) => (Some(p), rest),
            None => (None, spec.as_str()),
        };
        if crate::objects::is_url(pattern) {
            for object in match_objects(pattern, output_url)? {
                if files.iter().any(|f| f.display == object.url) {
                    continue;
                }
                let path = PathBuf::from(&object.url);
                let (format, compression) = match prefix {
                    Some(prefix) => format_by_prefix(prefix, &path),
                    None => format_by_name(&path),
                };
                let file = InputFile {
                    display: object.url.clone(),
                    path,
                    len: object.size,
                    format,
                    gzip: compression == Compression::Gzip,
                    compression,
                };
                if matches!(file.format, crate::Format::Sqlite { .. }) {
                    return Err(InputError::BadSpec {
                        spec: spec.clone(),
                        message: "a SQLite database is read from a local file, not object storage"
                            .into(),
                    });
                }
                if file.format.is_text() {
                    check_content(&file, prefix.is_some())?;
                }
                files.push(file);
            }
            continue;
        }
        let matched = match_spec(pattern, output.as_ref())?;
        for path in matched {
            let meta = regular_file(&path, &path.display().to_string())?;
            if !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            let (format, compression) = match prefix {
                Some(prefix) => format_by_prefix(prefix, &path),
                None => format_by_name(&path),
            };
            let file = InputFile {
                display: path.display().to_string(),
                path,
                len: meta.len(),
                format,
                gzip: compression == Compression::Gzip,
                compression,
            };
            if file.format.is_text() {
                check_content(&file, prefix.is_some())?;
            }
            files.push(file);
        }
    }
    Ok(files)
}

/// The paths one file, directory or glob spec names, sorted; an error when it names none.
fn match_spec(pattern: &str, output: Option<&OutputDir>) -> Result<Vec<PathBuf>, InputError> {
    let path = Path::new(pattern);
    let mut walk = Walk {
        output,
        skipped: 0,
        excluded: 0,
        visited: HashSet::new(),
        found: Vec::new(),
    };
    let io = |source| InputError::Io {
        path: pattern.to_owned(),
        offset: None,
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            if let Some(out) = output {
                out.refuse_inside(path, pattern)?;
            }
            if !meta.is_dir() {
                // Named explicitly: read whatever its name (`_x`, `.x`) or type (refused
                // later if not a regular file).
                return Ok(vec![path.to_path_buf()]);
            }
            walk.visited.insert((meta.dev(), meta.ino()));
            walk.dir(path, usize::MAX).map_err(io)?;
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) if pattern.contains(['*', '?', '[']) => {
            let (root, depth) = glob_root(pattern);
            let matcher = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| InputError::BadGlob {
                    spec: pattern.to_owned(),
                    message: e.kind().to_string(),
                })?
                .compile_matcher();
            match walk.dir(&root, depth) {
                Ok(()) => {}
                // A pattern whose fixed part does not exist matches nothing.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
            walk.found.retain(|p| matcher.is_match(p));
        }
        Err(_) => {}
    }
    let mut found = walk.found;
    if let Some(out) = output {
        let before = found.len();
        found.retain(|p| !out.contains(p));
        walk.excluded += before - found.len();
    }
    if found.is_empty() {
        let mut notes = Vec::new();
        if walk.skipped > 0 {
            notes.push(format!(
                "{} entries whose names start with `_` or `.` were skipped; name such a file explicitly to read it",
                walk.skipped
            ));
        }
        if walk.excluded > 0 {
            notes.push(format!(
                "{} files inside the output directory were skipped",
                walk.excluded
            ));
        }
        return Err(InputError::NoMatch {
            spec: pattern.to_owned(),
            note: if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            },
        });
    }
    found.sort();
    Ok(found)
}

/// The objects an object storage spec names, sorted by URL: one object, every object under a
/// prefix (a spec ending in `/`, or naming no object but a prefix), or a glob's matches. The
/// same rules as for directories: below the prefix named, `_`- and `.`-prefixed path
/// components and everything under the output are skipped; an object named explicitly inside
/// the output is refused.
fn match_objects(
    pattern: &str,
    output: Option<&str>,
) -> Result<Vec<crate::objects::ObjectInfo>, InputError> {
    use crate::objects::Location;
    let object_error = |e: crate::objects::ObjectError| InputError::Io {
        path: pattern.to_owned(),
        offset: None,
        source: std::io::Error::other(e.what()),
    };
    let inside_output = |url: &str| {
        output.is_some_and(|out| {
            let out = out.trim_end_matches('/');
            url == out || url.starts_with(&format!("{out}/"))
        })
    };
    let glob = pattern.contains(['*', '?', '[']);
    if !glob && !pattern.ends_with('/') {
        let location = Location::parse(pattern).map_err(object_error)?;
        if let Some(object) = location.head().map_err(object_error)? {
            if inside_output(&object.url) {
                return Err(InputError::InsideOutput {
                    input: pattern.to_owned(),
                    output: output.unwrap_or_default().to_owned(),
                });
            }
            return Ok(vec![object]);
        }
    }
    // A prefix: the spec up to its first wildcard (and its last `/` before it).
    let fixed = match pattern.find(['*', '?', '[']) {
        Some(i) => &pattern[..pattern[..i].rfind('/').map_or(i, |j| j + 1)],
        None => pattern,
    };
    let root = Location::parse(fixed).map_err(object_error)?;
    if inside_output(fixed) {
        return Err(InputError::InsideOutput {
            input: pattern.to_owned(),
            output: output.unwrap_or_default().to_owned(),
        });
    }
    let matcher = if glob {
        Some(
            globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| InputError::BadGlob {
                    spec: pattern.to_owned(),
                    message: e.kind().to_string(),
                })?
                .compile_matcher(),
        )
    } else {
        None
    };
    let (mut skipped, mut excluded) = (0, 0);
    let mut found = Vec::new();
    for object in root.list().map_err(object_error)? {
        let below = root.relative(&object.url);
        if below.split('/').any(|c| c.starts_with(['_', '.'])) {
            skipped += 1;
        } else if inside_output(&object.url) {
            excluded += 1;
        } else if matcher
            .as_ref()
            .is_none_or(|m| m.is_match(Path::new(&object.url)))
        {
            found.push(object);
        }
    }
    if found.is_empty() {
        let mut notes = Vec::new();
        if skipped > 0 {
            notes.push(format!(
                "{skipped} objects below a `_`- or `.`-prefixed name were skipped; name such an object explicitly to read it"
            ));
        }
        if excluded > 0 {
            notes.push(format!("{excluded} objects inside the output were skipped"));
        }
        return Err(InputError::NoMatch {
            spec: pattern.to_owned(),
            note: if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            },
        });
    }
    Ok(found)
}

/// The fixed directory a glob starts in (its components before the first one with a
/// wildcard), and how deep below it matches can be (unbounded with `**`).
fn glob_root(pattern: &str) -> (PathBuf, usize) {
    let parts: Vec<&str> = pattern.split('/').collect();
    let first_glob = parts
        .iter()
        .position(|p| p.contains(['*', '?', '[']))
        .unwrap_or(parts.len());
    let root = parts[..first_glob].join("/");
    let root = if root.is_empty() && pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(root)
    };
    let rest: Vec<&&str> = parts[first_glob..]
        .iter()
        .filter(|p| !p.is_empty())
        .collect();
    let depth = if rest.iter().any(|p| p.contains("**")) {
        usize::MAX
    } else {
        rest.len()
    };
    (root, depth)
}

/// A directory walk that collects every non-directory entry.
struct Walk<'a> {
    output: Option<&'a OutputDir>,
    /// Entries skipped for starting with `_` or `.`.
    skipped: usize,
    /// Files skipped for being inside the output directory.
    excluded: usize,
    /// Directories entered, by device and inode.
    visited: HashSet<(u64, u64)>,
    found: Vec<PathBuf>,
}

impl Walk<'_> {
    /// Lists `dir`'s entries, and those of its subdirectories down to `depth` levels (1: only
    /// `dir`'s own entries). `dir` is "" for the current directory (paths then stay relative,
    /// as a glob gives them).
    fn dir(&mut self, dir: &Path, depth: usize) -> std::io::Result<()> {
        if depth == 0 {
            return Ok(());
        }
        let listed = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        for entry in std::fs::read_dir(listed)? {
            let entry = entry?;
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b"_")
                || name.as_encoded_bytes().starts_with(b".")
            {
                self.skipped += 1;
                continue;
            }
            let path = dir.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                let meta = entry.metadata()?;
                let id = (meta.dev(), meta.ino());
                if self.output.is_some_and(|o| o.id == Some(id)) {
                    self.excluded += 1;
                    continue;
                }
                if self.visited.insert(id) {
                    self.dir(&path, depth - 1)?;
                }
            } else if kind.is_symlink() {
                // Never follow a link to a directory (it may point back up); a dangling link
                // holds no data.
                match std::fs::metadata(&path) {
                    Ok(target) if target.is_dir() => self.skipped += 1,
                    Ok(_) => self.found.push(path),
                    Err(_) => {}
                }
            } else {
                // Regular files, and special files (refused by name when resolved).
                self.found.push(path);
            }
        }
        Ok(())
    }
}

/// The job's output directory, as a canonical path (where it would be, if it does not exist
/// yet) and its device and inode when it exists.
struct OutputDir {
    shown: PathBuf,
    canonical: PathBuf,
    id: Option<(u64, u64)>,
}

impl OutputDir {
    fn new(path: &Path) -> Self {
        OutputDir {
            shown: path.to_path_buf(),
            canonical: canonical_or_planned(path),
            id: std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino())),
        }
    }

    /// Whether `path` (followed through links) is the output directory or inside it.
    fn contains(&self, path: &Path) -> bool {
        canonical_or_planned(path).starts_with(&self.canonical)
    }

    fn refuse_inside(&self, path: &Path, display: &str) -> Result<(), InputError> {
        if self.contains(path) {
            return Err(InputError::InsideOutput {
                input: display.to_owned(),
                output: self.shown.display().to_string(),
            });
        }
        Ok(())
    }
}

/// `path` with every link resolved; for a path that does not exist (yet), its deepest existing
/// ancestor resolved and the rest appended.
fn canonical_or_planned(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut current = absolute.as_path();
    while let (Some(parent), Some(name)) = (current.parent(), current.file_name()) {
        rest.push(name);
        if let Ok(c) = std::fs::canonicalize(parent) {
            return rest.iter().rev().fold(c, |p, n| p.join(n));
        }
        current = parent;
    }
    absolute
}

/// The metadata of a regular file (links followed); anything else is refused by name and type.
pub(crate) fn regular_file(path: &Path, display: &str) -> Result<std::fs::Metadata, InputError> {
    let meta = std::fs::metadata(path).map_err(|source| InputError::Io {
        path: display.to_owned(),
        offset: None,
        source,
    })?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(meta);
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(InputError::NotRegular {
        path: display.to_owned(),
        kind: what,
    })
}

/// Refuses a text input whose first bytes contradict its name (see the module documentation).
fn check_content(file: &InputFile, forced: bool) -> Result<(), InputError> {
    if file.len == 0 {
        return Ok(());
    }
    let (compression, display) = (file.codec(), &file.display);
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    crate::source::open_range(file, 0, (SNIFF_BYTES as u64).min(file.len))?
        .read_to_end(&mut head)
        .map_err(|source| InputError::Io {
            path: display.to_owned(),
            offset: Some(0),
            source,
        })?;
    let found = sniff(&head);
    let message = match (compression, found) {
        (Compression::None, None) => return Ok(()),
        (Compression::None, Some(_)) if forced => return Ok(()),
        (Compression::None, Some(kind)) => format!(
            "its first bytes say it is {}, not text: {}, or give it as lines:{display} to read its bytes as text anyway",
            kind.name(),
            kind.advice()
        ),
        (c, Some(Sniffed::Compressed(k))) if k == c => return Ok(()),
        (c, found) => format!(
            "its name says {} data, but its first bytes say it is {}: rename it to match its content",
            c.name(),
            found.map_or("not", Sniffed::name)
        ),
    };
    Err(InputError::WrongContent {
        path: display.to_owned(),
        message,
    })
}

/// Splits `a=1&b=2` where only `&NAME=` with a known NAME starts a new setting (so a value, an
/// SQL query say, may contain `&`).
pub fn parse_settings(
    spec: &str,
    text: &str,
    names: &[&str],
) -> Result<Vec<(String, String)>, InputError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| crate::bad_spec(spec, format!("`{rest}` is not NAME=VALUE")))?;
        if !names.contains(&name) {
            return Err(crate::bad_spec(
                spec,
                format!(
                    "unknown setting `{name}` (expected one of {})",
                    names.join(", ")
                ),
            ));
        }
        // The value runs to the next `&known=`.
        let end = names
            .iter()
            .filter_map(|n| after.find(&format!("&{n}=")))
            .min()
            .unwrap_or(after.len());
        out.push((name.to_owned(), after[..end].to_owned()));
        rest = after[end..].strip_prefix('&').unwrap_or("");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format and codec each file is read with.
    fn format_of(files: &[InputFile]) -> Vec<(crate::Format, Compression)> {
        files
            .iter()
            .map(|f| (f.format.clone(), f.codec()))
            .collect()
    }

    fn names(files: &[InputFile], root: &Path) -> Vec<String> {
        files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    fn write(root: &Path, name: &str, content: &[u8]) {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn resolves_dirs_globs_and_reports_no_match() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "b.txt", b"b");
        write(root, "sub/a.txt", b"a");
        write(root, ".hidden", b"h");
        let d = root.display().to_string();
        let files = resolve_inputs(std::slice::from_ref(&d), None).unwrap();
        assert_eq!(names(&files, root), ["b.txt", "sub/a.txt"]);
        let files = resolve_inputs(&[format!("{d}/*.txt"), format!("{d}/b.txt")], None).unwrap();
        assert_eq!(files.len(), 1);
        let files = resolve_inputs(&[format!("{d}/**/*.txt")], None).unwrap();
        assert_eq!(names(&files, root), ["b.txt", "sub/a.txt"]);
        let err = resolve_inputs(&[format!("{d}/nope*")], None).unwrap_err();
        assert!(err.to_string().contains("matches no file"), "{err}");
        let err = resolve_inputs(&[format!("{d}/nope/*.txt")], None).unwrap_err();
        assert!(err.to_string().contains("matches no file"), "{err}");
        let err = resolve_inputs(&[format!("{d}/[x")], None).unwrap_err();
        assert!(err.to_string().contains("not a valid glob"), "{err}");
    }

    #[test]
    fn glob_roots_and_depths() {
        assert_eq!(glob_root("/d/*.txt"), (PathBuf::from("/d"), 1));
        assert_eq!(glob_root("*.txt"), (PathBuf::new(), 1));
        assert_eq!(glob_root("d/*/x.txt"), (PathBuf::from("d"), 2));
        assert_eq!(
            glob_root("/a/**/x/*.txt"),
            (PathBuf::from("/a"), usize::MAX)
        );
        assert_eq!(glob_root("/*.txt"), (PathBuf::from("/"), 1));
    }

    #[test]
    fn special_files_are_refused_by_type() {
        let e = resolve_inputs(&["/dev/null".into()], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input /dev/null is a character device, not a regular file: mr reads only regular files (it plans by their size and may read them more than once); copy the data into a file"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.csv");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = resolve_inputs(&[fifo.display().to_string()], None).unwrap_err();
        assert!(
            e.to_string().contains("p.csv is a FIFO (named pipe)"),
            "{e}"
        );
        let e = resolve_inputs(&[dir.path().display().to_string()], None).unwrap_err();
        assert!(
            e.to_string().contains("p.csv is a FIFO (named pipe)"),
            "{e}"
        );
    }

    #[test]
    fn links_to_directories_are_not_followed_and_files_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a/f.txt", b"f");
        std::os::unix::fs::symlink("..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("../a", root.join("a/again")).unwrap();
        std::os::unix::fs::symlink("a/f.txt", root.join("link.txt")).unwrap();
        std::fs::hard_link(root.join("a/f.txt"), root.join("hard.txt")).unwrap();
        let d = root.display().to_string();
        for spec in [d.clone(), format!("{d}/**/*.txt")] {
            let files = resolve_inputs(&[spec.clone(), format!("{d}/a/f.txt")], None).unwrap();
            // The first name in path order wins; every other name of the file is dropped.
            assert_eq!(names(&files, root), ["a/f.txt"], "{spec}");
        }
    }

    #[test]
    fn bookkeeping_and_the_output_directory_are_not_input() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "data/a.txt", b"a");
        write(root, "data/_MANIFEST", b"{}");
        write(root, "data/prev/_mr/state.db", b"SQLite format 3\0");
        write(root, "data/prev/part-00000", b"x\t1");
        write(root, "data/.git/config", b"c");
        write(root, "data/out/part-00000", b"y\t1");
        let data = root.join("data");
        let out = data.join("out");
        for spec in [
            data.display().to_string(),
            format!("{}/**/*", data.display()),
        ] {
            let files = resolve_inputs(std::slice::from_ref(&spec), Some(&out)).unwrap();
            assert_eq!(
                names(&files, root),
                ["data/a.txt", "data/prev/part-00000"],
                "{spec}"
            );
        }
        // An output directory that does not exist yet is excluded as well.
        let later = data.join("later");
        write(root, "data/later/x.txt", b"x");
        std::fs::remove_dir_all(&later).unwrap();
        let files = resolve_inputs(&[data.display().to_string()], Some(&later)).unwrap();
        assert_eq!(
            names(&files, root),
            ["data/a.txt", "data/out/part-00000", "data/prev/part-00000"]
        );
        // Named explicitly, inside the output: refused. Named explicitly with `_`: read.
        let inside = out.join("part-00000").display().to_string();
        let e = resolve_inputs(std::slice::from_ref(&inside), Some(&out)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "input {inside} is inside the output directory {}: writing the output (or --overwrite) would destroy it, so choose an output directory outside the inputs (nothing was written)",
                out.display()
            )
        );
        let e = resolve_inputs(&[out.display().to_string()], Some(&out)).unwrap_err();
        assert!(
            e.to_string().contains("is inside the output directory"),
            "{e}"
        );
        let manifest = data.join("_MANIFEST").display().to_string();
        assert_eq!(resolve_inputs(&[manifest], Some(&out)).unwrap().len(), 1);
        // Only skipped names: say so.
        let e = resolve_inputs(&[format!("{}/_*", data.display())], None).unwrap_err();
        assert!(
            e.to_string()
                .contains("entries whose names start with `_` or `.` were skipped"),
            "{e}"
        );
    }

    #[test]
    fn content_must_match_the_name_unless_a_prefix_says_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let gz = crate::testing::gz(b"text\n");
        write(root, "log.txt", &gz);
        write(root, "log.gz", &gz);
        write(root, "fake.zst", b"plain text\n");
        write(root, "db.csv", b"SQLite format 3\0rest");
        write(root, "empty.gz", b"");
        let p = |n: &str| root.join(n).display().to_string();
        let e = resolve_inputs(&[p("log.txt")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with(&format!("log.txt: its first bytes say it is gzip data, not text: rename it to end in .gz to have it decompressed, or give it as lines:{} to read its bytes as text anyway", p("log.txt"))),
            "{e}"
        );
        assert_eq!(
            resolve_inputs(&[format!("lines:{}", p("log.txt"))], None)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            resolve_inputs(&[p("log.gz"), p("empty.gz")], None)
                .unwrap()
                .len(),
            2
        );
        let e = resolve_inputs(&[p("fake.zst")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("its name says zstd data, but its first bytes say it is not: rename it to match its content"),
            "{e}"
        );
        let e = resolve_inputs(&[p("db.csv")], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a SQLite database, not text: give it as sqlite:PATH?table=NAME"),
            "{e}"
        );
    }

    #[test]
    fn formats_come_from_names_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a.jsonl", b"{}\n");
        let p = root.join("a.jsonl").display().to_string();
        let files = resolve_inputs(std::slice::from_ref(&p), None).unwrap();
        assert_eq!(
            format_of(&files),
            [(crate::Format::Jsonl, Compression::None)]
        );
        let files = resolve_inputs(&[format!("lines:{p}")], None).unwrap();
        assert_eq!(
            format_of(&files),
            [(crate::Format::Lines, Compression::None)]
        );
    }

    #[test]
    fn settings_split_only_at_known_names() {
        let s = parse_settings(
            "x",
            "query=SELECT a FROM t WHERE b = 'x&y'&key=a",
            &["query", "key"],
        )
        .unwrap();
        assert_eq!(
            s,
            [
                (
                    "query".to_owned(),
                    "SELECT a FROM t WHERE b = 'x&y'".to_owned()
                ),
                ("key".to_owned(), "a".to_owned())
            ]
        );
        assert!(parse_settings("x", "tabel=t", &["table"]).is_err());
    }
}
