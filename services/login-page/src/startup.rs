//! Wiring: the API client, the routes, the security headers, the listener.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{from_fn, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use mfa_runtime::shutdown::Shutdown;
use tokio::net::TcpListener;

use crate::api::Api;
use crate::config::Config;
use crate::domain::csrf::CsrfKey;
use crate::handlers::{self, AppState};

/// The largest form body taken: an email, a password of up to 1 KiB and the hidden fields.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// No script at all (the page works without one), styles only from the page's own
/// stylesheet, forms only to the page itself, and no framing: a page that asks for a
/// password must not be drawn inside another site's.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("building the HTTP client")]
    Client(#[from] reqwest::Error),
    #[error("binding the listen address")]
    Io(#[from] std::io::Error),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let api = Api::new(
            config.intake_url,
            config.verifier_url,
            config.api_key,
            config.platform,
            config.api_timeout,
            config.decision_poll,
        )?;
        let state = AppState {
            api,
            csrf: CsrfKey::new(config.csrf_secret),
            platform: config.platform,
            company_name: config.company_name,
            return_url: config.return_url,
            trusted_proxies: config.trusted_proxies,
        };
        let router = Router::new()
            .route("/", get(handlers::sign_in_form))
            .route("/sign-in", post(handlers::sign_in))
            .route("/verify", post(handlers::verify))
            .route("/code", post(handlers::code_page_in))
            .route("/static/page.css", get(handlers::stylesheet))
            .route("/healthz", get(handlers::healthz))
            .with_state(state)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
            .layer(from_fn(security_headers));
        let listener = TcpListener::bind(config.addr).await?;
        Ok(Self { listener, router })
    }

    #[expect(
        clippy::expect_used,
        reason = "the listener was bound in build: a bound socket has an address"
    )]
    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown`, then lets the requests in flight finish.
    pub async fn run(self, mut shutdown: Shutdown) -> Result<(), StartupError> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
        Ok(())
    }
}

/// On every answer: the CSP, no caching of a page (it holds a CSRF token and, on the code
/// page, the user's address) unless the route said otherwise, no MIME sniffing, no framing
/// for browsers older than `frame-ancestors`, no referrer to the return URL.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
