//! The operator dashboard: server-rendered pages on the collector's HTTP
//! port, with their static files embedded in the binary (no CDN, no
//! separate web server).
//!
//! Pages use the API's [`AppState`](crate::api::AppState) and are merged
//! into the HTTP router by [`crate::api::router`].

mod assets;

pub use assets::asset_url;

use axum::Router;

use crate::api::AppState;

/// The dashboard's routes: `/assets/...` (see [`asset_url`]).
pub fn router() -> Router<AppState> {
    Router::new().merge(assets::routes())
}
