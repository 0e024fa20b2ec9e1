//! SIP over a byte stream (TCP, TLS; RFC 3261 §18.3): cutting the stream
//! into messages by their Content-Length, and refusing what no peer should
//! send (a header block or a body beyond bounds). Sans-IO: the shell pushes
//! the bytes it read and takes whole messages out.

/// Largest message accepted on a stream (headers and body).
pub const MAX_MESSAGE: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a message on the stream is larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("a message on the stream has no valid Content-Length")]
    NoLength,
}

/// Cuts one connection's bytes into SIP messages.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived. An error means the
    /// stream cannot be read any further: the shell closes the connection.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        // Keep-alive CRLFs (RFC 5626 §3.5.1) between messages are skipped.
        let lead = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        self.buf.drain(..lead);
        let Some(end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > MAX_MESSAGE {
                return Err(FrameError::TooLarge);
            }
            return Ok(None);
        };
        let head = &self.buf[..end];
        let length = content_length(head).ok_or(FrameError::NoLength)?;
        let total = end + 4 + length;
        if total > MAX_MESSAGE {
            return Err(FrameError::TooLarge);
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The Content-Length (or its compact form `l`) of a header block; a stream
/// message must carry one (RFC 3261 §18.3).
fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n";
    const B: &[u8] = b"INVITE sip:b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn messages_are_cut_by_their_length_whatever_the_reads() {
        let mut all = Vec::new();
        all.extend_from_slice(b"\r\n\r\n");
        all.extend_from_slice(A);
        all.extend_from_slice(B);
        all.extend_from_slice(A);
        // Byte by byte, then all at once: the same three messages.
        for chunk in [1, all.len()] {
            let mut f = Framer::default();
            let mut got = Vec::new();
            for piece in all.chunks(chunk) {
                f.push(piece);
                while let Some(m) = f.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(
                got,
                vec![A.to_vec(), B.to_vec(), A.to_vec()],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_message_without_length_or_beyond_bounds_ends_the_stream() {
        let mut f = Framer::default();
        f.push(b"BYE sip:x SIP/2.0\r\nCall-ID: 1\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::NoLength));
        let mut f = Framer::default();
        f.push(b"INVITE sip:x SIP/2.0\r\nContent-Length: 999999\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::TooLarge));
        let mut f = Framer::default();
        f.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_message(), Err(FrameError::TooLarge));
    }
}
