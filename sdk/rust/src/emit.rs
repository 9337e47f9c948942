//! Output: [`Emitter`] for the key-value pairs of `map` and `reduce`, [`ValueEmitter`] for the
//! combined values of `combine`, and allocation-free decimal formatting.

use crate::table;

/// Collects key-value output of `map` and `reduce`.
///
/// In a job with a combiner, `map`'s emitter feeds the in-map combining table instead (see the
/// crate docs): the pairs still reach the shuffle, already combined per batch.
pub struct Emitter {
    buf: Vec<u8>,
    table: Option<Box<table::CombineTable>>,
}

impl Emitter {
    pub(crate) fn with_buffer(buf: Vec<u8>) -> Self {
        Emitter { buf, table: None }
    }

    pub(crate) fn combining(buf: Vec<u8>, table: Box<table::CombineTable>) -> Self {
        Emitter {
            buf,
            table: Some(table),
        }
    }

    pub(crate) fn table_mut(&mut self) -> &mut table::CombineTable {
        self.table.as_mut().expect("a combining emitter")
    }

    pub(crate) fn into_parts(self) -> (Vec<u8>, Box<table::CombineTable>) {
        (self.buf, self.table.expect("a combining emitter"))
    }

    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Emits one key-value pair.
    #[inline]
    pub fn emit(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        match &mut self.table {
            Some(table) => table.add(key.as_ref(), value.as_ref()),
            None => mr_codec::put_kv(&mut self.buf, key.as_ref(), value.as_ref()),
        }
    }

    /// Emits a pair whose value is `n` in decimal, without allocating.
    #[inline]
    pub fn emit_u64(&mut self, key: impl AsRef<[u8]>, n: u64) {
        let mut digits = [0u8; 20];
        self.emit(key, format_u64(n, &mut digits));
    }

    /// Emits `(key, n)` with `n` in decimal, declaring that the job's values are counts that its
    /// combiner adds up (word count, histograms): in map-side combining the SDK then keeps one
    /// running sum per key and batch instead of storing each value and calling the combiner on
    /// it, and emits the sum in decimal. Values given with [`Emitter::emit`] for the same key
    /// still go through the combiner, together with that sum. Outside map-side combining (in
    /// `reduce`, or a job without a combiner) this is [`Emitter::emit_u64`].
    #[inline]
    pub fn add(&mut self, key: impl AsRef<[u8]>, n: u64) {
        match &mut self.table {
            Some(table) => table.add_sum(key.as_ref(), n),
            None => self.emit_u64(key, n),
        }
    }
}

/// Appends `n` in decimal to `buf`, without allocating (for values like `count,sum`).
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    buf.extend_from_slice(format_u64(n, &mut digits));
}

/// Writes `n` in decimal into the end of `buf`; returns the digits.
#[inline]
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Collects the combined values of one key in `combine`.
pub struct ValueEmitter<'b> {
    pub(crate) buf: &'b mut Vec<u8>,
    pub(crate) count: u32,
}

impl ValueEmitter<'_> {
    /// Emits one combined value for the current key.
    #[inline]
    pub fn emit(&mut self, value: impl AsRef<[u8]>) {
        mr_codec::put_value(self.buf, value.as_ref());
        self.count += 1;
    }

    /// Emits `n` in decimal as a combined value, without allocating.
    #[inline]
    pub fn emit_u64(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        self.emit(format_u64(n, &mut digits));
    }
}
