//! Which host pages (CRM origins) may drive a tenant's softphones.
//!
//! Before sign-in the global `[embed] allowed_origins` applies; once an agent
//! has signed in, its tenant's own list, when the tenant admin set one
//! (`GET/PUT /api/v1/admin/embed`). The softphone compares a message's
//! `origin` with the list as strings, so each entry is stored exactly as a
//! browser serializes an origin: validated here, never normalized silently.

use crate::App;

/// Entries a tenant may list: a handful of CRMs, not a registry.
pub const MAX_ORIGINS: usize = 20;
/// The longest entry taken (a DNS name is at most 253 bytes).
const MAX_LEN: usize = 300;

/// Why an entry is not a serialized origin; the message names the entry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadOrigin {
    #[error("at most {MAX_ORIGINS} origins")]
    TooMany,
    #[error("{0:?} is not an origin: write scheme://host[:port] (http or https), nothing else")]
    Shape(String),
    #[error("{0:?} is not an origin as browsers write it: use {1:?}")]
    NotSerialized(String, String),
}

/// Checks one entry: `http` or `https`, a host, an optional port, and
/// nothing else (no path, query, user or wildcard), written as the browser
/// serializes it (lower case, no default port, no trailing slash), so that
/// it can equal a message's `origin`.
pub fn check_origin(entry: &str) -> Result<(), BadOrigin> {
    let shape = || BadOrigin::Shape(entry.chars().take(MAX_LEN).collect());
    if entry.is_empty() || entry.len() > MAX_LEN || entry.contains('*') {
        return Err(shape());
    }
    let url = url::Url::parse(entry).map_err(|_| shape())?;
    let bare = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.host().is_some()
        && matches!(url.scheme(), "http" | "https");
    if !bare || !matches!(url.path(), "" | "/") {
        return Err(shape());
    }
    let serialized = url.origin().ascii_serialization();
    if serialized != entry {
        return Err(BadOrigin::NotSerialized(entry.to_string(), serialized));
    }
    Ok(())
}

/// Checks a whole list and drops repeated entries, keeping the order.
pub fn check_list(entries: Vec<String>) -> Result<Vec<String>, BadOrigin> {
    if entries.len() > MAX_ORIGINS {
        return Err(BadOrigin::TooMany);
    }
    let mut out: Vec<String> = Vec::with_capacity(entries.len());
    for e in entries {
        check_origin(&e)?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

/// The origins that apply to a tenant's signed-in softphones: its own list
/// when it has one, else the global one.
pub async fn effective(app: &App, tenant_id: i64) -> seatline_store::Result<Vec<String>> {
    let own = app.store.tenant_origins(tenant_id).await?;
    Ok(if own.is_empty() {
        app.cfg.embed.allowed_origins.clone()
    } else {
        own
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialized_origins_pass() {
        for ok in [
            "https://crm.example.com",
            "http://127.0.0.1:8080",
            "https://crm.example.com:8443",
            "http://[::1]:3000",
        ] {
            assert_eq!(check_origin(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "crm.example.com",
            "https://crm.example.com/",
            "https://crm.example.com/path",
            "https://crm.example.com?q=1",
            "https://crm.example.com#x",
            "https://user@crm.example.com",
            "https://*.example.com",
            "ftp://crm.example.com",
            "javascript:alert(1)",
            "data:text/html,hi",
            "null",
            "https://CRM.example.com",
            "https://crm.example.com:443",
            "http://crm.example.com:80",
            "https://crm.example.com ",
        ] {
            assert!(check_origin(bad).is_err(), "{bad:?} passed");
        }
        assert!(check_origin(&format!("https://{}.com", "a".repeat(400))).is_err());
    }

    #[test]
    fn a_list_is_bounded_and_deduplicated() {
        let many = (0..=MAX_ORIGINS)
            .map(|i| format!("https://h{i}.example"))
            .collect();
        assert_eq!(check_list(many), Err(BadOrigin::TooMany));
        let twice = vec![
            "https://a.example".to_string(),
            "https://a.example".to_string(),
        ];
        assert_eq!(check_list(twice).unwrap(), vec!["https://a.example"]);
    }
}
