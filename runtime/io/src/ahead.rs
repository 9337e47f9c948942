//! Decompression ahead of the reader: a compressed stream is inflated on a thread of its own
//! into a small bounded queue of buffers, so the worker thread's guest maps one buffer's records
//! while the next buffers are being inflated (a gzip file would otherwise be inflated and
//! mapped by turns on one core).
//!
//! Memory is bounded: [`QUEUED`] full buffers wait in the queue, plus the one being read and
//! the one being filled, each [`CHUNK`] bytes. An error of the decoder (with its message as the
//! decoder stack formatted it: offsets, file name, ratio cap) reaches the reader after the good
//! bytes before it, in order. Dropping the reader stops the thread and waits for it: the thread
//! sees the stop flag at its next read of the file, or a closed queue when it next hands over a
//! buffer, so no thread outlives its reader and none blocks forever.

use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, channel, sync_channel};
use std::thread::JoinHandle;

/// Bytes per buffer handed from the inflating thread to the reader.
pub(crate) const CHUNK: usize = 1 << 20;
/// Full buffers that may wait for the reader: 8 MiB, two of mr-host's default 4 MiB map
/// batches. A task with a map helper reads batches in bursts (two back to back when this was
/// measured; it now reads ahead up to four in flight) and then maps for a while; with only
/// 2 MiB queued, the second read waited for the inflater every round. 1 GiB word count from
/// one gzip member, 2 workers, median of 3 interleaved runs: text 9.79 s with 2 buffers,
/// 9.40 s with 8; JSONL 10.78 s, 10.46 s (see docs/performance.md, "Gzip: the queue ahead").
pub(crate) const QUEUED: usize = 8;

enum Chunk {
    /// Decompressed bytes (the first `len` of the buffer).
    Data(Vec<u8>, usize),
    /// The stream ended cleanly.
    End,
    /// The decoder failed; nothing follows.
    Failed(std::io::Error),
}

/// The reading end: a `BufRead` over the buffers the thread inflates.
pub(crate) struct Ahead {
    rx: Option<Receiver<Chunk>>,
    /// Buffers handed back to the thread for reuse.
    spare: Sender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
    state: State,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(PartialEq)]
enum State {
    Reading,
    Ended,
    Failed,
}

/// Wraps a reader so it fails once `stop` is set: a decoder deep in a long run of input (empty
/// members, say) then returns at its next read of the file instead of finishing it.
pub(crate) struct Stoppable<R> {
    pub(crate) inner: R,
    pub(crate) stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the reader was dropped"));
        }
        self.inner.read(buf)
    }
}

impl Ahead {
    /// Runs `make` on a new thread and reads what the reader it returns produces, at most
    /// `limit` bytes (`None`: to its end). `make` gets the stop flag to wrap the file in (see
    /// [`Stoppable`]); building the decoder on the thread means it need not be `Send`.
    pub(crate) fn spawn<F>(name: &str, limit: Option<u64>, make: F) -> std::io::Result<Ahead>
    where
        F: FnOnce(Arc<AtomicBool>) -> Box<dyn Read> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(QUEUED);
        let (spare, spares) = channel();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("inflate {name}"))
            .spawn(move || {
                let reader = make(flag.clone());
                inflate(reader, limit, &tx, &spares, &flag);
            })?;
        Ok(Ahead {
            rx: Some(rx),
            spare,
            current: Vec::new(),
            len: 0,
            pos: 0,
            state: State::Reading,
            stop,
            thread: Some(thread),
        })
    }
}

/// The thread's loop: fills buffers from `reader` and queues them, until the end, an error, the
/// limit, or a reader that is gone.
fn inflate(
    mut reader: Box<dyn Read>,
    limit: Option<u64>,
    tx: &SyncSender<Chunk>,
    spares: &Receiver<Vec<u8>>,
    stop: &AtomicBool,
) {
    let mut left = limit.unwrap_or(u64::MAX);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut buf = match spares.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => vec![0; CHUNK],
        };
        let want = (CHUNK as u64).min(left) as usize;
        let mut len = 0;
        let mut failed = None;
        while len < want {
            match reader.read(&mut buf[len..want]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        left -= len as u64;
        if failed.is_none() && left == 0 && limit.is_some() {
            failed = check_past_limit(&mut reader);
        }
        if failed.is_none() && len < want && limit.is_some() {
            // A stream with a planned length that ends short: the file is not what was
            // planned (the records past here would be lost without a word).
            failed = Some(std::io::Error::other(format!(
                "the decompressed stream ended {left} bytes before the end planned for this shard; the file changed since the job was planned"
            )));
        }
        let ended = failed.is_none() && (len < want || left == 0);
        if len > 0 && tx.send(Chunk::Data(buf, len)).is_err() {
            return;
        }
        if let Some(e) = failed {
            let _ = tx.send(Chunk::Failed(e));
            return;
        }
        if ended {
            let _ = tx.send(Chunk::End);
            return;
        }
    }
}

/// At a planned end (a BGZF shard's last line end), reads one byte more and drops it: the
/// decoder then finishes the member the end falls in or at the end of, checking its CRC-32 and
/// size. The next shard starts at the member holding its first line, so a member that ends
/// exactly at this shard's end is read by no other shard: without this its damage could pass
/// unseen. (A member the end falls inside is read whole by the next shard.) Costs at most the
/// start of the next member.
fn check_past_limit(reader: &mut Box<dyn Read>) -> Option<std::io::Error> {
    let mut one = [0u8; 1];
    loop {
        match reader.read(&mut one) {
            Ok(_) => return None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Some(e),
        }
    }
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Ahead {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.len {
            match self.state {
                State::Ended => return Ok(&[]),
                State::Failed => {
                    return Err(std::io::Error::other(
                        "the decompressed stream already failed",
                    ));
                }
                State::Reading => {}
            }
            let next = self.rx.as_ref().map(Receiver::recv);
            match next {
                Some(Ok(Chunk::Data(buf, len))) => {
                    let old = std::mem::replace(&mut self.current, buf);
                    if !old.is_empty() {
                        // The thread may have ended already: then the buffer is just freed.
                        let _ = self.spare.send(old);
                    }
                    self.len = len;
                    self.pos = 0;
                }
                Some(Ok(Chunk::End)) => {
                    self.state = State::Ended;
                    return Ok(&[]);
                }
                Some(Ok(Chunk::Failed(e))) => {
                    self.state = State::Failed;
                    return Err(e);
                }
                // The thread ended without saying how: it panicked (a decoder bug).
                Some(Err(_)) | None => {
                    self.state = State::Failed;
                    return Err(std::io::Error::other(
                        "the decompressing thread stopped unexpectedly",
                    ));
                }
            }
        }
        Ok(&self.current[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the queue wakes a thread blocked handing over a buffer.
        drop(self.rx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader of `n` bytes counting up, then `end`.
    struct Source {
        n: usize,
        at: usize,
        fail: bool,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.n {
                return if self.fail {
                    Err(std::io::Error::other("corrupt at the end"))
                } else {
                    Ok(0)
                };
            }
            let k = buf.len().min(self.n - self.at).min(1000);
            for (i, b) in buf[..k].iter_mut().enumerate() {
                *b = ((self.at + i) % 251) as u8;
            }
            self.at += k;
            Ok(k)
        }
    }

    fn expected(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn bytes_arrive_in_order_then_the_end_or_the_error() {
        for n in [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 17] {
            let mut a = Ahead::spawn("t", None, move |_| {
                Box::new(Source {
                    n,
                    at: 0,
                    fail: false,
                })
            })
            .unwrap();
            let mut got = Vec::new();
            a.read_to_end(&mut got).unwrap();
            assert_eq!(got, expected(n), "{n}");
            // Failing after the bytes: all of them first, then the decoder's own error.
            let mut a = Ahead::spawn("t", None, move |_| {
                Box::new(Source {
                    n,
                    at: 0,
                    fail: true,
                })
            })
            .unwrap();
            let mut got = vec![0u8; n];
            a.read_exact(&mut got).unwrap();
            assert_eq!(got, expected(n));
            let e = a.fill_buf().unwrap_err();
            assert_eq!(e.to_string(), "corrupt at the end");
            assert!(a.fill_buf().is_err(), "an error is not followed by data");
        }
    }

    #[test]
    fn a_stream_shorter_than_its_limit_fails() {
        let mut a = Ahead::spawn("t", Some(100), move |_| {
            Box::new(Source {
                n: 60,
                at: 0,
                fail: false,
            })
        })
        .unwrap();
        let mut got = vec![0u8; 60];
        a.read_exact(&mut got).unwrap();
        let e = a.fill_buf().unwrap_err().to_string();
        assert!(e.contains("ended 40 bytes before the end planned"), "{e}");
    }

    #[test]
    fn a_limit_stops_the_stream_exactly() {
        let n = 2 * CHUNK + 5;
        for limit in [0, 7, CHUNK as u64, n as u64 - 1] {
            let mut a = Ahead::spawn("t", Some(limit), move |_| {
                Box::new(Source {
                    n,
                    at: 0,
                    fail: true,
                })
            })
            .unwrap();
            let mut got = Vec::new();
            a.read_to_end(&mut got).unwrap();
            assert_eq!(got.len() as u64, limit);
        }
    }

    #[test]
    fn dropping_the_reader_stops_the_thread() {
        // An endless source: the thread must stop when the reader goes, whether blocked on
        // the full queue or reading (the drop joins it, so a leak would hang this test).
        let mut a = Ahead::spawn("t", None, move |stop| {
            Box::new(Stoppable {
                inner: std::io::repeat(b'x'),
                stop,
            })
        })
        .unwrap();
        let mut buf = [0u8; 10];
        a.read_exact(&mut buf).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(a);
        // Never read at all.
        let a = Ahead::spawn("t", None, move |stop| {
            Box::new(Stoppable {
                inner: std::io::repeat(b'x'),
                stop,
            })
        })
        .unwrap();
        drop(a);
    }

    #[test]
    fn a_panicking_decoder_is_an_error_not_an_end() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                panic!("decoder bug")
            }
        }
        let mut a = Ahead::spawn("t", None, |_| Box::new(Panics)).unwrap();
        let e = a.fill_buf().unwrap_err();
        assert_eq!(
            e.to_string(),
            "the decompressing thread stopped unexpectedly"
        );
    }
}
