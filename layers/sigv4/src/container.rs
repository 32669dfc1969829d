//! Credentials from a container credentials endpoint, fetched when needed and refreshed before
//! they expire.
//!
//! Lambda on demand hands the execution role's temporary credentials to the process in
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, for the life of the
//! execution environment. Where an environment can outlive its first credentials (SnapStart
//! restores, and any host that sets `AWS_CONTAINER_CREDENTIALS_FULL_URI`, as ECS, EKS Pod Identity
//! and SnapStart do), the credentials are served over HTTP instead: a `GET` with an
//! `Authorization` token answers `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`.
//! This is that provider, as the AWS SDKs' container credential provider specifies it.

use std::{
    fmt,
    net::IpAddr,
    path::PathBuf,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, SystemTime},
};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::date_time::{DateTime, Format};
use http::{HeaderValue, Uri};
use opentelemetry_http::{Bytes, HttpClient, Request};
use serde::Deserialize;

use crate::SigV4Error;

/// How long before their expiry cached credentials are replaced. Refreshing early leaves room for
/// a failed refresh (the cached credentials are used until they expire) and for clock skew.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// The address ECS serves `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on.
const ECS_HOST: &str = "169.254.170.2";

/// A container credentials endpoint: where to `GET` the credentials, and the token that
/// authorizes the request.
///
/// Plain `http` is accepted only for the hosts the SDKs accept it for: loopback, ECS's
/// `169.254.170.2` and EKS's `169.254.170.23` / `fd00:ec2::23`. Any host is accepted over
/// `https`.
#[derive(Clone)]
pub struct ContainerCredentials {
    uri: Uri,
    token: Option<AuthorizationToken>,
}

#[derive(Clone)]
enum AuthorizationToken {
    Value(String),
    /// Read at every fetch: the file is rotated by its owner (EKS Pod Identity does).
    File(PathBuf),
}

impl ContainerCredentials {
    /// The endpoint at `uri` (`AWS_CONTAINER_CREDENTIALS_FULL_URI`), with no token.
    pub fn new(uri: &str) -> Result<Self, SigV4Error> {
        let parsed: Uri = uri.parse().map_err(|e| {
            SigV4Error::with_source(
                &format!("the container credentials URI {uri:?} is not a URI"),
                e,
            )
        })?;
        let allowed = match (parsed.scheme_str(), parsed.host()) {
            (Some("https"), Some(_)) => true,
            (Some("http"), Some(host)) => plain_http_allowed(host),
            _ => false,
        };
        if !allowed {
            return Err(SigV4Error::new(format!(
                "the container credentials URI {uri:?} is not allowed: it must be https, or http \
                 to a loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23"
            )));
        }
        Ok(Self {
            uri: parsed,
            token: None,
        })
    }

    /// The endpoint at `path` on ECS's credentials host (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
    pub fn relative(path: &str) -> Result<Self, SigV4Error> {
        let separator = if path.starts_with('/') { "" } else { "/" };
        Self::new(&format!("http://{ECS_HOST}{separator}{path}"))
    }

    /// The `Authorization` header's value (`AWS_CONTAINER_AUTHORIZATION_TOKEN`). Defaults to
    /// none.
    pub fn authorization_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(AuthorizationToken::Value(token.into()));
        self
    }

    /// A file holding the `Authorization` header's value, read at every fetch
    /// (`AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, which the SDKs prefer over the token itself).
    /// Defaults to none.
    pub fn authorization_token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token = Some(AuthorizationToken::File(path.into()));
        self
    }

    /// The endpoint's URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// `GET`s the credentials with `client`.
    async fn fetch<C: HttpClient>(&self, client: &C) -> Result<Fetched, SigV4Error> {
        let failed = |reason: String| {
            SigV4Error::new(format!(
                "cannot get credentials from the container credentials endpoint {}: {reason}",
                self.uri
            ))
        };
        let mut request = Request::get(self.uri.clone())
            .header("accept", "application/json")
            .body(Bytes::new())
            .map_err(|e| failed(e.to_string()))?;
        if let Some(token) = &self.token {
            let token = match token {
                AuthorizationToken::Value(token) => token.clone(),
                AuthorizationToken::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| failed(format!("cannot read the token file {path:?}: {e}")))?,
            };
            // The SDKs refuse a token with a line break rather than send a broken header.
            let mut value =
                HeaderValue::from_str(token.trim_end_matches(['\r', '\n'])).map_err(|_| {
                    failed("the authorization token is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
        }
        let response = client
            .send_bytes(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("it answered {}", response.status())));
        }
        let body: Body = serde_json::from_slice(response.body())
            .map_err(|e| failed(format!("its answer is not the credentials' JSON: {e}")))?;
        let expiry = match body.expiration.as_deref() {
            None => None,
            Some(expiration) => Some(
                DateTime::from_str(expiration, Format::DateTime)
                    .ok()
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .ok_or_else(|| {
                        failed(format!(
                            "its Expiration {expiration:?} is not an RFC 3339 time"
                        ))
                    })?,
            ),
        };
        let credentials = Credentials::new(
            body.access_key_id,
            body.secret_access_key,
            body.token,
            expiry,
            "container credentials endpoint",
        );
        Ok(Fetched {
            identity: Identity::from(credentials),
            expiry,
        })
    }
}

impl fmt::Debug for ContainerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = match &self.token {
            None => None,
            Some(AuthorizationToken::Value(_)) => Some("[REDACTED]".to_owned()),
            Some(AuthorizationToken::File(path)) => Some(format!("file {path:?}")),
        };
        f.debug_struct("ContainerCredentials")
            .field("uri", &self.uri)
            .field("token", &token)
            .finish()
    }
}

/// Loopback, or one of the link-local hosts ECS and EKS serve credentials on.
fn plain_http_allowed(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(ip) => {
            ip.is_loopback()
                || ip == IpAddr::from([169, 254, 170, 2])
                || ip == IpAddr::from([169, 254, 170, 23])
                || ip == IpAddr::from([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23])
        }
        Err(_) => false,
    }
}

/// The endpoint's answer, as the SDKs read it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Body {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

/// The one refresh in progress; released when the fetch ends or is dropped (an export cut short
/// by its timeout), so a later request can try again.
struct RefreshGuard<'a>(&'a AtomicBool);

impl<'a> RefreshGuard<'a> {
    fn try_new(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::AcqRel)).then_some(Self(flag))
    }
}

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Credentials as fetched, with their expiry (`None`: they do not expire).
#[derive(Clone)]
struct Fetched {
    identity: Identity,
    expiry: Option<SystemTime>,
}

impl Fetched {
    fn usable_at(&self, now: SystemTime) -> bool {
        self.expiry.is_none_or(|expiry| now < expiry)
    }

    fn fresh_at(&self, now: SystemTime) -> bool {
        self.expiry
            .is_none_or(|expiry| now + REFRESH_BEFORE_EXPIRY < expiry)
    }
}

/// An endpoint with the credentials it last gave.
pub(crate) struct Refreshing {
    endpoint: ContainerCredentials,
    cached: Mutex<Option<Fetched>>,
    /// One refresh at a time while the cached credentials are still usable: the other requests
    /// sign with those meanwhile.
    refreshing: AtomicBool,
}

impl Refreshing {
    pub(crate) fn new(endpoint: ContainerCredentials) -> Self {
        Self {
            endpoint,
            cached: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    fn cached(&self) -> Option<Fetched> {
        self.cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Credentials to sign with at `now`: the cached ones while they are fresh; else fetched
    /// (the first request, and [`REFRESH_BEFORE_EXPIRY`] before they expire). A failed refresh
    /// falls back on the cached credentials until they expire.
    pub(crate) async fn identity<C: HttpClient>(
        &self,
        client: &C,
        now: SystemTime,
    ) -> Result<Identity, SigV4Error> {
        let cached = self.cached();
        let mut _refresh = None;
        if let Some(cached) = &cached {
            if cached.fresh_at(now) {
                return Ok(cached.identity.clone());
            }
            if cached.usable_at(now) {
                match RefreshGuard::try_new(&self.refreshing) {
                    Some(guard) => _refresh = Some(guard),
                    None => return Ok(cached.identity.clone()),
                }
            }
        }
        match self.endpoint.fetch(client).await {
            Ok(fetched) => {
                let identity = fetched.identity.clone();
                *self
                    .cached
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fetched);
                Ok(identity)
            }
            Err(error) => match cached {
                Some(cached) if cached.usable_at(now) => Ok(cached.identity),
                _ => Err(error),
            },
        }
    }

    pub(crate) fn endpoint(&self) -> &ContainerCredentials {
        &self.endpoint
    }
}
