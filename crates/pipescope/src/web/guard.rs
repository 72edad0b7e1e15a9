//! What a browser must not be made to do: another site's page posting to `/write` (CSRF: the
//! Origin check) or reading the API through a DNS name it points at the monitor (DNS rebinding:
//! the Host check). And the security headers every answer carries.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Web;
use crate::web::ApiError;

/// The portal loads its own script and stylesheet only; inline styles are allowed because
/// ECharts writes `style` attributes (tooltips, SVG). No inline script, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers added to every answer (unless the handler set them).
pub const SECURITY_HEADERS: &[(HeaderName, &str)] = &[
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// The Host and Origin rules of `[web]`.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    any_host: bool,
    /// Lower case, as configured: `name` (any port) or `name:port`.
    hosts: Vec<String>,
    any_origin: bool,
    /// Lower case, without a trailing `/`.
    origins: Vec<String>,
}

impl Guard {
    pub fn new(web: &Web) -> Self {
        let norm = |s: &String| s.trim().trim_end_matches('/').to_ascii_lowercase();
        Self {
            any_host: web.allowed_hosts.iter().any(|h| h.trim() == "*"),
            hosts: web.allowed_hosts.iter().map(norm).collect(),
            any_origin: web.allowed_origins.iter().any(|o| o.trim() == "*"),
            origins: web.allowed_origins.iter().map(norm).collect(),
        }
    }

    /// Whether a request with these method and headers may pass, or the message refusing it.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), String> {
        let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or(""));
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Err(format!(
                "Host {host:?} is not a name of this server: a DNS name pointed at it by another \
                 site's page (DNS rebinding) is refused. If you reach pipescope by this name, \
                 add {:?} to [web] allowed_hosts",
                split_port(host).0
            ));
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || self.any_origin {
            return Ok(());
        }
        match headers
            .get(header::ORIGIN)
            .map(|o| o.to_str().unwrap_or(""))
        {
            Some(origin) => {
                let origin_lower = origin.trim_end_matches('/').to_ascii_lowercase();
                let authority = origin_lower.split_once("://").map(|(_, a)| a);
                let same_origin = authority.is_some()
                    && host.is_some_and(|h| h.eq_ignore_ascii_case(authority.unwrap_or("")));
                if same_origin || self.origins.contains(&origin_lower) {
                    Ok(())
                } else {
                    Err(format!(
                        "cross-origin {method} refused: a page at {origin:?} may not send it \
                         here (CSRF). To allow that site, add {origin:?} to [web] allowed_origins"
                    ))
                }
            }
            // Browsers that do not send Origin still say where a request comes from.
            None => match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
                Some("cross-site" | "same-site") => Err(format!(
                    "cross-site {method} refused (CSRF): send it from the portal, or without a browser"
                )),
                _ => Ok(()),
            },
        }
    }

    /// IP addresses and `localhost` are never DNS-rebound names, nor are single-label names
    /// (a container's or a machine's short name), which no outside site can register.
    fn host_allowed(&self, host: &str) -> bool {
        if self.any_host {
            return true;
        }
        let lower = host.trim().to_ascii_lowercase();
        let (name, _port) = split_port(&lower);
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return false;
        }
        let is_ip = name.parse::<Ipv4Addr>().is_ok()
            || name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .is_some_and(|n| n.parse::<Ipv6Addr>().is_ok());
        is_ip
            || name == "localhost"
            || (!name.contains('.') && !name.contains('['))
            || self.hosts.iter().any(|h| *h == lower || *h == name)
    }
}

/// `name:port` → (`name`, `Some(port)`); `[::1]:80` → (`[::1]`, `Some(80)`).
fn split_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => (&host[..=end], host[end + 1..].strip_prefix(':')),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

/// Wraps `router` with the Host and Origin checks of `web`, and the security headers.
pub fn protect(router: Router, web: &Web) -> Router {
    router
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(Guard::new(web)),
            check,
        ))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(why) => ApiError::new(StatusCode::FORBIDDEN, why).into_response(),
    }
}

/// Adds [`SECURITY_HEADERS`] to every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str], origins: &[&str]) -> Guard {
        Guard::new(&Web {
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            ..Web::default()
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn hosts_that_cannot_be_rebound_pass_and_other_names_do_not() {
        let g = guard(&["pipescope.example.com", "grafana.example.com:8443"], &[]);
        for ok in [
            "127.0.0.1:7575",
            "localhost:7575",
            "LOCALHOST",
            "[::1]:7575",
            "10.1.2.3:7575",
            "pipescope:7575",
            "pipescope.example.com",
            "pipescope.example.com:80",
            "Pipescope.Example.Com.:7575",
            "grafana.example.com:8443",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:7575",
            "grafana.example.com:7575",
            "127.0.0.1.evil.example",
            "[::1.evil]:80",
            "",
        ] {
            assert!(!g.host_allowed(refused), "{refused}");
        }
        assert!(guard(&["*"], &[]).host_allowed("evil.example"));
    }

    #[test]
    fn a_cross_origin_post_is_refused_and_same_origin_or_no_origin_passes() {
        let g = guard(&[], &["https://grafana.example.com"]);
        let post = Method::POST;
        let host = ("host", "127.0.0.1:7575");
        assert!(g.check(&post, &headers(&[host])).is_ok(), "curl, the sink");
        assert!(
            g.check(
                &post,
                &headers(&[host, ("origin", "http://127.0.0.1:7575")])
            )
            .is_ok()
        );
        assert!(
            g.check(
                &post,
                &headers(&[host, ("origin", "https://GRAFANA.example.com/")])
            )
            .is_ok()
        );
        let refused = g
            .check(&post, &headers(&[host, ("origin", "http://evil.example")]))
            .unwrap_err();
        assert!(refused.contains("allowed_origins"), "{refused}");
        for origin in ["null", "http://127.0.0.1:7576", "http://127.0.0.1"] {
            assert!(
                g.check(&post, &headers(&[host, ("origin", origin)]))
                    .is_err(),
                "{origin}"
            );
        }
        assert!(
            g.check(&post, &headers(&[host, ("sec-fetch-site", "cross-site")]))
                .is_err()
        );
        assert!(
            g.check(
                &Method::GET,
                &headers(&[host, ("origin", "http://evil.example")])
            )
            .is_ok(),
            "reading is the browser's same-origin policy's job"
        );
        assert!(
            guard(&[], &["*"])
                .check(&post, &headers(&[host, ("origin", "http://evil.example")]))
                .is_ok()
        );
    }

    #[test]
    fn the_host_check_names_the_setting() {
        let refused = guard(&[], &[])
            .check(&Method::GET, &headers(&[("host", "evil.example:7575")]))
            .unwrap_err();
        assert!(refused.contains("allowed_hosts"), "{refused}");
        assert!(refused.contains("\"evil.example\""), "{refused}");
    }
}
