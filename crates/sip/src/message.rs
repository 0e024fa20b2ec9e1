//! SIP messages (RFC 3261 §7): parsing and writing.
//!
//! A message is a start line, an ordered list of headers and a body. Header
//! names are kept in their full form (compact forms are expanded on input);
//! values are kept as text and read through small accessors, because a
//! trunk needs a handful of them and must pass the rest through untouched.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Info,
    Register,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "REGISTER" => Method::Register,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Register => "REGISTER",
            Method::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    /// (name, value) in order; names in their full, canonical form.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the message has no blank line after its headers")]
    Incomplete,
    #[error("bad start line: {0}")]
    StartLine(String),
    #[error("bad header line: {0}")]
    Header(String),
    #[error("the message is not UTF-8 in its head")]
    Encoding,
    #[error("missing mandatory header {0}")]
    Missing(&'static str),
}

const COMPACT: [(&str, &str); 10] = [
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
];

const CANONICAL: [&str; 22] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Route",
    "Record-Route",
    "User-Agent",
    "Server",
    "Allow",
    "Supported",
    "Require",
    "Reason",
    "Expires",
    "Subject",
    "Content-Encoding",
    "WWW-Authenticate",
    "Authorization",
];

fn canonical_name(name: &str) -> String {
    if name.len() == 1 {
        if let Some((_, full)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            return full.to_string();
        }
    }
    CANONICAL
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))
        .map(|c| c.to_string())
        .unwrap_or_else(|| name.to_string())
}

impl Message {
    pub fn request(method: Method, uri: impl Into<String>) -> Self {
        Self {
            start: StartLine::Request {
                method,
                uri: uri.into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn response(code: u16, reason: impl Into<String>) -> Self {
        Self {
            start: StartLine::Response {
                code,
                reason: reason.into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let split = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(&bytes[..split]).map_err(|_| ParseError::Encoding)?;
        let rest = &bytes[split + 4..];
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if (line.starts_with(' ') || line.starts_with('\t')) && !lines.is_empty() {
                // Folded header line (RFC 3261 §7.3.1).
                let last = lines.last_mut().expect("not empty");
                last.push(' ');
                last.push_str(line.trim());
            } else {
                lines.push(line.to_string());
            }
        }
        let mut it = lines.into_iter();
        let first = it
            .next()
            .ok_or_else(|| ParseError::StartLine(String::new()))?;
        let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let code: u16 = code
                .parse()
                .map_err(|_| ParseError::StartLine(first.clone()))?;
            if !(100..700).contains(&code) {
                return Err(ParseError::StartLine(first));
            }
            StartLine::Response {
                code,
                reason: reason.to_string(),
            }
        } else {
            let mut parts = first.split(' ');
            let (Some(m), Some(uri), Some("SIP/2.0"), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(ParseError::StartLine(first));
            };
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ParseError::StartLine(first));
            }
            StartLine::Request {
                method: Method::parse(m),
                uri: uri.to_string(),
            }
        };
        let mut headers = Vec::new();
        for line in it {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ParseError::Header(line.clone()))?;
            let name = name.trim();
            if name.is_empty() || name.contains(' ') {
                return Err(ParseError::Header(line.clone()));
            }
            let name = canonical_name(name);
            let value = value.trim();
            // Via, Route and friends may carry several values in one line.
            if matches!(name.as_str(), "Via" | "Route" | "Record-Route") {
                for v in split_commas(value) {
                    headers.push((name.clone(), v));
                }
            } else {
                headers.push((name, value.to_string()));
            }
        }
        let mut msg = Message {
            start,
            headers,
            body: Vec::new(),
        };
        let len = match msg.header("Content-Length") {
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| ParseError::Header(format!("Content-Length: {v}")))?,
            None => rest.len(),
        };
        if len > rest.len() {
            return Err(ParseError::Incomplete);
        }
        msg.body = rest[..len].to_vec();
        for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if msg.header(h).is_none() {
                return Err(ParseError::Missing(h));
            }
        }
        // A CSeq that is not a number is kept: [`Message::cseq`] gives `None`
        // and the transaction layer answers such a request 400.
        Ok(msg)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512);
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{} {} SIP/2.0\r\n", method.as_str(), uri);
            }
            StartLine::Response { code, reason } => {
                let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (n, v) in &self.headers {
            if n == "Content-Length" {
                continue;
            }
            let _ = write!(out, "{n}: {v}\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        if let Some(h) = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            h.1 = value;
        } else {
            self.headers.push((name.to_string(), value));
        }
        self
    }

    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or("")
    }

    /// (sequence number, method) of the CSeq header; `None` when it is not
    /// a 32-bit number and a method. RFC 3261 wants the number below 2^31:
    /// the transaction layer checks that.
    pub fn cseq(&self) -> Option<(u32, Method)> {
        let v = self.header("CSeq")?;
        let (n, m) = v.trim().split_once(char::is_whitespace)?;
        Some((n.parse().ok()?, Method::parse(m.trim())))
    }

    /// The branch parameter of the top Via.
    pub fn branch(&self) -> Option<&str> {
        param(self.header("Via")?, "branch")
    }

    pub fn from_tag(&self) -> Option<&str> {
        param(self.header("From")?, "tag")
    }

    pub fn to_tag(&self) -> Option<&str> {
        param(self.header("To")?, "tag")
    }

    /// The URI inside the Contact header.
    pub fn contact_uri(&self) -> Option<String> {
        self.header("Contact").map(uri_of)
    }
}

/// Splits a header value at commas that are outside quotes and angle brackets.
fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, ch) in v.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(v[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim().to_string());
    out.retain(|s| !s.is_empty());
    out
}

/// A `;name=value` parameter of a header value (outside its `<uri>`).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let tail = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    tail.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI of a name-addr (`"Name" <sip:x@y>;tag=1`) or addr-spec (`sip:x@y;tag=1`).
pub fn uri_of(value: &str) -> String {
    if let (Some(a), Some(b)) = (value.find('<'), value.find('>')) {
        if a < b {
            return value[a + 1..b].to_string();
        }
    }
    value.split(';').next().unwrap_or("").trim().to_string()
}

/// The user part of a SIP URI: `sip:12025550100@host` -> `12025550100`.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))?;
    let user = rest.split('@').next()?;
    Some(user.split(';').next().unwrap_or(user))
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        408 => "Request Timeout",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:12025550100@127.0.0.1:5070 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKdef\r\n\
Max-Forwards: 70\r\n\
f: \"Agent, One\" <sip:8001@seatline>;tag=111\r\n\
t: <sip:12025550100@carrier>\r\n\
i: call-1@seatline\r\n\
CSeq: 1 INVITE\r\n\
m: <sip:seatline@127.0.0.1:5060>\r\n\
Subject: a folded\r\n  header\r\n\
c: application/sdp\r\n\
l: 4\r\n\
\r\n\
v=0\r\nEXTRA";

    #[test]
    fn parses_compact_forms_folding_multi_via_and_content_length() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.uri(), Some("sip:12025550100@127.0.0.1:5070"));
        assert_eq!(m.headers_named("Via").count(), 2);
        assert_eq!(m.branch(), Some("z9hG4bKabc"));
        assert_eq!(m.from_tag(), Some("111"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.call_id(), "call-1@seatline");
        assert_eq!(m.cseq(), Some((1, Method::Invite)));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:seatline@127.0.0.1:5060")
        );
        assert_eq!(m.header("Subject"), Some("a folded header"));
        assert_eq!(m.body, b"v=0\r");
    }

    #[test]
    fn round_trips_through_bytes() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        let again = Message::parse(&m.to_bytes()).unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn parses_responses_and_refuses_garbage() {
        let r = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 7 INVITE\r\n\r\n";
        let m = Message::parse(r.as_bytes()).unwrap();
        assert_eq!(m.code(), Some(486));
        assert_eq!(m.to_tag(), Some("2"));
        for bad in [
            "",
            "hello\r\n\r\n",
            "SIP/2.0 99 Low\r\n\r\n",
            "invite sip:a SIP/2.0\r\n\r\n",
            "INVITE sip:a SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n",
            "INVITE sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
            "INVITE sip:a SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 99\r\n\r\nshort",
        ] {
            assert!(Message::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        // A bad CSeq still parses, so that it can be answered 400.
        for cseq in ["x INVITE", "4294967296 INVITE", "1"] {
            let m = format!("INVITE sip:a SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: {cseq}\r\n\r\n");
            assert_eq!(Message::parse(m.as_bytes()).unwrap().cseq(), None, "{cseq}");
        }
        let max = "INVITE sip:a SIP/2.0\r\nVia: v\r\nFrom: f\r\nTo: t\r\nCall-ID: c\r\nCSeq: 4294967295 INVITE\r\n\r\n";
        assert_eq!(
            Message::parse(max.as_bytes()).unwrap().cseq(),
            Some((u32::MAX, Method::Invite))
        );
    }

    #[test]
    fn uri_helpers() {
        assert_eq!(
            uri_of("\"A, B\" <sip:1@h;transport=udp>;tag=9"),
            "sip:1@h;transport=udp"
        );
        assert_eq!(uri_of("sip:1@h;tag=9"), "sip:1@h");
        assert_eq!(
            uri_user("sip:12025550100@127.0.0.1:5070"),
            Some("12025550100")
        );
        assert_eq!(uri_user("tel:+1202;phone-context=x"), Some("+1202"));
        assert_eq!(param("<sip:a@b;lr>;tag=abc;x", "tag"), Some("abc"));
        assert_eq!(param("<sip:a@b;tag=no>", "tag"), None);
    }
}
