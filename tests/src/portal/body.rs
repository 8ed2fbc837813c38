//! Response bodies of the simulated portal: a plain buffered body, a huge
//! body streamed from a static buffer, and a slowloris trickle.

use std::convert::Infallible;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// Size of the "huge body" fault: 50 MiB.
pub const HUGE_BODY_LEN: u64 = 50 * 1024 * 1024;

const CHUNK_LEN: usize = 64 * 1024;

/// The one buffer every huge-body chunk points into: streaming 50 MiB
/// allocates nothing per chunk.
pub(crate) static HUGE_CHUNK: [u8; CHUNK_LEN] = [b'x'; CHUNK_LEN];

/// Body type of every portal response.
pub enum PortalBody {
    /// A complete body (taken on first poll).
    Full(Option<Bytes>),
    /// `remaining` bytes of `x`, in 64 KiB frames that all borrow
    /// [`HUGE_CHUNK`].
    Huge { remaining: u64 },
    /// One byte per `interval`, forever.
    Trickle {
        sleep: Pin<Box<Sleep>>,
        interval: Duration,
    },
}

impl PortalBody {
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        PortalBody::Full((!data.is_empty()).then_some(data))
    }

    pub fn huge() -> Self {
        PortalBody::Huge {
            remaining: HUGE_BODY_LEN,
        }
    }

    pub fn trickle(interval: Duration) -> Self {
        PortalBody::Trickle {
            sleep: Box::pin(tokio::time::sleep(interval)),
            interval,
        }
    }
}

impl Body for PortalBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            PortalBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            PortalBody::Huge { remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*remaining)
                    .unwrap_or(CHUNK_LEN)
                    .min(CHUNK_LEN);
                *remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&HUGE_CHUNK[..n])))))
            }
            PortalBody::Trickle { sleep, interval } => match sleep.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    let next = tokio::time::Instant::now() + *interval;
                    sleep.as_mut().reset(next);
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b".")))))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            PortalBody::Full(data) => data.is_none(),
            PortalBody::Huge { remaining } => *remaining == 0,
            PortalBody::Trickle { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            PortalBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            PortalBody::Huge { remaining } => SizeHint::with_exact(*remaining),
            PortalBody::Trickle { .. } => SizeHint::default(),
        }
    }
}
