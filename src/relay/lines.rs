//! Reading one JSON-RPC message per line (the MCP stdio transport), with a
//! bound on a line's length so a peer cannot make safex hold unbounded
//! memory.

use std::io::{self, BufRead, BufReader, Read};

/// What the next read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A line in the buffer, its `\n` included when it had one (the last
    /// line of a stream may not).
    Line,
    /// The stream ended; the buffer is empty.
    End,
    /// The line grew past the bound before its end; the buffer holds its
    /// first bytes.
    TooLong,
}

pub struct Lines<R> {
    inner: BufReader<R>,
    max: usize,
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R, max: u64) -> Lines<R> {
        Lines {
            inner: BufReader::with_capacity(64 * 1024, inner),
            max: usize::try_from(max).unwrap_or(usize::MAX),
        }
    }

    /// The stream's first byte, not consumed; `None` at its end.
    pub fn peek(&mut self) -> Option<u8> {
        loop {
            match self.inner.fill_buf() {
                Ok(a) => return a.first().copied(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
    }

    /// Read the next line into `buf` (cleared first).
    pub fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Next> {
        buf.clear();
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Ok(if buf.is_empty() {
                    Next::End
                } else {
                    Next::Line
                });
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            buf.extend_from_slice(&avail[..take]);
            self.inner.consume(take);
            if buf.len() > self.max.saturating_add(2) {
                return Ok(Next::TooLong);
            }
            if done {
                return Ok(Next::Line);
            }
        }
    }

    /// What was read ahead and not yet returned, and the reader: for
    /// handing the stream over to a plain copy.
    pub fn into_parts(self) -> (Vec<u8>, R) {
        let buffered = self.inner.buffer().to_vec();
        (buffered, self.inner.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_terminator_and_the_bound() {
        let mut l = Lines::new(&b"{\"a\":1}\n\nlast"[..], 16);
        let mut buf = Vec::new();
        assert_eq!(l.next(&mut buf).unwrap(), Next::Line);
        assert_eq!(buf, b"{\"a\":1}\n");
        assert_eq!(l.next(&mut buf).unwrap(), Next::Line);
        assert_eq!(buf, b"\n");
        assert_eq!(l.next(&mut buf).unwrap(), Next::Line);
        assert_eq!(buf, b"last");
        assert_eq!(l.next(&mut buf).unwrap(), Next::End);
        let long = [b'x'; 100];
        let mut l = Lines::new(&long[..], 16);
        assert_eq!(l.next(&mut buf).unwrap(), Next::TooLong);
    }
}
