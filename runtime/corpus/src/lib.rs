//! `mr-corpus`: deterministic text corpora for the demo, the tests and the benchmarks.
//!
//! A corpus is a stream of lines of words that looks enough like prose to exercise word count
//! and inverted-index jobs:
//!
//! - Words come from a fixed vocabulary (the same for every seed) of about 4,300 tokens: common
//!   English words (including a few contractions such as `don't`), about 4,000 generated
//!   pseudo-words (`zeabo`, `veckpou`, ...) and some tokens with digits (`r2d2`, `1999`, `x86`).
//!   Their frequencies follow a Zipf law (s = 1): rank 1 (`the`) is about 11% of all words, and
//!   every word of the vocabulary is reachable.
//! - Words appear in lower case (~80%), Title case (~15%) or UPPER case (~5%); the first word of
//!   a line is usually Title case.
//! - Words are separated by spaces and punctuation (`, . ; : ! ? -`), and are sometimes wrapped
//!   in quotes or parentheses (`"word"`, `'word'`, `(word)`) or given a possessive `'s`. Lines
//!   usually end with `.`, `!` or `?` and are typically 40 to 120 bytes long.
//!
//! With [`CorpusSpec::edge_cases`] the corpus additionally contains, deterministically, the input
//! a line- or word-splitter gets wrong:
//!
//! - empty lines and whitespace-only lines;
//! - lines ending in `\r\n` (about one in eight);
//! - non-ASCII UTF-8 words (`café`, `Über`, `naïve`, `日本語`, `😀`, a combining accent, a ZWJ
//!   emoji, right-to-left scripts, ...);
//! - tabs, both between words and at the start of lines;
//! - very long lines (100 to 300 KB): the first one starts within the first 768 KiB of output
//!   when there is room for it, then roughly one per 1.5 MiB;
//! - no newline at the end of the output (the last line has no terminator).
//!
//! The first line of an edge-case corpus starts with a non-ASCII word followed by a tab and ends
//! in `\r\n`, and the second line is empty, so even a small edge-case corpus has those features.
//! The output is always valid UTF-8; without edge cases it is ASCII and every line ends in `\n`.
//!
//! The same [`CorpusSpec`] always produces the same bytes (on every platform), whatever the
//! writer. Generation runs at several hundred MB/s on one core: words are copied from a
//! pre-rendered arena into a large buffer, with one pseudo-random draw per word.

mod splitmix;

pub use splitmix::{SplitMix64, mix64};

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What to generate: how much, from which seed, and whether to include edge cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CorpusSpec {
    /// Minimum number of bytes to write; the output exceeds it by at most one line.
    pub bytes: u64,
    /// Seed of the pseudo-random generator: the same spec always produces the same bytes.
    pub seed: u64,
    /// Whether to include edge cases (empty lines, CRLF, non-ASCII words, tabs, very long lines,
    /// no final newline); see the crate documentation.
    pub edge_cases: bool,
}

/// Writes about `spec.bytes` bytes (never less; at most one line more) of text; returns bytes
/// written. Same spec => identical bytes.
///
/// The writer receives large chunks (about 1 MiB), so there is no need to wrap it in a
/// `BufWriter`; it is flushed at the end. With `spec.bytes == 0` nothing is written.
pub fn write_corpus<W: Write>(mut out: W, spec: &CorpusSpec) -> io::Result<u64> {
    let mut generator = Generator::new(vocab(), spec);
    let mut written = 0u64;
    while written + (generator.buf.len() as u64) < spec.bytes {
        // How far into `buf` the content must reach for the output to be long enough.
        let goal = usize::try_from(spec.bytes - written).unwrap_or(usize::MAX);
        let finished = generator.line(goal, written + generator.buf.len() as u64);
        if finished || generator.buf.len() >= FLUSH_AT {
            out.write_all(generator.buf.as_slice())?;
            written += generator.buf.len() as u64;
            generator.buf.clear();
        }
        if finished {
            break;
        }
    }
    out.write_all(generator.buf.as_slice())?;
    written += generator.buf.len() as u64;
    out.flush()?;
    Ok(written)
}

/// Writes `files` files named `part-000.txt`, `part-001.txt`, ... into `dir` (created if
/// missing), splitting `spec.bytes` over them, each with a seed derived from spec.seed and the
/// file index. Returns the paths in order.
///
/// File `i` gets `spec.bytes / files` bytes (the first `spec.bytes % files` files one more) and
/// is exactly `write_corpus` of a spec with that size, the seed [`file_seed`]`(spec.seed, i)`
/// and the same `edge_cases`. Files are generated in parallel (up to the number of CPUs); the
/// result does not depend on that. `files == 0` is an `InvalidInput` error.
pub fn write_corpus_files(dir: &Path, files: usize, spec: &CorpusSpec) -> io::Result<Vec<PathBuf>> {
    if files == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "write_corpus_files: the number of files must be at least 1",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| with_path(e, dir))?;
    let paths: Vec<PathBuf> = (0..files)
        .map(|i| dir.join(format!("part-{i:03}.txt")))
        .collect();
    let specs: Vec<CorpusSpec> = (0..files)
        .map(|i| {
            let share =
                spec.bytes / files as u64 + u64::from((i as u64) < spec.bytes % files as u64);
            CorpusSpec {
                bytes: share,
                seed: file_seed(spec.seed, i),
                edge_cases: spec.edge_cases,
            }
        })
        .collect();

    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files);
    let next = AtomicUsize::new(0);
    let work = || -> io::Result<()> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= files {
                return Ok(());
            }
            let written = File::create(&paths[i]).and_then(|file| write_corpus(file, &specs[i]));
            if let Err(e) = written {
                next.store(files, Ordering::Relaxed); // stop the other workers
                return Err(with_path(e, &paths[i]));
            }
        }
    };
    if workers <= 1 {
        work()?;
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
            let mut result = Ok(());
            for handle in handles {
                let outcome = handle.join().expect("corpus writer thread panicked");
                if result.is_ok() {
                    result = outcome;
                }
            }
            result
        })?;
    }
    Ok(paths)
}

/// The seed of file `index` of a corpus written by [`write_corpus_files`] with seed `seed`.
pub fn file_seed(seed: u64, index: usize) -> u64 {
    mix64(
        seed ^ mix64(
            (index as u64)
                .wrapping_add(1)
                .wrapping_mul(0xD1B5_4A32_D192_ED03),
        ),
    )
}

/// Parses sizes like "100M", "1G", "256MiB", "64k", "1000" (K/M/G = powers of 1024,
/// case-insensitive, optional "iB"/"B" suffix) into bytes; error message names the bad input.
///
/// `T` (1024⁴) is accepted too, and a plain `B` ("1000B") means bytes. Surrounding whitespace is
/// ignored; fractions, negative numbers and overflowing sizes are errors.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let trimmed = s.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "invalid size {s:?}: expected a number of bytes such as 1000, 64k, 100M, 256MiB or 1G"
        ));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (use K, M, G or T, optionally followed by B or iB)"
            ));
        }
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?}: number too large"))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {s:?}: too large (more than 2^64 - 1 bytes)"))
}

// ------------------------------------------------------------------------------------------------
// Vocabulary.

const COMMON_WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "i", "his", "they", "be", "at", "one", "have", "this", "from", "or",
    "had", "by", "not", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
    "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
    "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now",
    "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where", "after",
    "back", "little", "only", "round", "man", "year", "came", "show", "every", "good", "me",
    "give", "our", "under", "name", "very", "through", "just", "form", "sentence", "great",
    "think", "say", "help", "low", "line", "differ", "turn", "cause", "much", "mean", "before",
    "move", "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air",
    "well", "also", "play", "small", "end", "put", "home", "read", "hand", "port", "large",
    "spell", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act", "why",
    "ask", "men", "change", "went", "light", "kind", "off", "need", "house", "picture", "try",
    "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth",
    "father", "don't", "it's", "can't", "won't", "i'm", "map", "reduce", "data", "key", "value",
];

const DIGIT_WORDS: &[&str] = &[
    "r2d2", "c3po", "1999", "2001", "2024", "1984", "42", "7", "0", "1", "10", "100", "360", "404",
    "911", "3d", "mp3", "mp4", "x86", "x64", "b52", "4x4", "v8", "html5", "ipv4", "ipv6", "utf8",
    "k8s", "i18n", "a11y", "s3", "ec2", "win32", "1080p", "60fps", "5g", "24h", "007", "3m", "f1",
    "covid19", "h2o", "co2", "p2p", "b2b", "y2k", "route66", "area51", "12345", "3rd", "1st",
    "2nd", "90s", "7up", "9to5", "catch22", "blink182", "sha256", "md5", "gpt4",
];

const UNICODE_WORDS: &[&str] = &[
    "café",
    "Über",
    "naïve",
    "日本語",
    "😀",
    "señor",
    "façade",
    "Ελληνικά",
    "русский",
    "straße",
    "Ångström",
    "中文",
    "🎉",
    "żółć",
    "résumé",
    "coöperate",
    "niño",
    "Zürich",
    "São",
    "Kraków",
    "fiancée",
    "déjà",
    "Ωmega",
    "😂👍",
    "한국어",
    "العربية",
    "עברית",
    "नमस्ते",
    "\u{FB01}le",                 // "ﬁle" with the fi ligature
    "cafe\u{301}",                // "café" with a combining acute accent
    "\u{1F469}\u{200D}\u{1F4BB}", // woman technologist: a ZWJ sequence
    "\u{1F44D}\u{1F3FD}",         // thumbs up with a skin-tone modifier
    "Ǆemal",
    "İstanbul",
    "ﬀ",
    "½",
    "x²",
    "€100",
    "naïveté",
    "Москва",
];

/// Syllable parts of the generated pseudo-words.
const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
    "ch", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "qu", "sk",
];
const NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "y"];
const CODAS: &[&str] = &[
    "", "", "", "", "n", "r", "s", "l", "t", "m", "x", "nd", "st", "ck",
];

/// Number of generated pseudo-words.
const PSEUDO_WORDS: usize = 4000;
/// Size of the Zipf lookup table (indexed by 16 random bits).
const ZIPF_SLOTS: usize = 1 << 16;
/// Fixed seed of the vocabulary, so every corpus shares it.
const VOCAB_SEED: u64 = 0x6D72_2D63_6F72_7075; // "mr-corpu"

const LOWER: usize = 0;
const TITLE: usize = 1;
const UPPER: usize = 2;

/// The vocabulary, each word pre-rendered in three cases into one arena.
struct Vocab {
    /// Every rendering of every word, back to back, followed by `WORD_WINDOW` bytes of padding.
    arena: Vec<u8>,
    /// `spans[3 * word + case]` = start and end of that rendering in `arena`.
    spans: Vec<[u32; 2]>,
    /// Maps 16 random bits to a word index with Zipf frequencies; covers the ASCII words only.
    zipf: Vec<u16>,
    /// Number of ASCII words (indices `0..ascii_words`, in rank order).
    ascii_words: usize,
    /// Separator after a word, indexed by 8 random bits.
    separators: [Piece; 256],
    /// End of line punctuation, indexed by 4 random bits.
    endings: [Piece; 16],
}

/// A punctuation string of at most 4 bytes, copied as a fixed-size block.
#[derive(Clone, Copy)]
struct Piece {
    bytes: [u8; 4],
    len: usize,
}

impl Piece {
    const fn new(s: &[u8]) -> Piece {
        assert!(s.len() <= 4);
        let mut bytes = [0u8; 4];
        let mut i = 0;
        while i < s.len() {
            bytes[i] = s[i];
            i += 1;
        }
        Piece {
            bytes,
            len: s.len(),
        }
    }
}

fn vocab() -> &'static Vocab {
    static VOCAB: OnceLock<Vocab> = OnceLock::new();
    VOCAB.get_or_init(Vocab::build)
}

impl Vocab {
    fn build() -> Vocab {
        let mut rng = SplitMix64::new(VOCAB_SEED);
        let mut seen: HashSet<String> = HashSet::new();
        let mut common: Vec<String> = Vec::new();
        for w in COMMON_WORDS {
            if seen.insert((*w).to_string()) {
                common.push((*w).to_string());
            }
        }
        // The tail: pseudo-words and digit tokens, shuffled so the digit tokens get mixed ranks.
        let mut tail: Vec<String> = Vec::new();
        for w in DIGIT_WORDS {
            if seen.insert((*w).to_string()) {
                tail.push((*w).to_string());
            }
        }
        let mut made = 0;
        while made < PSEUDO_WORDS {
            let syllables = match rng.below(10) {
                0..=1 => 1,
                2..=6 => 2,
                7..=8 => 3,
                _ => 4,
            };
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(ONSETS[rng.below(ONSETS.len() as u64) as usize]);
                w.push_str(NUCLEI[rng.below(NUCLEI.len() as u64) as usize]);
                w.push_str(CODAS[rng.below(CODAS.len() as u64) as usize]);
            }
            if seen.insert(w.clone()) {
                tail.push(w);
                made += 1;
            }
        }
        for i in (1..tail.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            tail.swap(i, j);
        }
        let mut words = common;
        words.extend(tail);
        let ascii_words = words.len();
        assert!(ascii_words <= usize::from(u16::MAX));
        words.extend(UNICODE_WORDS.iter().map(|w| (*w).to_string()));

        let mut arena = Vec::new();
        let mut spans = Vec::with_capacity(words.len() * 3);
        for w in &words {
            let mut title = String::with_capacity(w.len());
            let mut chars = w.chars();
            if let Some(c) = chars.next() {
                title.extend(c.to_uppercase());
                title.push_str(chars.as_str());
            }
            for rendering in [w.to_lowercase(), title, w.to_uppercase()] {
                let start = arena.len() as u32;
                arena.extend_from_slice(rendering.as_bytes());
                spans.push([start, arena.len() as u32]);
            }
        }
        arena.resize(arena.len() + WORD_WINDOW, 0);

        // Zipf (s = 1) over the ASCII words: slot i goes to the word whose cumulative-weight
        // interval contains the slot's centre. The last word's interval is ~1.8 slots wide, so
        // every word owns at least one slot.
        let weights: Vec<f64> = (0..ascii_words).map(|r| 1.0 / (r as f64 + 1.0)).collect();
        let total: f64 = weights.iter().sum();
        let mut zipf = Vec::with_capacity(ZIPF_SLOTS);
        let mut rank = 0;
        let mut cumulative = weights[0];
        for slot in 0..ZIPF_SLOTS {
            let target = (slot as f64 + 0.5) / ZIPF_SLOTS as f64 * total;
            while cumulative < target && rank + 1 < ascii_words {
                rank += 1;
                cumulative += weights[rank];
            }
            zipf.push(rank as u16);
        }

        let mut separators = [Piece::new(b" "); 256];
        let punctuated: [(&'static [u8], usize); 9] = [
            (b", ", 20),
            (b". ", 10),
            (b"; ", 3),
            (b": ", 3),
            (b"! ", 2),
            (b"? ", 2),
            (b" - ", 3),
            (b"-", 3),
            (b"... ", 1),
        ];
        let mut at = 0;
        for (sep, count) in punctuated {
            for slot in &mut separators[at..at + count] {
                *slot = Piece::new(sep);
            }
            at += count;
        }
        let endings: [&[u8]; 16] = [
            b".", b".", b".", b".", b".", b".", b".", b".", b"!", b"?", b"?", b"", b"", b"", b":",
            b"...",
        ];
        let endings = endings.map(Piece::new);

        Vocab {
            arena,
            spans,
            zipf,
            ascii_words,
            separators,
            endings,
        }
    }

    #[inline]
    fn render(&self, word: usize, case: usize) -> &[u8] {
        let [start, end] = self.spans[3 * word + case];
        &self.arena[start as usize..end as usize]
    }
}

// ------------------------------------------------------------------------------------------------
// Generation.

/// Write the buffer out once it holds this much.
const FLUSH_AT: usize = 1 << 20;
/// Words are copied as blocks of this many bytes (longer ones by a plain copy).
const WORD_WINDOW: usize = 32;
/// Free space guaranteed at the start of each word: enough for the word window, wrapping
/// punctuation and a separator or line ending.
const WORD_SLACK: usize = 64;

/// The output buffer. Short pieces (words, punctuation) are copied as fixed-size blocks (a couple
/// of vector moves instead of a call to `memcpy`) and only their real length is counted, which
/// needs free space past `len`: `reserve` guarantees it before each word.
struct OutBuf {
    bytes: Vec<u8>,
    len: usize,
}

impl OutBuf {
    fn with_capacity(capacity: usize) -> OutBuf {
        OutBuf {
            bytes: vec![0; capacity + WORD_SLACK],
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Ensures at least `n` free bytes past `len`.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.len + n > self.bytes.len() {
            let grown = (self.bytes.len() * 2).max(self.len + n);
            self.bytes.resize(grown, 0);
        }
    }

    fn push(&mut self, b: u8) {
        self.reserve(1);
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn extend_from_slice(&mut self, s: &[u8]) {
        self.reserve(s.len());
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Appends one byte; the caller has reserved room.
    #[inline]
    fn put_byte(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    /// Appends a piece; the caller has reserved room.
    #[inline]
    fn put_piece(&mut self, piece: &Piece) {
        self.bytes[self.len..self.len + 4].copy_from_slice(&piece.bytes);
        self.len += piece.len;
    }

    /// Appends `arena[start..end]`; the caller has reserved `WORD_SLACK` bytes.
    #[inline]
    fn put_word(&mut self, arena: &[u8], start: usize, end: usize) {
        let n = end - start;
        if n <= WORD_WINDOW {
            self.bytes[self.len..self.len + WORD_WINDOW]
                .copy_from_slice(&arena[start..start + WORD_WINDOW]);
            self.len += n;
        } else {
            self.extend_from_slice(&arena[start..end]);
        }
    }
}

struct Generator {
    v: &'static Vocab,
    rng: SplitMix64,
    edge: bool,
    buf: OutBuf,
    /// Lines generated so far.
    lines: u64,
    /// Edge cases: the next long line is due once this many bytes have been generated.
    next_long_at: u64,
}

impl Generator {
    fn new(v: &'static Vocab, spec: &CorpusSpec) -> Generator {
        let mut rng = SplitMix64::new(mix64(spec.seed ^ 0x636F_7270_7573_2D31));
        let next_long_at = (256 << 10) + rng.below(512 << 10);
        Generator {
            v,
            rng,
            edge: spec.edge_cases,
            buf: OutBuf::with_capacity(FLUSH_AT + (512 << 10)),
            lines: 0,
            next_long_at,
        }
    }

    /// Appends one line to `buf`. `position` is the number of bytes generated before it (in
    /// earlier buffers and in `buf`); `goal` is how far into `buf` the output must reach. Returns
    /// true when this was the last line (edge cases: written without a terminator).
    fn line(&mut self, goal: usize, position: u64) -> bool {
        let finished = if self.edge {
            self.edge_line(goal, position)
        } else {
            let target = 36 + self.rng.below(77) as usize;
            let start = self.buf.len();
            self.words(start, target, false);
            self.buf.push(b'\n');
            false
        };
        self.lines += 1;
        finished
    }

    fn edge_line(&mut self, goal: usize, position: u64) -> bool {
        let r = self.rng.next_u64();
        let crlf = r & 7 == 0;
        let terminator: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let room = goal - self.buf.len(); // bytes still needed (> 0)
        let start = self.buf.len();
        let kind = (r >> 8) & 63;

        if self.lines == 0 {
            // A non-ASCII word, a tab, then an ordinary line, ended by CRLF.
            let unicode = self.v.ascii_words + (r >> 16) as usize % UNICODE_WORDS.len();
            self.buf.extend_from_slice(self.v.render(unicode, TITLE));
            self.buf.push(b'\t');
            self.words(start, 40, true);
            return self.finish_edge_line(goal, b"\r\n");
        }
        if (self.lines == 1 || kind < 2) && room > 2 {
            // An empty line (with a room check so the output never ends with a terminator); the
            // second line is always one, ended by LF.
            self.buf
                .extend_from_slice(if self.lines == 1 { b"\n" } else { terminator });
            return false;
        }
        if kind == 2 && room > 8 {
            // A whitespace-only line.
            self.buf.extend_from_slice(b"  \t ");
            self.buf.extend_from_slice(terminator);
            return false;
        }
        if position >= self.next_long_at {
            let long = self.rng.range(100_000, 300_000) as usize;
            if room > long + 4096 {
                self.words(start, long, true);
                self.next_long_at = position + (1 << 20) + self.rng.below(1 << 20);
                return self.finish_edge_line(goal, terminator);
            }
        }
        if kind == 3 {
            self.buf.push(b'\t');
        }
        let target = 36 + ((r >> 16) % 77) as usize;
        self.words(start, target, true);
        self.finish_edge_line(goal, terminator)
    }

    /// Ends an edge-case line: without a terminator if the output is long enough, else with
    /// one, after extending the line if the terminator alone would complete the output (so the
    /// output never ends with a line terminator).
    fn finish_edge_line(&mut self, goal: usize, terminator: &[u8]) -> bool {
        loop {
            let len = self.buf.len();
            if len >= goal {
                return true;
            }
            if len + terminator.len() < goal {
                self.buf.extend_from_slice(terminator);
                return false;
            }
            self.buf.push(b' ');
            let at = self.buf.len();
            self.words(at, 0, true);
        }
    }

    /// Appends words (with separators and a final punctuation mark) until the line, which
    /// started at `start`, is at least `target` bytes long; at least one word.
    #[inline]
    fn words(&mut self, start: usize, target: usize, edge: bool) {
        let v = self.v;
        let mut first = self.buf.len() == start;
        loop {
            self.buf.reserve(WORD_SLACK);
            let r = self.rng.next_u64();
            let word = if edge && (r >> 56) < 3 {
                v.ascii_words + ((r >> 50) & 0x3F) as usize % UNICODE_WORDS.len()
            } else {
                usize::from(v.zipf[(r & 0xFFFF) as usize])
            };
            let case_bits = (r >> 16) & 0xFF;
            let case = if first {
                if case_bits < 200 { TITLE } else { LOWER }
            } else if case_bits < 205 {
                LOWER
            } else if case_bits < 243 {
                TITLE
            } else {
                UPPER
            };
            let [word_start, word_end] = v.spans[3 * word + case];
            let wrap = (r >> 24) & 0xFF;
            match wrap {
                0..=2 => self.buf.put_byte(b'"'),
                3 => self.buf.put_byte(b'('),
                4 => self.buf.put_byte(b'\''),
                _ => {}
            }
            self.buf
                .put_word(&v.arena, word_start as usize, word_end as usize);
            match wrap {
                0..=2 => self.buf.put_byte(b'"'),
                3 => self.buf.put_byte(b')'),
                4 => self.buf.put_byte(b'\''),
                5..=7 => self.buf.put_piece(&POSSESSIVE),
                _ => {}
            }
            first = false;
            if self.buf.len() - start >= target {
                self.buf.put_piece(&v.endings[((r >> 40) & 0xF) as usize]);
                return;
            }
            if edge && (r >> 44) & 0x3F == 0 {
                self.buf.put_byte(b'\t');
            } else {
                self.buf
                    .put_piece(&v.separators[((r >> 32) & 0xFF) as usize]);
            }
        }
    }
}

const POSSESSIVE: Piece = Piece::new(b"'s");

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
