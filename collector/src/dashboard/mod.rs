//! The operator dashboard: server-rendered pages on the collector's HTTP
//! port, with their static files embedded in the binary (no CDN, no
//! separate web server).
//!
//! Pages use the API's [`AppState`](crate::api::AppState) and are merged
//! into the HTTP router by [`crate::api::router`].

mod assets;
#[cfg(test)]
mod bench;
mod events;
mod fleet;
mod host;
mod login;
mod noc;
pub mod page;
// === work pages ===
mod admin;
mod audit;
mod maintenance;
mod policies;
mod queue;
mod report;
mod sinks;
mod ticket;
mod tokens;
mod work_util;

pub use assets::asset_url;

use axum::Router;

use crate::api::AppState;

/// The dashboard's routes: pages, sign-in, and `/assets/...` (see
/// [`asset_url`]). Every route has its rule in [`crate::access::authz`].
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(assets::routes())
        .merge(login::routes())
        // === work pages ===
        .merge(queue::routes())
        .merge(maintenance::routes())
        .merge(policies::routes())
        .merge(report::routes())
        .merge(audit::routes())
        .merge(admin::routes())
        .merge(tokens::routes())
        .merge(sinks::routes())
        .merge(ticket::routes())
        .merge(fleet::routes())
        .merge(host::routes())
        .merge(noc::routes())
        .merge(events::routes())
}
