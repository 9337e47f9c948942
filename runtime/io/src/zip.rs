//! Zip archives: the lines of every member (`zip:` or a `.zip` path), or one record per member
//! (`zip-members:`; key = member name, value = its bytes).
//!
//! An archive is split at member boundaries (never inside a member: a deflate stream cannot
//! seek), into contiguous runs of members of near-equal uncompressed size. A member is read
//! from its raw data with our own decoder, so the reader owns its file handle (no borrow of the
//! archive) and can check the CRC-32 and the decompression ratio itself. Stored and deflated
//! members are read; other methods and encrypted members are refused by name.

use std::io::{BufReader, Read};

use crate::format::{Format, InputFormat};
use crate::lines::LinesReader;
use crate::reader::{BadRecord, Counted, Inflate, RangeReader, ReadOptions, Step, bad_cursor};
use crate::{FileRange, InputError, InputFile, Shard};

/// The `zip:` (lines of every member) and `zip-members:` formats.
pub(crate) struct Zip;

impl InputFormat for Zip {
    fn plan(
        &self,
        files: &[InputFile],
        first: usize,
        shards: u32,
    ) -> Result<(Vec<Shard>, usize), InputError> {
        let shards = plan(&files[first], shards)?
            .into_iter()
            .map(|(start, end)| crate::format::one_range(first, start, end))
            .collect();
        Ok((shards, 1))
    }

    fn open<'a>(
        &self,
        file: &'a InputFile,
        range: &FileRange,
        inner: &str,
        options: ReadOptions,
    ) -> Result<Box<dyn RangeReader + 'a>, InputError> {
        Ok(Box::new(ZipReader::open(file, range, inner, options)?))
    }
}

struct Member {
    name: String,
    is_dir: bool,
    method: zip::CompressionMethod,
    encrypted: bool,
    data_start: u64,
    compressed: u64,
    size: u64,
    crc: u32,
}

fn broken(file: &InputFile, e: impl std::fmt::Display) -> InputError {
    InputError::Corrupt {
        path: file.display.clone(),
        message: format!("not a readable zip archive (truncated or damaged?): {e}"),
    }
}

fn members(file: &InputFile) -> Result<Vec<Member>, InputError> {
    let f = crate::source::open_seekable(file)?;
    let mut archive = zip::ZipArchive::new(f).map_err(|e| broken(file, e))?;
    (0..archive.len())
        .map(|i| {
            let m = archive.by_index_raw(i).map_err(|e| broken(file, e))?;
            Ok(Member {
                name: m.name().map_err(|e| broken(file, e))?.into_owned(),
                is_dir: m.is_dir(),
                method: m.compression(),
                encrypted: m.encrypted(),
                data_start: m.data_start().unwrap_or(0),
                compressed: m.compressed_size(),
                size: m.size(),
                crc: m.crc32(),
            })
        })
        .collect()
}

/// Member index ranges `[a, b)` of near-equal uncompressed size, at most `shards` of them.
fn plan(file: &InputFile, shards: u32) -> Result<Vec<(u64, u64)>, InputError> {
    let members = members(file)?;
    let n = members.len() as u64;
    let total: u64 = members.iter().map(|m| m.size.max(1)).sum();
    let mut out = Vec::new();
    let (mut start, mut acc) = (0u64, 0u64);
    for (i, m) in members.iter().enumerate() {
        acc += m.size.max(1);
        let k = out.len() as u64 + 1;
        if acc * u64::from(shards) >= total * k && (i as u64 + 1) < n {
            out.push((start, i as u64 + 1));
            start = i as u64 + 1;
        }
    }
    out.push((start, n));
    Ok(out)
}

struct ZipReader {
    file: InputFile,
    members: Vec<Member>,
    /// Member being read, and the end of the range.
    member: u64,
    end: u64,
    options: ReadOptions,
    /// Lines of the current member (zip lines), and its CRC check.
    lines: Option<LinesReader>,
    resume: Option<(u64, u64)>,
    buf: Vec<u8>,
}

impl ZipReader {
    fn open(
        file: &InputFile,
        range: &FileRange,
        inner: &str,
        options: ReadOptions,
    ) -> Result<Self, InputError> {
        let (member, resume) = if inner.is_empty() {
            (range.start, None)
        } else {
            let nums: Vec<u64> = inner
                .split(':')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad_cursor(file, inner))?;
            match nums[..] {
                [m] => (m, None),
                [m, o, l] => (m, Some((o, l))),
                _ => return Err(bad_cursor(file, inner)),
            }
        };
        Ok(ZipReader {
            file: file.clone(),
            members: members(file)?,
            member,
            end: range.end,
            options,
            lines: None,
            resume,
            buf: Vec::new(),
        })
    }

    fn name(&self, m: &Member) -> String {
        format!("{}/{}", self.file.display, m.name)
    }

    /// The decompressed bytes of member `i`, CRC-checked at its end (the check's failure is
    /// reported as a read error of the stream).
    fn stream(&self, i: usize) -> Result<Box<dyn Read>, InputError> {
        let m = &self.members[i];
        let name = self.name(m);
        if m.encrypted {
            return Err(InputError::Corrupt {
                path: name,
                message: "the member is encrypted; mr does not read encrypted zip members".into(),
            });
        }
        let f = crate::source::open_range(&self.file, m.data_start, m.data_start + m.compressed)?;
        let (counted, compressed) = Counted::new(BufReader::with_capacity(256 << 10, f));
        let decoded: Box<dyn Read> = match m.method {
            zip::CompressionMethod::Stored => Box::new(counted),
            zip::CompressionMethod::Deflated => Box::new(flate2::bufread::DeflateDecoder::new(
                BufReader::new(counted),
            )),
            other => {
                return Err(InputError::Corrupt {
                    path: name,
                    message: format!(
                        "compression method {other:?} is not supported (only stored and deflated members are read)"
                    ),
                });
            }
        };
        Ok(Box::new(Checked {
            inner: Inflate {
                inner: decoded,
                compressed,
                out: 0,
                base: (0, 0),
                ratio: self.options.max_inflate_ratio,
                what: "zip member",
                planned: None,
            },
            crc: flate2::Crc::new(),
            expected_crc: m.crc,
            expected_size: m.size,
        }))
    }

    fn io(&self, m: usize, offset: u64) -> impl FnOnce(std::io::Error) -> InputError + '_ {
        let path = self.name(&self.members[m]);
        move |source| InputError::Io {
            path,
            offset: Some(offset),
            source,
        }
    }
}

/// Checks the member's size and CRC-32 when its stream ends.
struct Checked<R> {
    inner: R,
    crc: flate2::Crc,
    expected_crc: u32,
    expected_size: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            let size = u64::from(self.crc.amount());
            if size != self.expected_size & 0xffff_ffff || self.crc.sum() != self.expected_crc {
                return Err(std::io::Error::other(format!(
                    "the member is damaged: {size} bytes with CRC-32 {:08x}, the archive says {} bytes with {:08x}",
                    self.crc.sum(),
                    self.expected_size,
                    self.expected_crc
                )));
            }
        }
        Ok(n)
    }
}

impl RangeReader for ZipReader {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        self.read_record(out, None)
    }

    fn next_located(
        &mut self,
        out: &mut Vec<u8>,
        locations: &mut mr_codec::Locations,
    ) -> Result<Step, InputError> {
        self.read_record(out, Some(locations))
    }

    fn cursor(&self) -> String {
        match &self.lines {
            Some(lines) => format!("{}:{}", self.member, lines.cursor()),
            None => match self.resume {
                Some((o, l)) => format!("{}:{o}:{l}", self.member),
                None => self.member.to_string(),
            },
        }
    }
}

impl ZipReader {
    /// The next record: keyed (0.1.x), or keyless with its location noted in `locations`
    /// (0.2.0).
    fn read_record(
        &mut self,
        out: &mut Vec<u8>,
        mut locations: Option<&mut mr_codec::Locations>,
    ) -> Result<Step, InputError> {
        loop {
            if let Some(lines) = &mut self.lines {
                let step = match locations.as_deref_mut() {
                    Some(locations) => lines.next_located(out, locations)?,
                    None => lines.next(out)?,
                };
                match step {
                    Step::End => {
                        self.lines = None;
                        self.member += 1;
                        continue;
                    }
                    step => return Ok(step),
                }
            }
            if self.member >= self.end {
                return Ok(Step::End);
            }
            let i = self.member as usize;
            let m = self.members.get(i).ok_or_else(|| InputError::Corrupt {
                path: self.file.display.clone(),
                message: format!("member {i} is missing: the archive changed since planning"),
            })?;
            if m.is_dir {
                self.member += 1;
                continue;
            }
            if self.file.format == Format::ZipMembers {
                let name = m.name.clone();
                let declared = m.size;
                let cap = self.options.max_record_bytes;
                let mut stream = self.stream(i)?;
                self.buf.clear();
                let n = (&mut stream)
                    .take(cap as u64 + 1)
                    .read_to_end(&mut self.buf)
                    .map_err(self.io(i, 0))?;
                self.member += 1;
                if n > cap {
                    let reason = format!(
                        "member is larger than the record cap of {cap} bytes ({declared} bytes declared)"
                    );
                    return Ok(Step::Bad(
                        BadRecord {
                            location: self.name(&self.members[i]),
                            reason,
                        },
                        self.members[i].compressed,
                    ));
                }
                match locations {
                    Some(locations) => {
                        locations.push_text(name.as_bytes());
                        mr_codec::put_kv(out, b"", &self.buf);
                    }
                    None => mr_codec::put_kv(out, name.as_bytes(), &self.buf),
                }
                return Ok(Step::Record(n as u64));
            }
            // Zip lines: open the member (skipping what a resumed cursor says was read).
            let (offset, line) = self.resume.take().unwrap_or((0, 1));
            let mut stream = self.stream(i)?;
            let skipped = std::io::copy(&mut (&mut stream).take(offset), &mut std::io::sink())
                .map_err(self.io(i, 0))?;
            if skipped != offset {
                return Err(InputError::Corrupt {
                    path: self.name(&self.members[i]),
                    message: format!(
                        "the committed cursor is at byte {offset}, but the member ends at {skipped}"
                    ),
                });
            }
            self.lines = Some(LinesReader {
                compressed: None,
                source_cap: u64::MAX,
                reader: Box::new(BufReader::with_capacity(1 << 20, stream)),
                display: self.name(&self.members[i]),
                offset,
                line,
                base: None,
                shared: None,
                json: false,
                cap: self.options.max_record_bytes,
                buf: Vec::new(),
                key: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{input, read, read_error, read_resumed};
    use std::io::Write;

    pub(crate) fn zip_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (i, (name, data)) in members.iter().enumerate() {
            let method = if i % 2 == 0 {
                zip::CompressionMethod::Deflated
            } else {
                zip::CompressionMethod::Stored
            };
            w.start_file(
                *name,
                zip::write::SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn zip_lines_and_members_split_at_members_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let data = zip_bytes(&[
            ("a.txt", b"one\ntwo\n"),
            ("b.txt", b""),
            ("c/d.txt", b"three\r\nfour"),
        ]);
        let lines = vec![input(dir.path(), "x.zip", &data)];
        let expected: Vec<(String, String)> = [
            ("x.zip/a.txt:1", "one"),
            ("x.zip/a.txt:2", "two"),
            ("x.zip/c/d.txt:1", "three"),
            ("x.zip/c/d.txt:2", "four"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for shards in 1..5 {
            let plan = crate::plan(&lines, shards).unwrap();
            assert!(plan.len() <= shards as usize);
            for k in 1..4 {
                let (got, _) = read_resumed(&lines, &plan, k, ReadOptions::default()).unwrap();
                assert_eq!(got, expected, "{shards} shards, {k} per slice");
            }
        }
        let members = crate::resolve_inputs(
            &[format!(
                "zip-members:{}",
                dir.path().join("x.zip").display()
            )],
            None,
        )
        .unwrap();
        let got = read(&members, 3).unwrap();
        assert_eq!(
            got.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            [
                ("a.txt", "one\ntwo\n"),
                ("b.txt", ""),
                ("c/d.txt", "three\r\nfour")
            ]
        );
        assert_eq!(
            crate::plan(&members, 3).unwrap().len(),
            2,
            "three members, b.txt is empty"
        );
    }

    #[test]
    fn truncated_and_damaged_zips_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let data = zip_bytes(&[("a.txt", &text)]);
        let cut = vec![input(dir.path(), "cut.zip", &data[..data.len() - 30])];
        let e = crate::plan(&cut, 1).unwrap_err().to_string();
        assert!(
            e.starts_with("cut.zip: not a readable zip archive (truncated or damaged?)"),
            "{e}"
        );
        // Flip bytes inside the deflated data: the decoder or the CRC check notices.
        let mut bad = data.clone();
        for b in &mut bad[100..120] {
            *b ^= 0xa5;
        }
        let files = vec![input(dir.path(), "bad.zip", &bad)];
        let e = read(&files, 1).unwrap_err().to_string();
        assert!(e.contains("bad.zip/a.txt"), "{e}");
        assert!(e.contains("damaged") || e.contains("corrupt"), "{e}");
    }

    #[test]
    fn a_zip_bomb_and_an_oversized_member_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![b'0'; 4 << 20];
        let data = zip_bytes(&[("z", &zeros)]);
        let files = crate::resolve_inputs(
            &[format!(
                "zip-members:{}",
                input(dir.path(), "bomb.zip", &data).path.display()
            )],
            None,
        )
        .unwrap();
        let plan = crate::plan(&files, 1).unwrap();
        let options = ReadOptions {
            max_inflate_ratio: 20,
            ..Default::default()
        };
        let e = read_error(&files, &plan, options);
        assert!(e.contains("more than the ratio cap of 20"), "{e}");
        let options = ReadOptions {
            max_record_bytes: 1 << 20,
            skip_bad: true,
            ..Default::default()
        };
        let (got, bad) = read_resumed(&files, &plan, u64::MAX, options).unwrap();
        assert!(got.is_empty());
        assert!(
            bad[0]
                .reason
                .starts_with("member is larger than the record cap"),
            "{bad:?}"
        );
    }
}
