//! What a file's first bytes say it is, checked once at planning for every text input, so a
//! compressed or binary file is never read as lines of garbage: a `.txt` that is really gzip, a
//! `.zst` that is really plain text, a PNG named `.csv`.
//!
//! Only formats with an unambiguous signature are recognised (magic numbers of at least three
//! bytes, or bytes no text file starts with); brotli has no signature and is not detected.

use crate::compress::Compression;

/// A kind of file recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    /// A compression mr decompresses.
    Compressed(Compression),
    /// A zip archive (read with `zip:` or a `.zip` name).
    Zip,
    /// A SQLite database (read with `sqlite:PATH?table=...`).
    Sqlite,
    /// Anything else mr does not read: its name.
    Other(&'static str),
}

impl Sniffed {
    /// The kind's name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Sniffed::Compressed(c) => match c {
                Compression::Gzip => "gzip data",
                Compression::Zstd => "zstd data",
                Compression::Bzip2 => "bzip2 data",
                Compression::Xz => "xz data",
                Compression::None => "text",
            },
            Sniffed::Zip => "a zip archive",
            Sniffed::Sqlite => "a SQLite database",
            Sniffed::Other(name) => name,
        }
    }

    /// What to do with such a file, for the message that refuses it as text.
    pub(crate) fn advice(self) -> String {
        match self {
            Sniffed::Compressed(c) => {
                let ext = Compression::ALL
                    .iter()
                    .find(|(k, _)| *k == c)
                    .map_or("", |(_, ext)| ext);
                format!("rename it to end in {ext} to have it decompressed")
            }
            Sniffed::Zip => "name it .zip or give it as zip:PATH to read its members".into(),
            Sniffed::Sqlite => "give it as sqlite:PATH?table=NAME to read a table".into(),
            Sniffed::Other(_) => "mr does not read this format; convert it to text first".into(),
        }
    }
}

/// Bytes to read from the start of a file for [`sniff`] (tar's signature is at 257).
pub(crate) const SNIFF_BYTES: usize = 512;

/// Signatures at offset 0.
const MAGIC: &[(&[u8], Sniffed)] = &[
    (b"\x1f\x8b", Sniffed::Compressed(Compression::Gzip)),
    (b"\x28\xb5\x2f\xfd", Sniffed::Compressed(Compression::Zstd)),
    (b"\xfd7zXZ\x00", Sniffed::Compressed(Compression::Xz)),
    (b"PK\x03\x04", Sniffed::Zip),
    (b"PK\x05\x06", Sniffed::Zip),
    (b"SQLite format 3\x00", Sniffed::Sqlite),
    (b"7z\xbc\xaf\x27\x1c", Sniffed::Other("a 7z archive")),
    (b"Rar!\x1a\x07", Sniffed::Other("a RAR archive")),
    (b"\x04\x22\x4d\x18", Sniffed::Other("LZ4 data")),
    (b"LZIP\x01", Sniffed::Other("lzip data")),
    (b"\x1f\x9d", Sniffed::Other("compress (.Z) data")),
    (b"\x5d\x00\x00", Sniffed::Other("LZMA (.lzma) data")),
    (b"\x89PNG\r\n\x1a\n", Sniffed::Other("a PNG image")),
    (b"\xff\xd8\xff", Sniffed::Other("a JPEG image")),
    (b"GIF87a", Sniffed::Other("a GIF image")),
    (b"GIF89a", Sniffed::Other("a GIF image")),
    (b"%PDF-", Sniffed::Other("a PDF document")),
    (b"\x7fELF", Sniffed::Other("an ELF executable")),
    (b"\x00asm", Sniffed::Other("a WebAssembly module")),
];

/// What `head` (a file's first bytes, up to [`SNIFF_BYTES`]) says the file is; `None` for
/// anything not recognised, which is read as text.
pub(crate) fn sniff(head: &[u8]) -> Option<Sniffed> {
    if let Some((_, kind)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(*kind);
    }
    // zstd skippable frames (0x184D2A50..=0x184D2A5F, little-endian) also start zstd files.
    if head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18] {
        return Some(Sniffed::Compressed(Compression::Zstd));
    }
    // bzip2: "BZh", a block size digit, then a block or end-of-stream signature (so a text
    // file that happens to start with "BZh" is still text).
    if head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && (head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
            || head[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
    {
        return Some(Sniffed::Compressed(Compression::Bzip2));
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Some(Sniffed::Other("a tar archive"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::tests::{CODECS, compress};

    #[test]
    fn every_codec_mr_reads_is_recognised() {
        for codec in CODECS {
            let data = compress(codec, b"some text\n");
            assert_eq!(sniff(&data), Some(Sniffed::Compressed(codec)), "{codec:?}");
            // Even the empty stream of each codec.
            assert_eq!(
                sniff(&compress(codec, b"")),
                Some(Sniffed::Compressed(codec))
            );
        }
    }

    #[test]
    fn text_is_not_mistaken_for_a_format() {
        for text in [
            &b"BZh9 is not bzip2\n"[..],
            b"PK is fine\n",
            b"]\n",
            b"",
            b"\xef\xbb\xbfa byte order mark\n",
            "日本語\n".as_bytes(),
        ] {
            assert_eq!(sniff(text), None, "{text:?}");
        }
    }

    #[test]
    fn binary_formats_are_named() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(Sniffed::Other("a PNG image"))
        );
        assert_eq!(sniff(b"SQLite format 3\x00...."), Some(Sniffed::Sqlite));
        assert_eq!(
            sniff(b"\x7fELF\x02\x01"),
            Some(Sniffed::Other("an ELF executable"))
        );
        assert_eq!(
            sniff(b"7z\xbc\xaf\x27\x1c\x00"),
            Some(Sniffed::Other("a 7z archive"))
        );
        let mut tar = vec![0u8; 512];
        tar[..5].copy_from_slice(b"a.txt");
        tar[257..263].copy_from_slice(b"ustar\x00");
        assert_eq!(sniff(&tar), Some(Sniffed::Other("a tar archive")));
        assert_eq!(
            sniff(&[0x5e, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]),
            Some(Sniffed::Compressed(Compression::Zstd))
        );
    }
}
