//! Service-level math: objectives, minute buckets, windows, SLI, error
//! budget, burn rates and the multiwindow burn-rate alerts with the
//! low-volume guard. Pure: no I/O, no clock (callers pass `now`), no
//! knowledge of sled or HTTP.

pub mod buckets;
pub mod eval;
pub mod objective;
pub mod window;
