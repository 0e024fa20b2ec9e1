//! Single sign-on with OpenID Connect (`init` with `loginMethod: 1`).
//!
//! Identity providers refuse to be framed, so the softphone opens
//! `GET /sso/start` in a popup; the popup goes to the provider and comes back
//! to `GET /sso/callback`, which signs the user in exactly as a password
//! would and hands the answer to the softphone with `postMessage` (to its own
//! origin only). The flow is the authorization code with PKCE, a nonce and a
//! state, by the `openidconnect` crate, which checks the ID token (signature
//! from the provider's JWKS, issuer, audience, expiry, nonce).
//!
//! The state, PKCE verifier and nonce of a started sign-in stay here, in
//! memory, at most [`FLOW_TTL`] and [`MAX_FLOWS`] of them: nothing secret
//! goes through the browser but the state. A verified email only ever maps
//! to an existing user (of the provider's tenant when it is a tenant's):
//! never an account created. No code, token or secret is logged.

use crate::errors::{api_error, internal, json_rejection};
use crate::App;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use seatline_store::TenantSso;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A started sign-in must come back within this long.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// Started sign-ins kept at once; past that the oldest is forgotten.
pub const MAX_FLOWS: usize = 10_000;
/// A provider's discovery document (and keys) is used this long.
const DISCOVERY_TTL: Duration = Duration::from_secs(5 * 60);
/// Providers whose discovery is kept.
const MAX_DISCOVERED: usize = 256;
/// Bounds of the settings.
const MAX_URL: usize = 300;
const MAX_CLIENT_ID: usize = 300;
const MAX_SECRET: usize = 500;
pub const MAX_DOMAINS: usize = 50;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/sso", get(configured))
        .route(
            "/api/v1/admin/sso",
            get(get_settings).put(put_settings).delete(delete_settings),
        )
        .route("/sso/start", get(start))
        .route("/sso/callback", get(callback))
}

/// A provider: the global one (`[sso]`) or a tenant's.
#[derive(Clone)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Lower-case email domains; empty: any.
    pub allowed_domains: Vec<String>,
}

/// Why settings are refused; the message says what to send.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadSettings {
    #[error("issuer must be an https URL (http only on 127.0.0.1, localhost or ::1), up to {MAX_URL} characters, with no query, fragment or user")]
    Issuer,
    #[error("clientId is 1 to {MAX_CLIENT_ID} visible characters")]
    ClientId,
    #[error("clientSecret is 1 to {MAX_SECRET} visible characters")]
    ClientSecret,
    #[error("at most {MAX_DOMAINS} allowedDomains")]
    TooManyDomains,
    #[error("{0:?} is not an email domain (lower case, like example.com)")]
    Domain(String),
}

/// True for visible ASCII only, `1..=max` of it.
fn visible(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

/// An issuer (or public URL): https, or http on a loopback host (tests).
fn check_url(u: &str) -> bool {
    if u.is_empty() || u.len() > MAX_URL {
        return false;
    }
    let Ok(url) = url::Url::parse(u) else {
        return false;
    };
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    scheme_ok
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
}

/// `[sso] public_url`: an origin-like base URL (no path but `/`).
pub fn check_public_url(u: &str) -> Result<(), String> {
    let ok = check_url(u) && url::Url::parse(u).is_ok_and(|p| matches!(p.path(), "" | "/"));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{u:?} must be https://HOST[:PORT] (http only on a loopback host)"
        ))
    }
}

/// One allowed domain: a DNS name in lower case.
fn check_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && !d.starts_with(['.', '-'])
        && !d.ends_with(['.', '-'])
        && !d.contains("..")
        && d.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

impl Settings {
    /// Checks every field; the issuer's trailing `/` is dropped (as issuers
    /// are written in their discovery documents) and domains are kept once.
    pub fn check(mut self) -> Result<Self, BadSettings> {
        if !check_url(&self.issuer) {
            return Err(BadSettings::Issuer);
        }
        if self.issuer.ends_with('/') {
            self.issuer.pop();
        }
        if !visible(&self.client_id, MAX_CLIENT_ID) {
            return Err(BadSettings::ClientId);
        }
        if let Some(s) = &self.client_secret {
            if !visible(s, MAX_SECRET) {
                return Err(BadSettings::ClientSecret);
            }
        }
        if self.allowed_domains.len() > MAX_DOMAINS {
            return Err(BadSettings::TooManyDomains);
        }
        let mut domains: Vec<String> = Vec::with_capacity(self.allowed_domains.len());
        for d in self.allowed_domains {
            if !check_domain(&d) {
                return Err(BadSettings::Domain(d.chars().take(260).collect()));
            }
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        self.allowed_domains = domains;
        Ok(self)
    }

    /// Whether an email's domain is allowed.
    fn allows(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_lowercase());
        self.allowed_domains.is_empty() || domain.is_some_and(|d| self.allowed_domains.contains(&d))
    }
}

impl From<TenantSso> for Settings {
    fn from(t: TenantSso) -> Self {
        Self {
            issuer: t.issuer,
            client_id: t.client_id,
            client_secret: t.client_secret,
            allowed_domains: t.allowed_domains,
        }
    }
}

/// A sign-in started and not yet back.
struct Flow {
    started: Instant,
    /// The tenant named by the softphone (its users only), if any.
    tenant: Option<i64>,
    settings: Settings,
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    redirect: RedirectUrl,
}

/// The flows in progress and the providers' discovery documents.
pub struct Sso {
    http: openidconnect::reqwest::Client,
    discovered: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
    flows: Mutex<HashMap<String, Flow>>,
    max_flows: usize,
}

impl Default for Sso {
    fn default() -> Self {
        Self::new()
    }
}

impl Sso {
    pub fn new() -> Self {
        Self::with_capacity(MAX_FLOWS)
    }

    fn with_capacity(max_flows: usize) -> Self {
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects would let a provider point us anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            discovered: Mutex::new(HashMap::new()),
            flows: Mutex::new(HashMap::new()),
            max_flows: max_flows.max(1),
        }
    }

    /// The provider's discovery document and keys, fetched at most every
    /// [`DISCOVERY_TTL`]; a failure is not kept.
    async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, String> {
        let now = Instant::now();
        if let Some((at, meta)) = self
            .discovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(issuer)
        {
            if now.saturating_duration_since(*at) < DISCOVERY_TTL {
                return Ok(meta.clone());
            }
        }
        let url = IssuerUrl::new(issuer.to_string()).map_err(|e| e.to_string())?;
        let meta = CoreProviderMetadata::discover_async(url, &self.http)
            .await
            .map_err(|e| error_chain(&e))?;
        let mut cache = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (at, _)| now.saturating_duration_since(*at) < DISCOVERY_TTL);
        if cache.len() >= MAX_DISCOVERED {
            cache.clear();
        }
        cache.insert(issuer.to_string(), (now, meta.clone()));
        Ok(meta)
    }

    /// Keeps a started flow under its state, dropping expired ones and, when
    /// full, the oldest.
    fn keep(&self, state: String, flow: Flow) {
        let mut flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        let now = flow.started;
        flows.retain(|_, f| now.saturating_duration_since(f.started) < FLOW_TTL);
        if flows.len() >= self.max_flows {
            if let Some(oldest) = flows
                .iter()
                .min_by_key(|(_, f)| f.started)
                .map(|(k, _)| k.clone())
            {
                flows.remove(&oldest);
            }
        }
        flows.insert(state, flow);
    }

    /// Takes the flow of a state (once), if it is still live.
    fn take(&self, state: &str) -> Option<Flow> {
        let flow = self
            .flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)?;
        (flow.started.elapsed() < FLOW_TTL).then_some(flow)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.flows.lock().unwrap().len()
    }
}

/// An error and its sources, for a log line (they name no secret: URLs,
/// parse and verification failures).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

// ---- which provider ---------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantQuery {
    #[serde(default)]
    tenant: Option<String>,
}

/// The provider for a softphone's `?tenant=` (the tenant's id): the
/// tenant's own, else the global one; `Ok(None)`: single sign-on is not
/// configured (or the tenant is unknown).
async fn provider_for(
    app: &App,
    tenant: Option<&str>,
) -> Result<Option<(Option<i64>, Settings)>, Response> {
    let global = || {
        let c = &app.cfg.sso;
        c.client_id.as_ref().map(|id| Settings {
            issuer: c.issuer.trim_end_matches('/').to_string(),
            client_id: id.clone(),
            client_secret: c.client_secret.clone(),
            allowed_domains: c.allowed_domains.clone(),
        })
    };
    let Some(tenant) = tenant.filter(|t| !t.is_empty()) else {
        return Ok(global().map(|s| (None, s)));
    };
    let Some(id) = (tenant.len() <= 19)
        .then(|| tenant.parse::<i64>().ok())
        .flatten()
        .filter(|id| *id > 0)
    else {
        return Ok(None);
    };
    match app.store.tenant_exists(id).await {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => return Err(internal(e)),
    }
    match app.store.tenant_sso(id).await {
        Ok(Some(own)) => Ok(Some((Some(id), own.into()))),
        Ok(None) => Ok(global().map(|s| (Some(id), s))),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /api/v1/sso?tenant=ID`: whether the softphone can offer single
/// sign-on.
async fn configured(
    State(app): State<App>,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badQuery",
            "the only parameter is tenant",
        );
    };
    match provider_for(&app, q.tenant.as_deref()).await {
        Ok(p) => Json(serde_json::json!({"configured": p.is_some()})).into_response(),
        Err(r) => r,
    }
}

// ---- the flow ---------------------------------------------------------------

/// Why a single sign-on failed, as the softphone is told (`error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    NotConfigured,
    /// The state is unknown, used or expired.
    Expired,
    /// The provider could not be reached, refused, or answered nonsense.
    ProviderFailed,
    /// The ID token failed a check (signature, issuer, audience, expiry, nonce).
    InvalidToken,
    EmailNotVerified,
    DomainNotAllowed,
    NoAccount,
    AccountDisabled,
}

impl Failure {
    fn code(self) -> &'static str {
        match self {
            Self::NotConfigured => "notConfigured",
            Self::Expired => "expired",
            Self::ProviderFailed => "providerFailed",
            Self::InvalidToken => "invalidToken",
            Self::EmailNotVerified => "emailNotVerified",
            Self::DomainNotAllowed => "domainNotAllowed",
            Self::NoAccount => "noAccount",
            Self::AccountDisabled => "accountDisabled",
        }
    }

    fn message(self, email: &str) -> String {
        match self {
            Self::NotConfigured => "Single sign-on is not configured for this call center.".into(),
            Self::Expired => "This sign-in took too long or was already used. Start again from the softphone.".into(),
            Self::ProviderFailed => "The identity provider could not complete the sign-in. Try again later.".into(),
            Self::InvalidToken => "The identity provider's answer could not be verified. Try again, or ask your administrator.".into(),
            Self::EmailNotVerified => "Your email address is not verified by the identity provider.".into(),
            Self::DomainNotAllowed => "Accounts of this email domain may not sign in here.".into(),
            Self::NoAccount => format!("There is no account for {email}. Ask your administrator."),
            Self::AccountDisabled => "This account is disabled. Ask your administrator.".into(),
        }
    }
}

/// The redirect URI of this server: `[sso] public_url`, else the request's
/// host (`http` for a loopback host, `https` otherwise).
fn redirect_uri(app: &App, headers: &HeaderMap) -> Option<RedirectUrl> {
    let base = match &app.cfg.sso.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            if host.is_empty() || host.len() > 300 {
                return None;
            }
            let parsed = url::Url::parse(&format!("http://{host}")).ok()?;
            if parsed.path() != "/" || parsed.query().is_some() || !parsed.username().is_empty() {
                return None;
            }
            let loopback = matches!(
                parsed.host(),
                Some(url::Host::Domain("localhost"))
                    | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                    | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
            );
            let scheme = if loopback { "http" } else { "https" };
            format!("{scheme}://{host}")
        }
    };
    RedirectUrl::new(format!("{base}/sso/callback")).ok()
}

/// `GET /sso/start?tenant=ID`: sends the popup to the provider.
async fn start(
    State(app): State<App>,
    headers: HeaderMap,
    q: Result<Query<TenantQuery>, QueryRejection>,
) -> Response {
    let tenant = q.ok().and_then(|Query(q)| q.tenant);
    let (tenant, settings) = match provider_for(&app, tenant.as_deref()).await {
        Ok(Some(p)) => p,
        Ok(None) => return failed(Failure::NotConfigured, ""),
        Err(r) => return r,
    };
    let Some(redirect) = redirect_uri(&app, &headers) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "badHost",
            "the Host header is not usable",
        );
    };
    let meta = match app.sso.discover(&settings.issuer).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(issuer = %settings.issuer, "single sign-on: discovery failed: {e}");
            return failed(Failure::ProviderFailed, "");
        }
    };
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(settings.client_id.clone()),
        settings.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect.clone());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    app.sso.keep(
        state.secret().clone(),
        Flow {
            started: Instant::now(),
            tenant,
            settings,
            verifier,
            nonce,
            redirect,
        },
    );
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    /// The provider's refusal (`access_denied`, ...).
    #[serde(default)]
    error: Option<String>,
}

/// `GET /sso/callback?code&state`: back from the provider.
async fn callback(
    State(app): State<App>,
    q: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return failed(Failure::Expired, "");
    };
    let state = q.state.unwrap_or_default();
    if state.is_empty() || state.len() > 200 {
        return failed(Failure::Expired, "");
    }
    let Some(flow) = app.sso.take(&state) else {
        return failed(Failure::Expired, "");
    };
    if let Some(err) = q.error {
        let err: String = err
            .chars()
            .take(64)
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        tracing::info!(issuer = %flow.settings.issuer, error = %err, "single sign-on: the provider refused");
        return failed(Failure::ProviderFailed, "");
    }
    let code = q.code.unwrap_or_default();
    if code.is_empty() || code.len() > 4096 {
        return failed(Failure::ProviderFailed, "");
    }
    let user = match verify(&app, flow, code).await {
        Ok(u) => u,
        Err((failure, email)) => return failed(failure, &email),
    };
    if !user.enabled {
        return failed(Failure::AccountDisabled, &user.email);
    }
    match crate::http::open_session_body(&app, user).await {
        Ok(body) => {
            tracing::info!("signed in by single sign-on");
            page(
                StatusCode::OK,
                "Signed in. This window closes by itself.",
                &body,
            )
        }
        Err(r) => r,
    }
}

/// Exchanges the code, checks the ID token and maps its email to a user.
async fn verify(
    app: &App,
    flow: Flow,
    code: String,
) -> Result<seatline_store::User, (Failure, String)> {
    let none = |f: Failure| (f, String::new());
    let issuer = flow.settings.issuer.clone();
    let meta = app.sso.discover(&issuer).await.map_err(|e| {
        tracing::warn!(issuer = %issuer, "single sign-on: discovery failed: {e}");
        none(Failure::ProviderFailed)
    })?;
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(flow.settings.client_id.clone()),
        flow.settings.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(flow.redirect);
    let request = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|_| {
            tracing::warn!(issuer = %issuer, "single sign-on: the provider has no token endpoint");
            none(Failure::ProviderFailed)
        })?;
    let tokens = request
        .set_pkce_verifier(flow.verifier)
        .request_async(&app.sso.http)
        .await
        .map_err(|e| {
            // Its Display names the kind and the provider's error code, never
            // the body, the code or the secret.
            tracing::warn!(issuer = %issuer, "single sign-on: token request failed: {e}");
            none(Failure::ProviderFailed)
        })?;
    let Some(id_token) = tokens.id_token() else {
        tracing::warn!(issuer = %issuer, "single sign-on: no ID token in the answer");
        return Err(none(Failure::ProviderFailed));
    };
    let claims = id_token
        .claims(&client.id_token_verifier(), &flow.nonce)
        .map_err(|e| {
            tracing::warn!(issuer = %issuer, "single sign-on: ID token refused: {e}");
            none(Failure::InvalidToken)
        })?;
    let Some(email) = claims.email().map(|e| e.as_str().trim().to_lowercase()) else {
        tracing::info!(issuer = %issuer, "single sign-on: the ID token has no email");
        return Err(none(Failure::EmailNotVerified));
    };
    if email.len() > 254 || email.chars().any(char::is_control) || !email.contains('@') {
        return Err(none(Failure::NoAccount));
    }
    if claims.email_verified() != Some(true) {
        return Err((Failure::EmailNotVerified, email));
    }
    if !flow.settings.allows(&email) {
        return Err((Failure::DomainNotAllowed, email));
    }
    match app.store.user_by_email(&email).await {
        Ok(Some(u)) if flow.tenant.unwrap_or(u.tenant_id) == u.tenant_id => Ok(u),
        Ok(_) => Err((Failure::NoAccount, email)),
        Err(e) => {
            tracing::error!("single sign-on: store: {e}");
            Err(none(Failure::ProviderFailed))
        }
    }
}

/// The page that ends a failed sign-in: it says why and tells the softphone.
fn failed(f: Failure, email: &str) -> Response {
    let body = serde_json::json!({"error": f.code(), "email": email});
    page(StatusCode::OK, &f.message(email), &body)
}

/// The popup's last page: a message for the person, and the result for the
/// softphone in a JSON script element, which `/admin/js/sso-done.js` posts to
/// `window.opener` at this origin only (and closes the popup on success).
fn page(status: StatusCode, message: &str, result: &impl Serialize) -> Response {
    let json = serde_json::to_string(result)
        .unwrap_or_else(|_| "{}".into())
        // Inside <script>: nothing can close the element or open a comment.
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Seatline sign-in</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
<body style=\"font-family: system-ui, sans-serif; margin: 2em\">\
<p id=\"sso-message\">{}</p>\
<script id=\"sso-result\" type=\"application/json\">{json}</script>\
<script src=\"/admin/js/sso-done.js\"></script></body></html>",
        html_escape(message)
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; base-uri 'none'; form-action 'none'",
        ),
    );
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// ---- the tenant admin's settings -------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SettingsBody {
    issuer: String,
    client_id: String,
    /// Absent: the stored secret is kept.
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    allowed_domains: Vec<String>,
}

/// What an admin sees: never the secret.
fn view(s: Option<&TenantSso>) -> Response {
    let body = match s {
        None => serde_json::json!({"configured": false}),
        Some(s) => serde_json::json!({
            "configured": true,
            "issuer": s.issuer,
            "clientId": s.client_id,
            "clientSecretSet": s.client_secret.is_some(),
            "allowedDomains": s.allowed_domains,
        }),
    };
    Json(body).into_response()
}

/// `GET /api/v1/admin/sso`: the tenant's own provider.
async fn get_settings(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant = match crate::records::admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.store.tenant_sso(tenant).await {
        Ok(s) => view(s.as_ref()),
        Err(e) => internal(e),
    }
}

/// `PUT /api/v1/admin/sso`: sets the tenant's own provider; a bad field
/// refuses the whole body (400 `badSettings`) and changes nothing.
async fn put_settings(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<SettingsBody>, JsonRejection>,
) -> Response {
    let tenant = match crate::records::admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let b =
        match body {
            Ok(Json(b)) => b,
            Err(rejection) => return json_rejection(
                rejection,
                "send JSON {\"issuer\", \"clientId\", \"clientSecret\", \"allowedDomains\": []}",
            ),
        };
    let stored = match app.store.tenant_sso(tenant).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let secret = match b.client_secret {
        Some(s) => Some(s),
        None => stored.and_then(|s| s.client_secret),
    };
    let bad = |e: BadSettings| api_error(StatusCode::BAD_REQUEST, "badSettings", &e.to_string());
    let Some(secret) = secret else {
        return bad(BadSettings::ClientSecret);
    };
    let checked = match (Settings {
        issuer: b.issuer,
        client_id: b.client_id,
        client_secret: Some(secret),
        allowed_domains: b.allowed_domains,
    })
    .check()
    {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let row = TenantSso {
        issuer: checked.issuer,
        client_id: checked.client_id,
        client_secret: checked.client_secret,
        allowed_domains: checked.allowed_domains,
    };
    match app.store.set_tenant_sso(tenant, &row).await {
        Ok(()) => {
            tracing::info!(tenant, issuer = %row.issuer, "single sign-on provider set");
            view(Some(&row))
        }
        Err(e) => internal(e),
    }
}

/// `DELETE /api/v1/admin/sso`: the tenant's own provider goes; the global
/// one applies again.
async fn delete_settings(State(app): State<App>, headers: HeaderMap) -> Response {
    let tenant = match crate::records::admin_or_key(&app, &headers, "users:write").await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match app.store.delete_tenant_sso(tenant).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(issuer: &str) -> Settings {
        Settings {
            issuer: issuer.into(),
            client_id: "client".into(),
            client_secret: Some("secret".into()),
            allowed_domains: vec![],
        }
    }

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for ok in [
            "https://accounts.google.com",
            "https://login.example.com/tenant/v2.0",
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(settings(ok).check().is_ok(), "{ok}");
        }
        assert_eq!(
            settings("http://localhost:9000/").check().unwrap().issuer,
            "http://localhost:9000"
        );
        for bad in [
            "",
            "accounts.google.com",
            "http://accounts.google.com",
            "http://10.0.0.1",
            "ftp://localhost",
            "https://user@accounts.google.com",
            "https://accounts.google.com?x=1",
            "https://accounts.google.com#x",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                settings(bad).check().err(),
                Some(BadSettings::Issuer),
                "{bad}"
            );
        }
        let long = format!("https://{}.com", "a".repeat(400));
        assert!(settings(&long).check().is_err());
    }

    #[test]
    fn fields_are_bounded_and_domains_checked() {
        let mut s = settings("https://idp.example");
        s.client_id = String::new();
        assert_eq!(s.check().err(), Some(BadSettings::ClientId));
        let mut s = settings("https://idp.example");
        s.client_secret = Some("x".repeat(501));
        assert_eq!(s.check().err(), Some(BadSettings::ClientSecret));
        let mut s = settings("https://idp.example");
        s.allowed_domains = vec!["Example.com".into()];
        assert!(matches!(s.check(), Err(BadSettings::Domain(_))));
        let mut s = settings("https://idp.example");
        s.allowed_domains = (0..=MAX_DOMAINS).map(|i| format!("d{i}.example")).collect();
        assert_eq!(s.check().err(), Some(BadSettings::TooManyDomains));
        let mut s = settings("https://idp.example");
        s.allowed_domains = vec!["example.com".into(), "example.com".into()];
        let s = s.check().unwrap();
        assert_eq!(s.allowed_domains, vec!["example.com"]);
        assert!(s.allows("a@example.com"));
        assert!(s.allows("a@EXAMPLE.com"));
        assert!(!s.allows("a@sub.example.com"));
        assert!(!s.allows("a@evil.com"));
        assert!(settings("https://idp.example").allows("anyone@anywhere.example"));
    }

    #[test]
    fn flows_are_bounded_expire_and_are_taken_once() {
        let sso = Sso::with_capacity(100);
        let flow = |started| Flow {
            started,
            tenant: None,
            settings: settings("https://idp.example"),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            nonce: Nonce::new("n".into()),
            redirect: RedirectUrl::new("http://localhost/sso/callback".into()).unwrap(),
        };
        let now = Instant::now();
        sso.keep("a".into(), flow(now));
        assert!(sso.take("a").is_some());
        assert!(sso.take("a").is_none(), "once");
        if let Some(old) = now.checked_sub(FLOW_TTL + Duration::from_secs(1)) {
            sso.keep("old".into(), flow(old));
            assert!(sso.take("old").is_none(), "expired");
        }
        for i in 0..110 {
            sso.keep(format!("s{i}"), flow(now + Duration::from_micros(i)));
        }
        assert_eq!(sso.len(), 100);
        assert!(sso.take("s0").is_none(), "the oldest went");
        assert!(sso.take("s109").is_some());
    }

    #[test]
    fn the_config_file_section_is_checked_and_its_secret_not_printed() {
        use crate::config::Config;
        let c = Config::from_toml("[sso]\nclient_id = \"x\"\nclient_secret = \"s3cret-value\"\n")
            .unwrap();
        assert_eq!(c.sso.issuer, "https://accounts.google.com");
        assert!(!format!("{c:?}").contains("s3cret-value"));
        assert!(
            Config::from_toml("").unwrap().sso.client_id.is_none(),
            "off"
        );
        for bad in [
            "[sso]\nissuer = \"http://idp.example\"\nclient_id = \"x\"\n",
            "[sso]\nclient_id = \"\"\n",
            "[sso]\nclient_id = \"x\"\nallowed_domains = [\"Bad\"]\n",
            "[sso]\nclient_id = \"x\"\npublic_url = \"https://p.example/path\"\n",
            "[sso]\nclient_id = \"x\"\nunknown = 1\n",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_result_cannot_break_out_of_its_script_element() {
        let r = page(
            StatusCode::OK,
            "<b>",
            &serde_json::json!({"email": "</script><script>alert(1)</script>"}),
        );
        let (_, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        let html = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(html.matches("</script>").count(), 2, "{html}");
        assert!(html.contains("&lt;b&gt;"));
    }
}
