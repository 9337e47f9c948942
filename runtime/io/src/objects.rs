//! Object storage: inputs, map runs and outputs named by URL (`s3://bucket/key`, `gs://`,
//! `az://`, `file://`), through the `object_store` crate.
//!
//! - Configuration is the standard environment of each store, as every tool reads it: for S3
//!   `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//!   `AWS_ALLOW_HTTP` (and the rest `object_store` knows); `GOOGLE_*` for GCS; `AZURE_*` for
//!   Azure. One client per bucket, shared by the process.
//! - The executor is synchronous (a thread per worker), `object_store` is async: calls run on one
//!   small process-wide tokio runtime and the calling thread waits for them.
//! - Reads are ranged GETs in 8 MiB chunks, the next chunk fetched while the current one is
//!   consumed ([`RangeReader`]), so a byte-range shard of a large object streams without
//!   downloading the object; writes of whole files are multipart uploads.
//! - Object stores have no rename: writers put each file under an attempt-unique name and the
//!   job store records which names were committed (see docs/protocol.md).

use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// The URL schemes read as object storage.
pub const SCHEMES: &[&str] = &[
    "s3://", "s3a://", "gs://", "az://", "azure://", "abfs://", "abfss://", "file://",
];

/// Whether `spec` names object storage (a URL of one of [`SCHEMES`]).
pub fn is_url(spec: &str) -> bool {
    SCHEMES.iter().any(|s| spec.starts_with(s))
}

/// Bytes per ranged GET, and per multipart upload part.
const CHUNK: u64 = 8 << 20;

/// An object storage failure: which URL, doing what, and what the store said.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {}", self.what())]
pub struct ObjectError {
    /// The object or prefix.
    pub url: String,
    /// What was being done (`read`, `list`, `write`...).
    pub op: &'static str,
    /// What the store said, with its causes.
    pub message: String,
    /// The object was not there (a listing or head found nothing).
    pub not_found: bool,
}

impl ObjectError {
    /// What failed, without the URL: `cannot list: …`, with a hint for the usual causes.
    pub fn what(&self) -> String {
        let hint = if self.message.contains("SignatureDoesNotMatch")
            || self.message.contains("InvalidAccessKeyId")
            || self.message.contains("403 Forbidden")
        {
            " (the store refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the store's equivalent)"
        } else if self.message.contains("NoSuchBucket") {
            " (the bucket does not exist: create it, or check the URL and AWS_ENDPOINT_URL)"
        } else if self.message.contains("Connection refused") || self.message.contains("dns error")
        {
            " (nothing answers at the store's address: check AWS_ENDPOINT_URL, or the store's equivalent)"
        } else {
            ""
        };
        format!("cannot {}: {}{hint}", self.op, self.message)
    }
}

fn object_error(url: &str, op: &'static str, e: object_store::Error) -> ObjectError {
    let not_found = matches!(e, object_store::Error::NotFound { .. });
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = c.source();
    }
    ObjectError {
        url: url.to_owned(),
        op,
        message,
        not_found,
    }
}

/// The process's runtime for object storage calls.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mr-objects")
            .enable_all()
            .build()
            .expect("a tokio runtime for object storage")
    })
}

/// Runs `future` to completion on the object storage runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// The client of the bucket (or container, or filesystem) `root` names, built from the
/// environment the first time.
fn client(root: &str, url: &str) -> Result<Arc<dyn ObjectStore>, ObjectError> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    if let Some(c) = clients.lock().expect("clients lock").get(root) {
        return Ok(c.clone());
    }
    let configure = |e: object_store::Error| object_error(url, "configure a client for", e);
    let scheme = root.split("://").next().unwrap_or_default();
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(root)
                .build()
                .map_err(configure)?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(root)
                .build()
                .map_err(configure)?,
        ),
        "az" | "azure" | "abfs" | "abfss" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(root)
                .build()
                .map_err(configure)?,
        ),
        "file" => Arc::new(object_store::local::LocalFileSystem::new()),
        other => {
            return Err(ObjectError {
                url: url.to_owned(),
                op: "open",
                message: format!("unknown scheme `{other}://`"),
                not_found: false,
            });
        }
    };
    clients
        .lock()
        .expect("clients lock")
        .insert(root.to_owned(), store.clone());
    Ok(store)
}

/// An object, or a prefix of objects, in object storage.
#[derive(Clone)]
pub struct Location {
    url: String,
    root: String,
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// What a listing or a head says of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's URL.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, ns since the epoch.
    pub modified_ns: u128,
    /// Its entity tag, when the store gives one.
    pub etag: Option<String>,
}

impl Location {
    /// Parses an object URL. `scheme://bucket/key` (or `file:///path`).
    pub fn parse(url: &str) -> Result<Location, ObjectError> {
        let bad = |message: &str| ObjectError {
            url: url.to_owned(),
            op: "parse",
            message: message.to_owned(),
            not_found: false,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not a URL (scheme://bucket/key)"))?;
        let (root, key) = if scheme == "file" {
            if !rest.starts_with('/') {
                return Err(bad(
                    "a file:// URL needs an absolute path (file:///dir/file)",
                ));
            }
            ("file:///".to_owned(), rest.trim_start_matches('/'))
        } else {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("the URL names no bucket"));
            }
            (format!("{scheme}://{bucket}"), key)
        };
        let store = client(&root, url)?;
        let path = ObjectPath::parse(key).map_err(|e| bad(&e.to_string()))?;
        Ok(Location {
            url: url.to_owned(),
            root,
            store,
            path,
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object `name` under this prefix (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Location {
        let mut path = self.path.as_ref().trim_end_matches('/').to_owned();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
        }
        self.at(ObjectPath::from(path))
    }

    fn at(&self, path: ObjectPath) -> Location {
        let sep = if self.root.ends_with('/') { "" } else { "/" };
        Location {
            url: format!("{}{sep}{}", self.root, path.as_ref()),
            root: self.root.clone(),
            store: self.store.clone(),
            path,
        }
    }

    /// The key below this prefix of one of its objects (`url` from [`Location::list`]).
    pub fn relative<'a>(&self, url: &'a str) -> &'a str {
        let prefix = self.url.trim_end_matches('/');
        url.strip_prefix(prefix)
            .map(|r| r.trim_start_matches('/'))
            .unwrap_or(url)
    }

    fn info(&self, meta: object_store::ObjectMeta) -> ObjectInfo {
        ObjectInfo {
            url: self.at(meta.location).url,
            size: meta.size,
            modified_ns: meta
                .last_modified
                .timestamp_nanos_opt()
                .map_or(0, |n| n.max(0) as u128),
            etag: meta.e_tag,
        }
    }

    /// The object's size and version; `None` when there is no such object.
    pub fn head(&self) -> Result<Option<ObjectInfo>, ObjectError> {
        match block_on(self.store.head(&self.path)) {
            Ok(meta) => Ok(Some(self.info(meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(object_error(&self.url, "read the metadata of", e)),
        }
    }

    /// Every object under this prefix (at any depth), sorted by key.
    pub fn list(&self) -> Result<Vec<ObjectInfo>, ObjectError> {
        let prefix = (!self.path.as_ref().is_empty()).then_some(&self.path);
        let metas: Vec<object_store::ObjectMeta> = block_on(self.store.list(prefix).try_collect())
            .map_err(|e| object_error(&self.url, "list", e))?;
        let mut out: Vec<ObjectInfo> = metas.into_iter().map(|m| self.info(m)).collect();
        out.sort_by(|a, b| a.url.cmp(&b.url));
        Ok(out)
    }

    /// Bytes `range` of the object.
    pub fn get_range(&self, range: Range<u64>) -> Result<Bytes, ObjectError> {
        block_on(self.store.get_range(&self.path, range))
            .map_err(|e| object_error(&self.url, "read", e))
    }

    /// How many times `byte` occurs in bytes `range` of the object, read as 8 MiB ranged GETs
    /// with up to `parallel` of them in flight. A count needs no order, and planning a text
    /// object reads it whole (to number the lines before each cut): one GET at a time leaves
    /// most of a store's bandwidth unused.
    pub fn count_byte(
        &self,
        range: Range<u64>,
        byte: u8,
        parallel: usize,
    ) -> Result<u64, ObjectError> {
        use futures::StreamExt;
        let chunks = (range.start..range.end)
            .step_by(CHUNK as usize)
            .map(|start| start..(start + CHUNK).min(range.end));
        let gets = chunks.map(|chunk| {
            let (store, path) = (self.store.clone(), self.path.clone());
            async move {
                let bytes = store.get_range(&path, chunk).await?;
                Ok::<u64, object_store::Error>(memchr::memchr_iter(byte, &bytes).count() as u64)
            }
        });
        block_on(
            futures::stream::iter(gets)
                .buffer_unordered(parallel.max(1))
                .try_fold(0u64, |total, n| async move { Ok(total + n) }),
        )
        .map_err(|e| object_error(&self.url, "read", e))
    }

    /// The whole object.
    pub fn get(&self) -> Result<Bytes, ObjectError> {
        block_on(async { self.store.get(&self.path).await?.bytes().await })
            .map_err(|e| object_error(&self.url, "read", e))
    }

    /// A reader of bytes `start..end` of the object.
    pub fn reader(&self, start: u64, end: u64) -> RangeReader {
        RangeReader {
            location: self.clone(),
            pos: start,
            end,
            current: Bytes::new(),
            next: None,
        }
    }

    /// Writes the object from `bytes`.
    pub fn put(&self, bytes: Vec<u8>) -> Result<(), ObjectError> {
        block_on(self.store.put(&self.path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| object_error(&self.url, "write", e))
    }

    /// Writes the object from a local file (a multipart upload when it is large).
    pub fn upload(&self, local: &Path) -> Result<u64, ObjectError> {
        let io = |e: std::io::Error| ObjectError {
            url: self.url.clone(),
            op: "write",
            message: format!("reading {}: {e}", local.display()),
            not_found: false,
        };
        let mut file = std::fs::File::open(local).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len <= CHUNK {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes).map_err(io)?;
            self.put(bytes)?;
            return Ok(len);
        }
        let store = self.store.clone();
        let path = self.path.clone();
        let result: Result<(), object_store::Error> = block_on(async move {
            let upload = store.put_multipart(&path).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK as usize);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| object_store::Error::Generic {
                        store: "local file",
                        source: Box::new(e),
                    })?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await?;
                writer.write(&buf[..n]);
            }
            writer.finish().await?;
            Ok(())
        });
        result.map_err(|e| object_error(&self.url, "write", e))?;
        Ok(len)
    }

    /// Copies the object to a local file (written whole, then renamed into place).
    pub fn download(&self, local: &Path) -> Result<u64, ObjectError> {
        let io = |e: std::io::Error| ObjectError {
            url: self.url.clone(),
            op: "read",
            message: format!("writing {}: {e}", local.display()),
            not_found: false,
        };
        let size = self
            .head()?
            .ok_or_else(|| ObjectError {
                url: self.url.clone(),
                op: "read",
                message: "no such object".into(),
                not_found: true,
            })?
            .size;
        let tmp = local.with_extension("download");
        let mut out = std::fs::File::create(&tmp).map_err(io)?;
        let copied = std::io::copy(&mut self.reader(0, size), &mut out).map_err(io)?;
        if copied != size {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("read {copied} of the object's {size} bytes"),
            )));
        }
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, local).map_err(io)?;
        Ok(copied)
    }

    /// Copies the object to `dest` (server side when the store can).
    pub fn copy_to(&self, dest: &Location) -> Result<(), ObjectError> {
        block_on(self.store.copy(&self.path, &dest.path))
            .map_err(|e| object_error(&self.url, "copy", e))
    }

    /// Deletes the object (a missing object is not an error).
    pub fn delete(&self) -> Result<(), ObjectError> {
        match block_on(self.store.delete(&self.path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(object_error(&self.url, "delete", e)),
        }
    }
}

/// Reads a byte range of an object in ranged GETs of [`CHUNK`] bytes, fetching the next chunk
/// while the current one is read.
pub struct RangeReader {
    location: Location,
    pos: u64,
    end: u64,
    current: Bytes,
    next: Option<tokio::task::JoinHandle<Result<Bytes, object_store::Error>>>,
}

impl RangeReader {
    fn fetch(
        &self,
        at: u64,
    ) -> Option<tokio::task::JoinHandle<Result<Bytes, object_store::Error>>> {
        if at >= self.end {
            return None;
        }
        let range = at..(at + CHUNK).min(self.end);
        let store = self.location.store.clone();
        let path = self.location.path.clone();
        Some(runtime().spawn(async move { store.get_range(&path, range).await }))
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.current.is_empty() {
            if self.pos >= self.end {
                return Ok(0);
            }
            let pending = match self.next.take() {
                Some(handle) => handle,
                None => self.fetch(self.pos).expect("pos < end"),
            };
            let chunk = block_on(pending)
                .map_err(std::io::Error::other)?
                .map_err(|e| std::io::Error::other(object_error(&self.location.url, "read", e)))?;
            if chunk.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: the object ended at byte {} before its planned end {}",
                        self.location.url, self.pos, self.end
                    ),
                ));
            }
            self.pos += chunk.len() as u64;
            self.current = chunk;
            self.next = self.fetch(self.pos);
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

impl Drop for RangeReader {
    fn drop(&mut self) {
        if let Some(handle) = self.next.take() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_read_write_list_and_stream_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let root = Location::parse(&format!("file://{}", dir.path().display())).unwrap();
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 251) as u8).collect();
        root.join("a/big.bin").put(data.clone()).unwrap();
        root.join("a/small.txt").put(b"hello".to_vec()).unwrap();
        let listed: Vec<String> = root
            .list()
            .unwrap()
            .iter()
            .map(|o| root.relative(&o.url).to_owned())
            .collect();
        assert_eq!(listed, ["a/big.bin", "a/small.txt"]);
        // A range across three chunks reads exactly.
        let mut got = Vec::new();
        root.join("a/big.bin")
            .reader(5, 19 << 20)
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, data[5..(19 << 20)]);
        // Upload (multipart past one chunk), download, copy, delete.
        let local = dir.path().join("local.bin");
        std::fs::write(&local, &data).unwrap();
        root.join("b/up.bin").upload(&local).unwrap();
        root.join("b/up.bin")
            .copy_to(&root.join("b/copy.bin"))
            .unwrap();
        let back = dir.path().join("back.bin");
        assert_eq!(
            root.join("b/copy.bin").download(&back).unwrap(),
            data.len() as u64
        );
        assert_eq!(std::fs::read(&back).unwrap(), data);
        root.join("b/copy.bin").delete().unwrap();
        assert_eq!(root.join("b/copy.bin").head().unwrap(), None);
        root.join("b/copy.bin").delete().unwrap();
        // A range past the object's end is an error naming the URL, not a short read.
        let err = root
            .join("a/small.txt")
            .reader(0, 100)
            .read_to_end(&mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("small.txt"), "{err}");
    }

    #[test]
    fn counting_a_byte_over_parallel_ranged_gets_matches_a_plain_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = Location::parse(&format!("file://{}", dir.path().display())).unwrap();
        // 20 MiB: three chunks, the last one short; ranges that start and end mid-chunk.
        let data: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 97) as u8).collect();
        let object = root.join("lines.bin");
        object.put(data.clone()).unwrap();
        let plain = |r: Range<u64>| -> u64 {
            data[r.start as usize..r.end as usize]
                .iter()
                .filter(|&&b| b == 10)
                .count() as u64
        };
        let len = data.len() as u64;
        for range in [
            0..len,
            1..len - 1,
            (8 << 20) - 1..(16 << 20) + 1,
            5..5,
            0..100,
        ] {
            for parallel in [1, 8] {
                assert_eq!(
                    object.count_byte(range.clone(), 10, parallel).unwrap(),
                    plain(range.clone()),
                    "{range:?} with {parallel} in flight"
                );
            }
        }
        // A missing object is an error naming it.
        let e = root.join("missing").count_byte(0..10, 10, 8).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn bad_urls_are_named() {
        let e = Location::parse("s3:///key").unwrap_err().to_string();
        assert!(e.contains("names no bucket"), "{e}");
        let e = Location::parse("file://relative").unwrap_err().to_string();
        assert!(e.contains("absolute path"), "{e}");
    }
}
