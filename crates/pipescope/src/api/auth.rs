//! Optional authentication in front of everything but `/health` and `/ready`: a bearer token or HTTP basic
//! auth (`[web] auth`). With a bearer token the portal's static files stay open (they hold no
//! data; the page asks for the token when the API answers 401). Credentials are compared in constant time (SHA-256 digests of both
//! sides, so not even their lengths leak). The live stream also takes `?access_token=`, since a
//! browser's EventSource cannot set headers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use crate::config::WebAuth;
use crate::web::ApiError;

/// Paths open without credentials.
const OPEN_PATHS: &[&str] = &["/health", "/ready"];
/// What carries data: with a bearer token everything else (the portal's own files, which hold
/// no data) is served without one, so the portal can load and ask for the token at its first 401.
fn carries_data(path: &str) -> bool {
    path.starts_with("/api/") || matches!(path, "/metrics" | "/write" | "/ping")
}
/// The one path that also takes `?access_token=`.
const LIVE_PATH: &str = "/api/v1/live";

#[derive(Debug)]
enum Expected {
    /// SHA-256 of the token.
    Bearer([u8; 32]),
    /// SHA-256 of `user:password`, as basic auth sends it (before base64).
    Basic([u8; 32]),
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

fn same(expected: &[u8; 32], given: &[u8]) -> bool {
    expected[..].ct_eq(&sha256(given)[..]).into()
}

impl Expected {
    fn of(auth: &WebAuth) -> Option<Self> {
        match auth {
            WebAuth::None => None,
            WebAuth::Bearer { token } => Some(Self::Bearer(sha256(token.expose().as_bytes()))),
            WebAuth::Basic { user, password } => Some(Self::Basic(sha256(
                format!("{user}:{}", password.expose()).as_bytes(),
            ))),
        }
    }

    fn challenge(&self) -> &'static str {
        match self {
            Self::Bearer(_) => "Bearer realm=\"pipescope\"",
            Self::Basic(_) => "Basic realm=\"pipescope\", charset=\"UTF-8\"",
        }
    }

    /// Whether the Authorization header's value carries the right credentials.
    fn header_ok(&self, value: &str) -> bool {
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        match self {
            Self::Bearer(token) => {
                scheme.eq_ignore_ascii_case("bearer") && same(token, rest.trim().as_bytes())
            }
            Self::Basic(pair) => {
                scheme.eq_ignore_ascii_case("basic")
                    && base64::engine::general_purpose::STANDARD
                        .decode(rest.trim())
                        .is_ok_and(|decoded| same(pair, &decoded))
            }
        }
    }

    /// Whether `?access_token=` is right: the token (bearer) or base64 of `user:password` (basic).
    fn query_ok(&self, token: &str) -> bool {
        match self {
            Self::Bearer(_) => self.header_ok(&format!("Bearer {token}")),
            Self::Basic(_) => self.header_ok(&format!("Basic {token}")),
        }
    }
}

/// Wraps `router` with the authentication `auth` asks for (none: `router` as it is).
pub fn protect(router: Router, auth: &WebAuth) -> Router {
    match Expected::of(auth) {
        None => router,
        Some(expected) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(expected),
            require,
        )),
    }
}

async fn require(State(expected): State<Arc<Expected>>, request: Request, next: Next) -> Response {
    match check(&expected, &request) {
        Ok(()) => next.run(request).await,
        Err(why) => refuse(&expected, why),
    }
}

/// Whether `request` may pass, or why not.
fn check(expected: &Expected, request: &Request) -> Result<(), &'static str> {
    let path = request.uri().path();
    if OPEN_PATHS.contains(&path)
        || (matches!(expected, Expected::Bearer(_)) && !carries_data(path))
    {
        return Ok(());
    }
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (ok, why) = match header {
        Some(value) => (
            expected.header_ok(value),
            "the credentials in the Authorization header are wrong",
        ),
        None if path == LIVE_PATH => {
            let token = Query::<HashMap<String, String>>::try_from_uri(request.uri())
                .ok()
                .and_then(|Query(mut q)| q.remove("access_token"));
            match token {
                Some(token) => (expected.query_ok(&token), "the access_token is wrong"),
                None => (false, "no Authorization header and no ?access_token="),
            }
        }
        None => (false, "no Authorization header"),
    };
    if ok { Ok(()) } else { Err(why) }
}

fn refuse(expected: &Expected, why: &str) -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        format!("authentication required: {why} (see [web] auth in the configuration)"),
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(expected.challenge()),
    );
    response
}
