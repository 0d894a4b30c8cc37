//! `GET /events`: the live feed as server-sent events, for the pages that
//! update themselves (`hx-ext="sse" sse-connect="/events"`, then
//! `hx-trigger="sse:changed"` refetches the page's live fragment).
//!
//! Each event is `event: changed` with `{"tenant_id": …, "kind": "agent" |
//! "ticket"}`, only for tenants in the caller's scope. A subscriber that
//! fell behind gets one `changed` naming no tenant (`{"kind":"any"}`):
//! refetch, something may have changed.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;

use crate::api::AppState;
use crate::api::auth::Caller;

/// A comment this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

async fn events(
    State(s): State<AppState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = s.svc.live().subscribe();
    let scope = caller.0.scope;
    let stream = async_stream(move |tx| async move {
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                () = tx.closed() => return,
            };
            let event = match received {
                Ok(c) if scope.allows(&c.tenant_id) => {
                    match Event::default().event("changed").json_data(&c) {
                        Ok(e) => e,
                        Err(_) => continue,
                    }
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {
                    Event::default().event("changed").data(r#"{"kind":"any"}"#)
                }
                Err(RecvError::Closed) => return,
            };
            if tx.send(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// A stream fed by a task (which ends when the client goes away: its sends
/// fail).
fn async_stream<F, Fut>(f: F) -> tokio_stream::wrappers::ReceiverStream<Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
