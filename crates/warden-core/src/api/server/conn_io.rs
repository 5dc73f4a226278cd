//! The connection under the HTTP library: the bytes of the request head that warden read
//! itself put back in front, and a bound on how long a write may make no progress, so that
//! a client that asks for an answer and never reads it does not hold the answer and its
//! place forever. (A follow stream is exempt: its memory is bounded by its budget, and a
//! reader may pause.)

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// How long a write to a client may make no progress before the connection is dropped.
pub const WRITE_STALL: Duration = Duration::from_secs(30);

pub(super) struct ConnIo<I> {
    prefix: Vec<u8>,
    pos: usize,
    io: I,
    /// Set once the answer is a follow stream: writes may stall then.
    streaming: Arc<AtomicBool>,
    /// Running while a write waits.
    stalled: Option<Pin<Box<Sleep>>>,
    stall: Duration,
}

impl<I> ConnIo<I> {
    pub(super) fn new(prefix: Vec<u8>, io: I) -> ConnIo<I> {
        ConnIo {
            prefix,
            pos: 0,
            io,
            streaming: Arc::new(AtomicBool::new(false)),
            stalled: None,
            stall: WRITE_STALL,
        }
    }

    pub(super) fn streaming_flag(&self) -> Arc<AtomicBool> {
        self.streaming.clone()
    }

    /// After a write returned `poll`: start, stop or check the stall timer.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() || self.streaming.load(Ordering::Relaxed) {
            self.stalled = None;
            return poll;
        }
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(self.stall)));
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client reads nothing",
            )));
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ConnIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        if me.pos < me.prefix.len() {
            let n = buf.remaining().min(me.prefix.len() - me.pos);
            buf.put_slice(&me.prefix[me.pos..me.pos + n]);
            me.pos += n;
            if me.pos == me.prefix.len() {
                me.prefix = Vec::new();
                me.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ConnIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.io).poll_write(cx, buf);
        me.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.io).poll_write_vectored(cx, bufs);
        me.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.io).poll_flush(cx);
        me.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let poll = Pin::new(&mut me.io).poll_shutdown(cx);
        me.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const STALL: Duration = Duration::from_millis(50);

    fn conn(prefix: &[u8], io: tokio::io::DuplexStream) -> ConnIo<tokio::io::DuplexStream> {
        let mut c = ConnIo::new(prefix.to_vec(), io);
        c.stall = STALL;
        c
    }

    #[tokio::test]
    async fn a_write_that_makes_no_progress_fails_after_the_stall_bound() {
        let (near, _far) = tokio::io::duplex(16);
        let mut io = conn(b"", near);
        let started = std::time::Instant::now();
        let err = tokio::time::timeout(Duration::from_secs(5), io.write_all(&[0u8; 64]))
            .await
            .expect("in time")
            .expect_err("stalled");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= STALL);
    }

    #[tokio::test]
    async fn a_follow_stream_may_stall() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut io = conn(b"GET", near);
        io.streaming_flag().store(true, Ordering::Relaxed);
        let mut got = [0u8; 3];
        io.read_exact(&mut got).await.expect("the prefix");
        assert_eq!(&got, b"GET");
        let mut write = tokio::spawn(async move { io.write_all(&[1u8; 64]).await });
        // Four times the bound without progress: still waiting, not failed.
        assert!(
            tokio::time::timeout(STALL * 4, &mut write).await.is_err(),
            "the write ended"
        );
        let mut all = vec![0u8; 64];
        far.read_exact(&mut all).await.expect("read");
        tokio::time::timeout(Duration::from_secs(5), write)
            .await
            .expect("in time")
            .expect("joined")
            .expect("the write went through");
    }
}
