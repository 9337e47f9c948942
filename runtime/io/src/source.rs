//! Where an input's bytes come from: a local file or an object in object storage. Every reader
//! opens its input through here ([`open_range`], [`open_seekable`], [`current_len`]), so a
//! format works the same over both.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::objects::{Location, RangeReader};
use crate::{InputError, InputFile};

impl InputFile {
    /// The object URL, when the input is in object storage.
    pub fn object(&self) -> Option<&str> {
        self.path.to_str().filter(|p| crate::objects::is_url(p))
    }
}

pub(crate) fn location(file: &InputFile, url: &str) -> Result<Location, InputError> {
    Location::parse(url).map_err(|e| object_error(file, e))
}

/// An object storage failure of an input, naming it.
pub(crate) fn object_error(file: &InputFile, e: crate::objects::ObjectError) -> InputError {
    InputError::Io {
        path: file.display.clone(),
        offset: None,
        source: std::io::Error::other(e.what()),
    }
}

/// Bytes `start..end` of the input.
pub(crate) fn open_range(
    file: &InputFile,
    start: u64,
    end: u64,
) -> Result<Box<dyn Read + Send>, InputError> {
    let io = |source| InputError::Io {
        path: file.display.clone(),
        offset: Some(start),
        source,
    };
    if let Some(url) = file.object() {
        return Ok(Box::new(location(file, url)?.reader(start, end)));
    }
    let mut f = File::open(&file.path).map_err(io)?;
    f.seek(SeekFrom::Start(start)).map_err(io)?;
    Ok(Box::new(f.take(end.saturating_sub(start))))
}

/// A readable, seekable view of the whole input (for formats that jump around: zip's central
/// directory).
pub(crate) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// The input as a [`ReadSeek`].
pub(crate) fn open_seekable(file: &InputFile) -> Result<Box<dyn ReadSeek>, InputError> {
    if let Some(url) = file.object() {
        let location = location(file, url)?;
        return Ok(Box::new(SeekableObject {
            location,
            len: file.len,
            pos: 0,
            reader: None,
        }));
    }
    let f = File::open(&file.path).map_err(|source| InputError::Io {
        path: file.display.clone(),
        offset: None,
        source,
    })?;
    Ok(Box::new(f))
}

/// The input's size now (to tell whether it changed since planning).
pub(crate) fn current_len(file: &InputFile) -> std::io::Result<u64> {
    match file.object() {
        Some(url) => {
            let info = Location::parse(url)
                .and_then(|l| l.head())
                .map_err(std::io::Error::other)?;
            info.map(|i| i.size).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the object is gone")
            })
        }
        None => std::fs::metadata(&file.path).map(|m| m.len()),
    }
}

/// An object read through ranged GETs, re-positioned on every seek.
struct SeekableObject {
    location: Location,
    len: u64,
    pos: u64,
    reader: Option<RangeReader>,
}

impl Read for SeekableObject {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let reader = self
            .reader
            .get_or_insert_with(|| self.location.reader(self.pos, self.len));
        let n = reader.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SeekableObject {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before 0"))?;
        if target != self.pos {
            self.reader = None;
            self.pos = target;
        }
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{gz, read_resumed};
    use crate::{ReadOptions, plan, resolve_inputs};

    #[test]
    fn objects_read_like_files_in_every_format_and_skip_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        let write = |name: &str, bytes: &[u8]| {
            let p = root.join("data").join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        };
        write("a.txt", text.as_bytes());
        write("b.txt.gz", &gz(text.as_bytes()));
        write(
            "c.zip",
            &crate::zip::tests::zip_bytes(&[("m1.txt", text.as_bytes()), ("m2.txt", b"z\n")]),
        );
        write("_MANIFEST", b"{}");
        write("out/part-00000", b"old\n");
        let url = format!("file://{}/data/", root.display());
        let out = format!("file://{}/data/out", root.display());
        let files =
            resolve_inputs(std::slice::from_ref(&url), Some(std::path::Path::new(&out))).unwrap();
        let names: Vec<&str> = files
            .iter()
            .map(|f| f.display.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, ["a.txt", "b.txt.gz", "c.zip"]);
        assert!(files.iter().all(|f| f.object().is_some()));
        let local = resolve_inputs(
            &[root.join("data").display().to_string()],
            Some(&root.join("data/out")),
        )
        .unwrap();
        for shards in [1, 3, 7] {
            let values = |files: &[crate::InputFile]| -> Vec<String> {
                let p = plan(files, shards).unwrap();
                // Each record with its line number (the key is `path:line`, and the paths
                // differ): the plan numbers an object's lines as it numbers a file's.
                read_resumed(files, &p, 500, ReadOptions::default())
                    .unwrap()
                    .0
                    .into_iter()
                    .map(|(k, v)| format!("{}={v}", k.rsplit(':').next().unwrap()))
                    .collect()
            };
            assert_eq!(values(&files), values(&local), "{shards} shards");
        }
        // An object named inside the output is refused; a prefix with nothing is no match.
        let e = resolve_inputs(
            &[format!("{out}/part-00000")],
            Some(std::path::Path::new(&out)),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("inside the output"), "{e}");
        let e = resolve_inputs(&[format!("file://{}/nothing/", root.display())], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches no file"), "{e}");
        // A glob over objects.
        let globbed =
            resolve_inputs(&[format!("file://{}/data/*.txt*", root.display())], None).unwrap();
        assert_eq!(globbed.len(), 2);
    }
}
