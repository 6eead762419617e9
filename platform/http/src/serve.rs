//! The HTTP server loop of the services: axum's router on hyper, as `axum::serve` runs it,
//! with hyper's own header limits set far above the service's.
//!
//! Why not `axum::serve`: hyper refuses a request whose header section is over its limits
//! (100 headers, or a read buffer of about 400 KiB) itself, with an empty `431` that no
//! middleware sees, so the client gets no JSON error and the service logs nothing. Here hyper
//! takes up to [`HYPER_MAX_HEADERS`] headers and [`HYPER_MAX_BUF`] bytes, and
//! `edge::around` refuses anything over the service's own limits ([`crate::edge`]) with
//! the JSON envelope and a log line, like every other refusal. Only a request beyond hyper's
//! raised limits still meets hyper's bare answer.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// Headers hyper reads before giving up on a request (its default is 100).
pub const HYPER_MAX_HEADERS: usize = 1000;

/// The largest header section hyper buffers (its default is about 400 KiB).
pub const HYPER_MAX_BUF: usize = 1024 * 1024;

/// Serves `router` on `listener` until `stop` completes, then lets the open connections
/// finish their requests (the caller bounds how long, with its shutdown timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    // HTTP/1.1 only, as axum::serve with axum's default features.
    let mut builder = http1::Builder::new();
    builder
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF);
    // Connections hold a receiver each: the stop is sent to them, and the loop waits until
    // every one has dropped its receiver.
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let mut stop = pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait rather than spin, as
                    // axum::serve does; the listener itself stays good.
                    tracing::warn!(error = &error as &dyn std::error::Error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let builder = builder.clone();
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(error = %error, "connection ended with an error");
                    }
                    return;
                }
                _ = stopping.wait_for(|stopping| *stopping) => {}
            }
            // Finish the request in flight, take no other.
            connection.as_mut().graceful_shutdown();
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(stopping_rx);
    let _ = stopping_tx.send(true);
    stopping_tx.closed().await;
    Ok(())
}
