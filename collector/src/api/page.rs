//! Pagination of the `/api/v1` lists.
//!
//! A list answers a bare JSON array (what callers have always parsed) of at
//! most `limit` items (default 100, at most 1000) after skipping `offset`.
//! When more items follow, the response carries
//! `Link: </api/v1/...?...&offset=N>; rel="next"` (RFC 8288): the same
//! request with the next offset, every other parameter kept. No `Link`
//! header means the last page.

use axum::Json;
use axum::http::header::LINK;
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::Page;
use crate::{Error, Result};

/// Items per page when the request does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most items one page may hold.
pub const MAX_LIMIT: u32 = 1000;

/// The page a request asks for, checked: `limit` in 1..=1000 (400 naming
/// `limit` otherwise).
pub fn requested(limit: Option<u32>, offset: Option<u64>) -> Result<Page> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidArgument(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        )));
    }
    Ok(Page {
        limit: limit.into(),
        offset: offset.unwrap_or(0),
    })
}

/// What to ask the store for: one row more than the page, so the answer
/// knows whether a next page exists without counting.
pub fn probe(page: Page) -> Page {
    Page {
        limit: page.limit + 1,
        ..page
    }
}

/// One page of a list, answered as a JSON array with a `Link` to the next
/// page when there is one.
pub struct Paged<T> {
    items: Vec<T>,
    next: Option<HeaderValue>,
}

impl<T> Paged<T> {
    /// `rows` as fetched with [`probe`]`(page)` for the request `uri`.
    pub fn new(mut rows: Vec<T>, page: Page, uri: &Uri) -> Self {
        let more = u64::try_from(rows.len()).unwrap_or(u64::MAX) > page.limit;
        let next = if more {
            rows.truncate(usize::try_from(page.limit).unwrap_or(usize::MAX));
            next_link(uri, page)
        } else {
            None
        };
        Paged { items: rows, next }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut r = Json(self.items).into_response();
        if let Some(link) = self.next {
            r.headers_mut().insert(LINK, link);
        }
        r
    }
}

/// `<path?query with offset and limit of the next page>; rel="next"`.
fn next_link(uri: &Uri, page: Page) -> Option<HeaderValue> {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap_or_default();
    pairs.retain(|(k, _)| k != "offset" && k != "limit");
    pairs.push(("limit".into(), page.limit.to_string()));
    pairs.push((
        "offset".into(),
        page.offset.saturating_add(page.limit).to_string(),
    ));
    let query = serde_urlencoded::to_string(&pairs).ok()?;
    HeaderValue::from_str(&format!("<{}?{query}>; rel=\"next\"", uri.path())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_1_to_1000_are_refused_naming_limit() {
        assert_eq!(requested(None, None).expect("default"), Page::first(100));
        assert!(requested(Some(1000), Some(5)).is_ok());
        for bad in [0, 1001] {
            let e = requested(Some(bad), None).expect_err("refused");
            assert!(e.to_string().contains("limit"), "{e}");
        }
    }

    #[test]
    fn a_full_probe_links_the_next_page_keeping_the_other_parameters() {
        let uri: Uri = "/api/v1/tickets?state=open&offset=2&limit=2&host=a%20b"
            .parse()
            .expect("uri");
        let page = requested(Some(2), Some(2)).expect("page");
        let p = Paged::new(vec![1, 2, 3], page, &uri);
        assert_eq!(p.items, vec![1, 2]);
        let link = p.next.expect("next");
        assert_eq!(
            link.to_str().expect("ascii"),
            "</api/v1/tickets?state=open&host=a+b&limit=2&offset=4>; rel=\"next\""
        );
        // The last page (no probe row) has no link.
        let p = Paged::new(vec![1, 2], page, &uri);
        assert!(p.next.is_none());
    }
}
