//! Digest authentication toward a trunk (RFC 3261 §22): answering a 401's
//! `WWW-Authenticate` or a 407's `Proxy-Authenticate` with an
//! `Authorization` or `Proxy-Authorization` header. The digest itself (MD5,
//! SHA-256, qop auth/auth-int, RFC 2617/7616) is the `digest_auth` crate's;
//! this module only picks the challenge and names the headers.
//!
//! Must never: put a password in a `Debug` output or a log line.

use crate::message::Message;
use std::fmt;

/// A trunk's digest user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Does this final answer ask for credentials?
pub fn is_challenge(code: u16) -> bool {
    code == 401 || code == 407
}

/// The header (name, value) that answers the challenge in `challenge` (a
/// 401 or 407) for a request `method` to `uri` with `body`, or `None` when
/// no challenge in it can be answered (none, malformed, an unknown
/// algorithm). `cnonce` is the client nonce (drawn by the caller, so that
/// a seeded user agent stays deterministic).
pub fn answer(
    challenge: &Message,
    creds: &Credentials,
    method: &str,
    uri: &str,
    body: &[u8],
    cnonce: &str,
) -> Option<(&'static str, String)> {
    let (ask, reply) = match challenge.code()? {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => return None,
    };
    // Several challenges may come (one per realm or algorithm); the first
    // Digest one we can compute is answered.
    challenge
        .headers_named(ask)
        .filter(|v| {
            v.trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("digest"))
        })
        .find_map(|v| {
            let mut prompt = digest_auth::parse(v).ok()?;
            let mut ctx = digest_auth::AuthContext::new_with_method(
                creds.username.as_str(),
                creds.password.as_str(),
                uri,
                Some(body),
                digest_auth::HttpMethod::from(method),
            );
            ctx.set_custom_cnonce(cnonce);
            let header = prompt.respond(&ctx).ok()?;
            Some((reply, header.to_header_string()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            username: "trunk1".into(),
            password: "s3cret".into(),
        }
    }

    fn challenge(code: u16, name: &str, value: &str) -> Message {
        let mut m = Message::response(code, "Unauthorized");
        m.push(name, value);
        m
    }

    /// RFC 2617's digest, computed by hand: MD5(MD5(A1):nonce:MD5(A2)).
    fn md5_hex(s: &str) -> String {
        use md5::Digest;
        let d = md5::Md5::digest(s.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_401_without_qop_is_answered_with_the_rfc_2617_digest() {
        let c = challenge(
            401,
            "WWW-Authenticate",
            r#"Digest realm="carrier.example", nonce="abc123", algorithm=MD5"#,
        );
        let (name, value) = answer(
            &c,
            &creds(),
            "INVITE",
            "sip:12025550100@carrier.example",
            b"",
            "cn",
        )
        .unwrap();
        assert_eq!(name, "Authorization");
        let ha1 = md5_hex("trunk1:carrier.example:s3cret");
        let ha2 = md5_hex("INVITE:sip:12025550100@carrier.example");
        let want = md5_hex(&format!("{ha1}:abc123:{ha2}"));
        assert!(value.contains(&format!("response=\"{want}\"")), "{value}");
        assert!(value.contains("username=\"trunk1\""), "{value}");
        assert!(value.contains("uri=\"sip:12025550100@carrier.example\""));
        assert!(!value.contains("s3cret"));
    }

    #[test]
    fn a_407_with_qop_auth_is_answered_on_the_proxy_header() {
        let c = challenge(
            407,
            "Proxy-Authenticate",
            r#"Digest realm="r", nonce="n1", qop="auth", opaque="op""#,
        );
        let (name, value) = answer(&c, &creds(), "BYE", "sip:x@h", b"", "cnonce1").unwrap();
        assert_eq!(name, "Proxy-Authorization");
        let ha1 = md5_hex("trunk1:r:s3cret");
        let ha2 = md5_hex("BYE:sip:x@h");
        let want = md5_hex(&format!("{ha1}:n1:00000001:cnonce1:auth:{ha2}"));
        assert!(value.contains(&want), "{value}");
        assert!(value.contains("opaque=\"op\""));
        assert!(value.contains("nc=00000001"));
    }

    #[test]
    fn unanswerable_challenges_give_none() {
        let no_header = Message::response(401, "Unauthorized");
        assert!(answer(&no_header, &creds(), "INVITE", "sip:a@b", b"", "c").is_none());
        let basic = challenge(401, "WWW-Authenticate", r#"Basic realm="x""#);
        assert!(answer(&basic, &creds(), "INVITE", "sip:a@b", b"", "c").is_none());
        let junk = challenge(401, "WWW-Authenticate", "Digest realm=\"unterminated");
        assert!(answer(&junk, &creds(), "INVITE", "sip:a@b", b"", "c").is_none());
        let wrong_header = challenge(401, "Proxy-Authenticate", r#"Digest realm="r", nonce="n""#);
        assert!(answer(&wrong_header, &creds(), "INVITE", "sip:a@b", b"", "c").is_none());
        let not_a_challenge = challenge(403, "WWW-Authenticate", r#"Digest realm="r", nonce="n""#);
        assert!(answer(&not_a_challenge, &creds(), "INVITE", "sip:a@b", b"", "c").is_none());
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        assert!(!format!("{:?}", creds()).contains("s3cret"));
    }
}
