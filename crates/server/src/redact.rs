//! What may be logged of a secret-bearing value.

/// `url` without its credentials, for the log.
pub fn url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_logged_without_its_credentials() {
        assert_eq!(
            super::url("nats://seat:s3cret@10.0.0.5:4222"),
            "nats://***@10.0.0.5:4222"
        );
        assert_eq!(super::url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
