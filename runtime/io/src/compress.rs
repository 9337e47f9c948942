//! The byte stream of a text input (lines, JSONL, CSV): the file itself, or its decompressed
//! content for `.gz`, `.zst`, `.bz2` and `.xz` files.
//!
//! Every codec reads concatenated streams (several gzip members, zstd frames, bzip2 or xz
//! streams are one valid file: `cat a.zst b.zst` decompresses to both), shares the ratio cap and
//! the error locations (compressed and decompressed byte offsets) of [`Inflate`], and reads
//! exactly the compressed length the planner saw: data appended later is never read, and a
//! stream that does not end there, or a file whose size changed, fails naming both sizes.
//! A compressed stream cannot seek, so a resumed slice decompresses from the start (a shard of
//! a BGZF file: from the member it starts at, see `bgzf.rs`) and discards the bytes before its
//! cursor. Every stream is inflated on a thread of its own, ahead of the reader (`ahead.rs`).

use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

use crate::ahead::{Ahead, Stoppable};
use crate::reader::{Counted, Inflate, Planned, ReadOptions, SharedCount};
use crate::{FileRange, InputError, InputFile, MemberRange};

/// How a text input's bytes are compressed, chosen by its name's last extension.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// Plain bytes.
    #[default]
    None,
    /// gzip (`.gz`), any number of members.
    Gzip,
    /// Zstandard (`.zst`), any number of frames.
    Zstd,
    /// bzip2 (`.bz2`), any number of streams.
    Bzip2,
    /// xz (`.xz`), any number of streams.
    Xz,
}

impl Compression {
    /// Every codec mr decompresses, with its file extension.
    pub const ALL: [(Compression, &'static str); 4] = [
        (Compression::Gzip, ".gz"),
        (Compression::Zstd, ".zst"),
        (Compression::Bzip2, ".bz2"),
        (Compression::Xz, ".xz"),
    ];

    /// The codec a (lower-cased) file name's extension names, and the name without it.
    pub(crate) fn from_name(name: &str) -> (Compression, &str) {
        Self::ALL
            .iter()
            .find_map(|(c, ext)| name.strip_suffix(ext).map(|stem| (*c, stem)))
            .unwrap_or((Compression::None, name))
    }

    /// The codec's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
        }
    }
}

fn io_error(file: &InputFile, offset: u64) -> impl FnOnce(std::io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: file.display.clone(),
        offset: Some(offset),
        source,
    }
}

/// A byte stream over a text file, positioned at `offset` and ending at `end`; for a compressed
/// file `offset` counts decompressed bytes and the stream is the whole content (`end` unused).
pub(crate) fn text_stream(
    file: &InputFile,
    end: u64,
    offset: u64,
    options: ReadOptions,
) -> Result<Box<dyn BufRead>, InputError> {
    Ok(text_stream_counted(file, end, offset, options)?.0)
}

/// Compressed bytes a decoder has consumed so far (shared with the stream that counts them).
pub(crate) type CompressedCount = SharedCount;

/// [`text_stream`], with, for a compressed file, the count of compressed bytes the decoder has
/// consumed so far (progress against the file's size; the decoder reads ahead of the records
/// handed out by up to its buffers).
pub(crate) fn text_stream_counted(
    file: &InputFile,
    end: u64,
    offset: u64,
    options: ReadOptions,
) -> Result<(Box<dyn BufRead>, Option<CompressedCount>), InputError> {
    let compression = file.codec();
    if compression == Compression::None {
        let f = crate::source::open_range(file, offset, end)?;
        return Ok((
            Box::new(BufReader::with_capacity(
                1 << 20,
                WholeRange {
                    inner: f,
                    pos: offset,
                    end,
                    planned: Planned::whole(file),
                },
            )),
            None,
        ));
    }
    let f = crate::source::open_range(file, 0, file.len)?;
    let (mut stream, compressed) = decompressed(f, file, compression, options, (0, 0), None)?;
    skip_to(&mut stream, file, 0, offset)?;
    Ok((stream, Some(compressed)))
}

/// The decompressed lines of a shard of a BGZF file (see [`crate::bgzf`]): the stream starts at
/// the member at compressed byte `range.start`, is positioned at decompressed byte `offset` of
/// the file (a line start in the shard), and ends at the shard's last line end; the shard that
/// ends the file reads to its end, checking the planned length.
pub(crate) fn member_stream(
    file: &InputFile,
    range: &FileRange,
    members: &MemberRange,
    offset: u64,
    options: ReadOptions,
) -> Result<(Box<dyn BufRead>, CompressedCount), InputError> {
    if offset < members.start || offset > members.end {
        return Err(crate::reader::bad_cursor(file, &offset.to_string()));
    }
    // A file whose size changed since planning is not the file planned: its members may have
    // moved. (A stream ending early is caught by the decoder; this catches the rest cheaply.)
    if let Some(changed) = Planned::whole(file).changed(range.start) {
        return Err(InputError::Corrupt {
            path: file.display.clone(),
            message: changed,
        });
    }
    let f = crate::source::open_range(file, range.start, file.len)?;
    let limit = (!members.last).then(|| members.end - members.member);
    let (mut stream, compressed) = decompressed(
        f,
        file,
        Compression::Gzip,
        options,
        (range.start, members.member),
        limit,
    )?;
    skip_to(&mut stream, file, members.member, offset)?;
    Ok((stream, compressed))
}

/// Discards the decompressed bytes from `from` (where the stream is) to `offset` (a resumed
/// cursor, or a shard's first line start).
fn skip_to(
    stream: &mut Box<dyn BufRead>,
    file: &InputFile,
    from: u64,
    offset: u64,
) -> Result<(), InputError> {
    let want = offset - from;
    let skipped = std::io::copy(&mut stream.take(want), &mut std::io::sink())
        .map_err(io_error(file, from))?;
    if skipped != want {
        return Err(InputError::Corrupt {
            path: file.display.clone(),
            message: format!(
                "the committed cursor is at decompressed byte {offset}, but the stream ends at {}; the file changed",
                from + skipped
            ),
        });
    }
    Ok(())
}

/// The decompressed content of a compressed file from compressed byte `base.0` (decompressed
/// byte `base.1`), read to exactly its planned length, or `limit` decompressed bytes. It is
/// inflated on a thread of its own, ahead of the reader (see [`crate::ahead`]).
fn decompressed(
    f: Box<dyn Read + Send>,
    file: &InputFile,
    compression: Compression,
    options: ReadOptions,
    base: (u64, u64),
    limit: Option<u64>,
) -> Result<(Box<dyn BufRead>, SharedCount), InputError> {
    let compressed = SharedCount::default();
    let count = compressed.clone();
    let planned = Planned::whole(file);
    let ahead = Ahead::spawn(&file.display, limit, move |stop| {
        decoder(
            Stoppable { inner: f, stop },
            count,
            planned,
            compression,
            options,
            base,
        )
    })
    .map_err(io_error(file, base.0))?;
    Ok((Box::new(ahead), compressed))
}

/// The decoder stack of a compressed stream: the file's bytes, counted, through the codec's
/// decoder, inside [`Inflate`] (offsets in messages, the ratio cap, the planned end).
pub(crate) fn decoder(
    f: impl Read + Send + 'static,
    count: SharedCount,
    planned: Planned,
    compression: Compression,
    options: ReadOptions,
    base: (u64, u64),
) -> Box<dyn Read> {
    let counted = Counted::with_count(BufReader::with_capacity(256 << 10, f), count.clone());
    let inflate = |inner: Box<dyn Read>| Inflate {
        inner,
        compressed: count,
        out: 0,
        base,
        ratio: options.max_inflate_ratio,
        what: compression.name(),
        planned: Some(planned),
    };
    // Each decoder continues across concatenated members, frames or streams (a decoder that
    // stopped after the first would lose the rest silently).
    let decoder: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(counted)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(counted) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(Failing(Some(e))),
        },
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(counted)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(counted)),
        Compression::None => unreachable!("only compressed files are decompressed"),
    };
    Box::new(inflate(decoder))
}

/// A reader whose first read fails with a decoder's construction error.
struct Failing(Option<std::io::Error>);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| std::io::Error::other("the decoder could not start")))
    }
}

/// A plain file's range that must be there whole: a file cut short since planning fails instead
/// of ending the range early.
struct WholeRange<R> {
    inner: R,
    /// The file offset reached, and where the range ends.
    pos: u64,
    end: u64,
    planned: Planned,
}

impl<R: Read> Read for WholeRange<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        if n == 0 && self.pos < self.end && !buf.is_empty() {
            return Err(std::io::Error::other(
                self.planned.changed(self.pos).unwrap_or_else(|| {
                    format!(
                        "the file ended at byte {}, before its planned end at byte {}",
                        self.pos, self.end
                    )
                }),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{input, read, read_error, read_resumed};
    use std::io::Write;

    /// `data` compressed with `codec` (best speed; the tests need the format, not the ratio).
    pub(crate) fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
        match codec {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => {
                // With a content checksum, as the zstd tool writes by default: without one a
                // damaged literal decodes to wrong bytes undetected.
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
                e.include_checksum(true).unwrap();
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    pub(crate) const CODECS: [Compression; 4] = [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Bzip2,
        Compression::Xz,
    ];

    /// A file name with `codec`'s extension after `stem`.
    fn named(stem: &str, codec: Compression) -> String {
        let ext = Compression::ALL
            .iter()
            .find(|(c, _)| *c == codec)
            .map_or("", |(_, e)| e);
        format!("{stem}{ext}")
    }

    fn text(lines: usize) -> String {
        (0..lines)
            .map(|i| format!("line {i} {}\n", i * 7919))
            .collect()
    }

    #[test]
    fn every_codec_reads_concatenated_streams_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        for codec in CODECS {
            // Three streams (members, frames) in one file, the last one empty.
            let mut data = compress(codec, b"one\ntwo\n");
            data.extend(compress(codec, b"three\nfour"));
            data.extend(compress(codec, b""));
            let name = named("x.txt", codec);
            let files = vec![input(dir.path(), &name, &data)];
            let key = |n: u32| format!("{name}:{n}");
            let expected = vec![
                (key(1), "one".to_owned()),
                (key(2), "two".to_owned()),
                (key(3), "three".to_owned()),
                (key(4), "four".to_owned()),
            ];
            assert_eq!(read(&files, 4).unwrap(), expected, "{codec:?}");
            let plan = crate::plan(&files, 4).unwrap();
            assert_eq!(plan.len(), 1, "a compressed stream is one shard");
            for k in 1..4 {
                let (got, _) = read_resumed(&files, &plan, k, ReadOptions::default()).unwrap();
                assert_eq!(got, expected, "{codec:?}, {k} records per slice");
            }
        }
    }

    #[test]
    fn every_codec_serves_every_text_format() {
        let dir = tempfile::tempdir().unwrap();
        for codec in CODECS {
            let files = vec![
                input(
                    dir.path(),
                    &named("r.jsonl", codec),
                    &compress(codec, b"{\"a\":1}\n\n[2]\n"),
                ),
                input(
                    dir.path(),
                    &named("t.csv", codec),
                    &compress(codec, b"x,y\n1,\"a\nb\"\n"),
                ),
            ];
            let got: Vec<String> = read(&files, 2)
                .unwrap()
                .into_iter()
                .map(|(_, v)| v)
                .collect();
            assert_eq!(
                got,
                [r#"{"a":1}"#, "[2]", r#"{"x":"1","y":"a\nb"}"#],
                "{codec:?}"
            );
        }
    }

    #[test]
    fn corrupt_and_truncated_streams_name_the_file_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let text = text(20_000);
        for codec in CODECS {
            let mut data = compress(codec, text.as_bytes());
            let mid = data.len() / 2;
            for b in &mut data[mid..mid + 64] {
                *b ^= 0x55;
            }
            let name = named("bad", codec);
            let files = vec![input(dir.path(), &name, &data)];
            let e = read(&files, 1).map(|r| r.len()).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("cannot read {name} at byte ")),
                "{e}"
            );
            assert!(
                e.contains(&format!(
                    "corrupt or truncated {} data at compressed byte",
                    codec.name()
                )) && e.contains("(decompressed byte"),
                "{e}"
            );
            // Truncated: the file ends inside a stream.
            let data = compress(codec, text.as_bytes());
            let name = named("cut", codec);
            let files = vec![input(dir.path(), &name, &data[..data.len() / 3])];
            let e = read(&files, 1).map(|r| r.len()).unwrap_err().to_string();
            assert!(
                e.contains(&name) && e.contains("compressed byte"),
                "{codec:?}: {e}"
            );
        }
    }

    #[test]
    fn a_bomb_is_refused_by_the_ratio_cap_in_every_codec() {
        let dir = tempfile::tempdir().unwrap();
        let same = vec![b'a'; 8 << 20];
        for codec in CODECS {
            let files = vec![input(
                dir.path(),
                &named("bomb", codec),
                &compress(codec, &same),
            )];
            let plan = crate::plan(&files, 1).unwrap();
            let options = ReadOptions {
                max_inflate_ratio: 10,
                max_record_bytes: 16 << 20,
                ..Default::default()
            };
            let e = read_error(&files, &plan, options);
            assert!(
                e.contains("more than the ratio cap of 10"),
                "{codec:?}: {e}"
            );
        }
    }

    #[test]
    fn a_record_over_the_cap_is_refused_in_every_codec() {
        let dir = tempfile::tempdir().unwrap();
        // Letters that do not compress much, so the ratio cap is not what stops the line.
        let mut rng = mr_corpus::SplitMix64::new(1);
        let mut data = b"ok\n".to_vec();
        data.extend((0..2 << 20).map(|_| b'a' + rng.below(26) as u8));
        data.extend(b"\n");
        for codec in CODECS {
            let name = named("long", codec);
            let files = vec![input(dir.path(), &name, &compress(codec, &data))];
            let plan = crate::plan(&files, 1).unwrap();
            let options = ReadOptions {
                max_record_bytes: 1 << 20,
                ..Default::default()
            };
            let e = read_error(&files, &plan, options);
            assert_eq!(
                e,
                format!(
                    "bad record at {name}:2 (byte 3): line is longer than the record cap of 1048576 bytes"
                )
            );
        }
    }

    #[test]
    fn empty_files_give_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = vec![
            input(dir.path(), "e.txt", b""),
            input(dir.path(), "e.jsonl", b""),
            input(dir.path(), "e.csv", b""),
            input(dir.path(), "h.csv", b"a,b\n"),
        ];
        for codec in CODECS {
            files.push(input(dir.path(), &named("e", codec), &compress(codec, b"")));
            files.push(input(
                dir.path(),
                &named("e.csv", codec),
                &compress(codec, b""),
            ));
        }
        assert_eq!(read(&files, 3).unwrap(), vec![]);
    }

    #[test]
    fn a_compressed_file_is_read_to_exactly_its_planned_length() {
        let dir = tempfile::tempdir().unwrap();
        for codec in CODECS {
            let name = named("grow", codec);
            let first = compress(codec, b"one\ntwo\n");
            let files = vec![input(dir.path(), &name, &first)];
            let plan = crate::plan(&files, 1).unwrap();
            // Appended to after planning (a log being written): the new data is not read,
            // and the change is refused rather than passed over.
            let mut grown = first.clone();
            grown.extend(compress(codec, b"three\n"));
            std::fs::write(&files[0].path, &grown).unwrap();
            let e = read_error(&files, &plan, ReadOptions::default());
            assert!(
                e.contains(&name)
                    && e.contains(&format!("the file changed since the job was planned: it had {} bytes then and has {} now", first.len(), grown.len())),
                "{codec:?}: {e}"
            );
            // Cut back to a stream boundary: it would decompress cleanly, but short.
            let mut two = compress(codec, b"one\n");
            let second = compress(codec, b"two\n");
            let planned = [two.clone(), second].concat();
            std::fs::write(&files[0].path, &planned).unwrap();
            let files = vec![input(dir.path(), &name, &planned)];
            let plan = crate::plan(&files, 1).unwrap();
            std::fs::write(&files[0].path, &two).unwrap();
            let e = read_error(&files, &plan, ReadOptions::default());
            assert!(
                e.contains(&format!(
                    "it had {} bytes then and has {} now",
                    planned.len(),
                    two.len()
                )),
                "{codec:?}: {e}"
            );
            // A stream that does not end at the planned length (the planner saw a file being
            // written) fails, although the file is unchanged since.
            two.truncate(two.len() - 3);
            let files = vec![input(dir.path(), &name, &two)];
            let plan = crate::plan(&files, 1).unwrap();
            let e = read_error(&files, &plan, ReadOptions::default());
            assert!(e.contains("corrupt or truncated"), "{codec:?}: {e}");
        }
    }

    #[test]
    fn a_plain_file_cut_short_since_planning_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![input(dir.path(), "cut.txt", b"one\ntwo\nthree\n")];
        let plan = crate::plan(&files, 1).unwrap();
        std::fs::write(&files[0].path, b"one\n").unwrap();
        let e = read_error(&files, &plan, ReadOptions::default());
        assert_eq!(
            e,
            "cannot read cut.txt at byte 4: the file changed since the job was planned: it had 14 bytes then and has 4 now (stopped at byte 4 of the file)"
        );
    }

    #[test]
    fn names_pick_the_codec_by_last_extension() {
        assert_eq!(
            Compression::from_name("a.csv.zst"),
            (Compression::Zstd, "a.csv")
        );
        assert_eq!(Compression::from_name("a.bz2"), (Compression::Bzip2, "a"));
        assert_eq!(
            Compression::from_name("a.jsonl.xz"),
            (Compression::Xz, "a.jsonl")
        );
        assert_eq!(Compression::from_name("a.gz"), (Compression::Gzip, "a"));
        assert_eq!(
            Compression::from_name("a.gz.txt"),
            (Compression::None, "a.gz.txt")
        );
    }
}
