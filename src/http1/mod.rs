//! Sans-IO HTTP/1.1: the one HTTP parser in the tree.
//!
//! Everything here works on byte slices and never touches a socket, so the gateway, the mock
//! provider and the load generator share it and it is tested by feeding bytes split at every
//! offset.
//!
//! - [`head`]: request and response heads, parsed with `httparse` into [`RequestHead`] /
//!   [`ResponseHead`], which keep *offsets* ([`Span`]) into the caller's buffer instead of
//!   copies. The head values that decide how the message is framed (`Content-Length`,
//!   `Transfer-Encoding`, `Connection`, `Expect`) are interpreted once, strictly (RFC 9112 §6).
//! - [`body`]: [`BodyDecoder`], the framing state machine for Content-Length, chunked and
//!   close-delimited bodies. It reports where payload bytes are without copying them and where
//!   the message ends, which is what keep-alive and pipelining need.
//! - [`write`]: helpers that serialise heads and chunks into a reused `Vec<u8>`.
//!
//! Parsers follow one convention: `Ok(None)` (or a zero-length step) means "need more bytes";
//! an `Err` means the peer sent something that must not be forwarded, and the connection
//! should be answered (if possible) and closed.

pub mod body;
pub mod head;
pub mod percent;
pub mod sigv4;
pub mod write;

pub use body::{BodyDecoder, BodyError, BodyKind, Step};
pub use head::{HeadError, HeaderSpan, Limits, Method, RequestHead, ResponseHead, Span, Version};

/// Default cap on the bytes of a request or response head (request line + headers + CRLF).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default cap on the number of header fields in one head.
pub const MAX_HEADERS: usize = 64;
/// Hard cap on header fields: the size of the on-stack `httparse` array.
pub const MAX_HEADERS_HARD: usize = 128;
/// Cap on one chunk-size line including extensions (`1a;name=value\r\n`).
pub const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;
/// Cap on the total bytes of a chunked body's trailer section.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;
