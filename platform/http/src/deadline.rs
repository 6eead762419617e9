//! An answer within a deadline while a dependency hangs: a request that has not been
//! accepted within the budget gets `503 dependency_timeout` instead of waiting on a
//! stalled database or broker. A handler that must wait longer on purpose (login-intake
//! waiting for a decision) marks the request `Accepted` once its work is safely done, and
//! from then on the deadline no longer applies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::error_response;

/// How long a request may take before it is accepted.
#[derive(Debug, Clone, Copy)]
pub struct DependencyDeadline(pub Duration);

/// Set by a handler once the request's work is safely recorded (the login published).
#[derive(Debug, Clone, Default)]
pub struct Accepted(Arc<AtomicBool>);

impl Accepted {
    pub fn mark(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub async fn within_deadline(
    State(DependencyDeadline(budget)): State<DependencyDeadline>,
    mut request: Request,
    next: Next,
) -> Response {
    let accepted = Accepted::default();
    request.extensions_mut().insert(accepted.clone());
    let run = next.run(request);
    tokio::pin!(run);
    tokio::select! {
        response = &mut run => response,
        _ = tokio::time::sleep(budget) => {
            if accepted.is_marked() {
                run.await
            } else {
                tracing::warn!(budget_ms = budget.as_millis() as u64, "a dependency did not answer in time");
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dependency_timeout",
                    "the database or the broker did not answer in time; nothing was accepted, retry later",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::{Extension, Router};
    use tower::ServiceExt;

    fn app(budget_ms: u64) -> Router {
        Router::new()
            .route(
                "/hang",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            )
            .route(
                "/accepted-then-slow",
                get(|Extension(accepted): Extension<Accepted>| async move {
                    accepted.mark();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "decided"
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                DependencyDeadline(Duration::from_millis(budget_ms)),
                within_deadline,
            ))
    }

    async fn call(app: Router, path: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::get(path).body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_hanging_request_gets_503_at_the_deadline() {
        let started = std::time::Instant::now();
        let (status, body) = call(app(100), "/hang").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("dependency_timeout"), "{body}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn an_accepted_request_may_take_longer() {
        let (status, body) = call(app(100), "/accepted-then-slow").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "decided"));
    }
}
