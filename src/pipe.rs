//! A bounded pipe from blocking producer code (tar, zstd) to an async
//! consumer (a vault upload).
//!
//! Unlike a plain in-memory duplex, the reader only sees a clean end of
//! stream when the producer says it finished: if the producer fails, panics
//! or is dropped half-way, the reader gets an error, so a vault never commits
//! a truncated artifact as if it were whole.

use std::future::Future;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// Chunk size: large enough to keep per-chunk overhead negligible.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: bounds the pipe's memory to about `DEPTH * CHUNK`.
const DEPTH: usize = 4;

enum Message {
    Data(Bytes),
    End,
    Fail(io::Error),
}

/// Creates a pipe: the writer goes to blocking code, the reader to async code.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        PipeWriter {
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            rx,
            current: Bytes::new(),
            done: false,
        },
    )
}

/// Blocking side. Call [`PipeWriter::finish`] when everything was written,
/// or [`PipeWriter::fail`] to abort; dropping it without either aborts.
pub struct PipeWriter {
    tx: Option<mpsc::Sender<Message>>,
    buf: Vec<u8>,
}

/// What a producer hears when the consumer of the pipe (the vault's
/// upload) stopped: the consumer's own error says why.
pub const READER_STOPPED: &str = "the reader of the pipe stopped";

/// Of a producer's and its consumer's errors, the one that explains the
/// failure: the consumer's when the producer only heard that it stopped
/// (a full vault is not a source that cannot be read).
pub fn cause<P: std::fmt::Display, C>(producer: P, consumer: Option<C>) -> Result<P, C> {
    match consumer {
        Some(c) if producer.to_string().contains(READER_STOPPED) => Err(c),
        _ => Ok(producer),
    }
}

impl PipeWriter {
    fn send(&mut self, m: Message) -> io::Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "pipe already closed"))?;
        tx.blocking_send(m)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, READER_STOPPED))
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.send(Message::Data(chunk))?;
        }
        Ok(())
    }

    /// Flushes what is buffered and marks the stream complete.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buffered()?;
        self.send(Message::End)?;
        self.tx = None;
        Ok(())
    }

    /// Aborts the stream: the reader fails with `error`.
    pub fn fail(mut self, error: io::Error) {
        let _ = self.send(Message::Fail(error));
        self.tx = None;
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buffered()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // Not finished: make sure the reader fails rather than sees EOF.
            // try_send cannot block; if the channel is full the reader will
            // see the channel close without End, which is an error too.
            let _ = tx.try_send(Message::Fail(io::Error::other(
                "the producer stopped before the end of the stream",
            )));
        }
    }
}

/// Async side: yields the bytes, then EOF only after the writer finished.
pub struct PipeReader {
    rx: mpsc::Receiver<Message>,
    current: Bytes,
    done: bool,
}

impl AsyncRead for PipeReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                let chunk = self.current.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Message::Data(b))) => self.current = b,
                Poll::Ready(Some(Message::End)) => {
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Some(Message::Fail(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the producer stopped before the end of the stream",
                    )))
                }
            }
        }
    }
}

/// The stdout of a child process as a stream that ends cleanly only when
/// the child exited successfully. A producer like `pg_dump` that dies
/// half-way closes its stdout just as if it had finished; without this, a
/// vault would commit the truncated output as a whole artifact.
pub struct ChildOutput {
    stdout: tokio::process::ChildStdout,
    exit: Pin<Box<dyn Future<Output = io::Result<std::process::ExitStatus>> + Send>>,
    program: &'static str,
    done: bool,
}

impl ChildOutput {
    /// Takes the child's stdout (it must be piped) and its exit. Dropping the
    /// stream drops the child: spawn it with `kill_on_drop(true)` so an
    /// abandoned upload also stops the producer.
    pub fn new(mut child: tokio::process::Child, program: &'static str) -> io::Result<Self> {
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other(format!("{program}: stdout is not piped")))?;
        Ok(ChildOutput {
            stdout,
            exit: Box::pin(async move { child.wait().await }),
            program,
            done: false,
        })
    }
}

impl AsyncRead for ChildOutput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {}
            other => return other,
        }
        // End of stdout: the stream is whole only if the child succeeded.
        match self.exit.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(status)) if status.success() => {
                self.done = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(status)) => Poll::Ready(Err(io::Error::other(format!(
                "{} stopped before the end of its output ({status})",
                self.program
            )))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(io::Error::other(format!(
                "waiting for {}: {e}",
                self.program
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn finished_stream_reads_whole() {
        let (mut w, mut r) = pipe();
        let producer = tokio::task::spawn_blocking(move || {
            for _ in 0..3 {
                w.write_all(&[7u8; 700_000]).unwrap();
            }
            w.finish().unwrap();
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        producer.await.unwrap();
        assert_eq!(out.len(), 2_100_000);
    }

    #[tokio::test]
    async fn child_output_fails_when_the_child_fails() {
        let spawn = |script: &str| {
            tokio::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap()
        };
        let mut ok = ChildOutput::new(spawn("printf hello"), "sh").unwrap();
        let mut out = Vec::new();
        ok.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"hello");
        let mut bad = ChildOutput::new(spawn("printf partial; exit 3"), "sh").unwrap();
        let mut out = Vec::new();
        let err = bad.read_to_end(&mut out).await.unwrap_err();
        assert!(err.to_string().contains("stopped before the end"), "{err}");
    }

    #[tokio::test]
    async fn dropped_writer_is_an_error_not_eof() {
        let (mut w, mut r) = pipe();
        let producer = tokio::task::spawn_blocking(move || {
            w.write_all(&[1u8; 2_000_000]).unwrap();
            drop(w);
        });
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).await.unwrap_err();
        producer.await.unwrap();
        assert!(err.to_string().contains("stopped before the end"), "{err}");
    }

    #[test]
    fn a_producer_that_only_heard_the_pipe_close_yields_to_the_consumers_error() {
        let heard = format!("cannot read big3.bin: {READER_STOPPED}");
        assert_eq!(cause(heard, Some("vault full")), Err("vault full"));
        // A source that really failed keeps its own error.
        let real = "cannot read big3.bin: Permission denied".to_string();
        assert_eq!(cause(real.clone(), Some("vault full")), Ok(real));
        // Without a consumer error, the producer's is all there is.
        let heard = format!("x: {READER_STOPPED}");
        assert_eq!(cause(heard.clone(), None::<&str>), Ok(heard));
    }
}
