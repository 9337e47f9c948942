//! Captures a guest's stdout and stderr: keeps the last [`TAIL_BYTES`] (16 KiB) so the message of a
//! panic can be attached to the error it caused, without letting a chatty guest grow host memory.
//! (What one write hands the host is bounded by wasmtime's hostcall fuel, like any other
//! guest-to-host data; only its tail is kept.)

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::limits::GUEST_OUTPUT_TAIL_BYTES as TAIL_BYTES;

/// A bounded, shared tail of everything the guest wrote.
#[derive(Clone, Default)]
pub struct TailPipe {
    tail: Arc<Mutex<VecDeque<u8>>>,
}

impl TailPipe {
    fn push(&self, bytes: &[u8]) {
        let mut tail = self.tail.lock().expect("tail lock");
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (tail.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        tail.drain(..overflow);
        tail.extend(bytes);
    }

    /// Takes the captured text (lossy UTF-8), leaving the pipe empty.
    pub fn take(&self) -> String {
        let mut tail = self.tail.lock().expect("tail lock");
        let bytes: Vec<u8> = tail.drain(..).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl IsTerminal for TailPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TailPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for TailPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for TailPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for TailPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail() {
        let pipe = TailPipe::default();
        pipe.push(&vec![b'a'; TAIL_BYTES]);
        pipe.push(b"the end");
        let text = pipe.take();
        assert_eq!(text.len(), TAIL_BYTES);
        assert!(text.ends_with("the end"));
        assert_eq!(pipe.take(), "");
    }
}
