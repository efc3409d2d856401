//! Socket plumbing shared by the gateway, the mock provider and the load generator: runtime
//! selection, SO_REUSEPORT listeners, reads into a growing `Vec`, the abortive close used
//! to inject resets, and the lower priority of the gateway's background threads.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

pub use crate::config::Driver;

/// Runs `f`'s future to completion on a fresh monoio runtime (timer enabled) on this thread.
pub fn block_on<F, Fut>(driver: Driver, f: F) -> io::Result<Fut::Output>
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    const ENTRIES: u32 = 1024;
    match driver {
        Driver::Auto => {
            let build = |urb| {
                monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                    .with_entries(ENTRIES)
                    .uring_builder(urb)
                    .enable_timer()
                    .build()
            };
            let mut rt = build(uring_setup()).or_else(|_| build(io_uring::IoUring::builder()))?;
            Ok(rt.block_on(f()))
        }
        Driver::Uring => {
            let build = |urb| {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .with_entries(ENTRIES)
                    .uring_builder(urb)
                    .enable_timer()
                    .build()
            };
            let mut rt = build(uring_setup()).or_else(|_| build(io_uring::IoUring::builder()))?;
            Ok(rt.block_on(f()))
        }
        Driver::Epoll => {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?;
            Ok(rt.block_on(f()))
        }
    }
}

/// How each ring is set up. Cooperative task running: when a socket becomes ready, the
/// kernel queues the ring's completion work for the thread's next `io_uring_enter` instead
/// of interrupting it with an inter-processor interrupt (the default). A worker enters the
/// kernel every time it runs out of ready tasks, so nothing waits longer, and on a busy
/// core, or in a VM, where an IPI is a VM exit, the interrupts were a fifth of a request's
/// CPU (`perf/results/2026-12-02-c109c6e-uring`). Kernels before 5.19 refuse the flags; those
/// rings are set up the default way.
fn uring_setup() -> io_uring::Builder {
    let mut b = io_uring::IoUring::builder();
    b.setup_coop_taskrun().setup_taskrun_flag();
    b
}

/// Binds `n` listeners on `addr` with SO_REUSEPORT, one per worker thread. With port 0 the
/// first bind picks the port and the rest share it.
pub fn bind_reuseport(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(n);
    let mut addr = addr;
    for _ in 0..n.max(1) {
        let domain = if addr.is_ipv4() {
            socket2::Domain::IPV4
        } else {
            socket2::Domain::IPV6
        };
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(4096)?;
        let l: std::net::TcpListener = s.into();
        addr = l.local_addr()?;
        out.push(l);
    }
    Ok(out)
}

/// Reads more bytes onto the end of `buf`, growing it so at least `min_spare` bytes fit.
/// Returns the count read (0 = peer closed) and the buffer.
pub async fn read_more<S: AsyncReadRent>(
    io: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
) -> (io::Result<usize>, Vec<u8>) {
    if buf.capacity() - buf.len() < min_spare {
        buf.reserve(min_spare);
    }
    let len = buf.len();
    let (res, slice) = io.read(buf.slice_mut(len..)).await;
    (res, slice.into_inner())
}

/// Closes `stream` with SO_LINGER 0, so the peer sees a TCP reset instead of a FIN.
pub fn abort_tcp(stream: monoio::net::TcpStream) {
    let _ = set_linger_zero(&stream);
    drop(stream);
}

#[allow(
    unsafe_code,
    reason = "monoio exposes only AsRawFd; socket2 needs a BorrowedFd"
)]
fn set_linger_zero(stream: &monoio::net::TcpStream) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO))
}

/// Turns transparent huge pages off for this process (best effort), before the threads start.
/// mimalloc asks for huge pages for its arena, and every thread's heap then holds at least
/// one 2 MiB page: 16 MiB resident when idle with every feature on, where 4 KiB pages need
/// 10. The request path's working set is small enough that the TLB does
/// not notice (`perf/results/2026-12-02-95056a8-memory`).
#[allow(
    unsafe_code,
    reason = "prctl(PR_SET_THP_DISABLE) has no safe std wrapper; it only sets a flag on this \
              process's memory map"
)]
pub fn small_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes no memory.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Niceness of the coordinator thread: it shares cores with workers, and its bursts (a tick's
/// books, the ledger) must not delay a worker's next event. It still gets CPU whenever the
/// workers leave some.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BACKGROUND_NICE`] (best effort).
#[allow(
    unsafe_code,
    reason = "setpriority on one thread has no safe std wrapper; measured (perf notes of issue \
              4): sharing the worker's core, the coordinator and audit writer added 50-64 µs to \
              the stream TTFT p99 at nice 0, 20-32 µs at nice 10"
)]
pub fn run_in_background() {
    // SAFETY: gettid takes no arguments and cannot fail; setpriority only reads its integer
    // arguments, and with PRIO_PROCESS and a thread id it changes just the calling thread.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, BACKGROUND_NICE);
    }
}

#[cfg(test)]
mod tests {
    /// The calling thread's nice value, from /proc (field 19 of its stat line).
    fn nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        after_comm.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn background_threads_run_at_lower_priority_and_others_do_not() {
        let before = nice();
        let (bg, fg) = std::thread::spawn(move || {
            super::run_in_background();
            (nice(), before)
        })
        .join()
        .unwrap();
        assert_eq!(bg, (before + super::BACKGROUND_NICE).min(19));
        assert_eq!(nice(), fg, "only the calling thread changed");
    }

    #[test]
    fn small_pages_turns_huge_pages_off_for_the_process() {
        let thp = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_owned()))
        };
        super::small_pages();
        assert_eq!(thp().as_deref(), Some("0"));
    }
}
