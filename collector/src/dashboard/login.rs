//! Sign in, sign out, and setting a password through a one-time link.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{FromRequest, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::page::{Page, render, render_with};
use crate::Error;
use crate::access::sessions::LoginRequest;
use crate::api::AppState;
use crate::api::auth::{SESSION_COOKIE, cookie, source};
use crate::domain::now_millis;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/setup", get(setup_page).post(setup))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: Page,
    error: Option<String>,
    next: String,
    username: String,
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only a path on this collector may follow a login (no open redirect).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    render(&LoginPage {
        page: Page::public("Sign in"),
        error: None,
        next: local_path(q.next.as_deref()),
        username: String::new(),
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    totp: String,
    #[serde(default)]
    next: String,
}

async fn login(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let from = source(req.extensions());
    let Ok(Form(f)) = Form::<LoginForm>::from_request(req, &s).await else {
        return Error::InvalidArgument("expected a form with username and password".into())
            .into_response();
    };
    let next = local_path(Some(&f.next));
    let attempt = LoginRequest {
        username: f.username.clone(),
        password: f.password,
        totp: Some(f.totp).filter(|t| !t.trim().is_empty()),
    };
    match s.access.login(&attempt, &from, now_millis()).await {
        Ok(session) => {
            let mut cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
                session.cookie
            );
            if s.access.secure_cookies {
                cookie.push_str("; Secure");
            }
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => {
            let status = match e {
                Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                ref other if other.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let shown = match &e {
                Error::RateLimited(m) | Error::Unauthenticated(m) => m.clone(),
                _ => {
                    tracing::error!(error = %e, "login failed");
                    "sign-in is unavailable right now; try again".into()
                }
            };
            render_with(
                status,
                &LoginPage {
                    page: Page::public("Sign in"),
                    error: Some(shown),
                    next,
                    username: f.username,
                },
            )
        }
    }
}

async fn logout(State(s): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Err(error) = s.access.logout(c).await
    {
        return error.into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    page: Page,
    error: Option<String>,
    token: String,
    done: bool,
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn setup_page(Query(q): Query<TokenQuery>) -> Response {
    render(&SetupPage {
        page: Page::public("Set your password"),
        error: None,
        token: q.token,
        done: false,
    })
}

#[derive(Debug, Deserialize)]
struct SetupForm {
    token: String,
    password: String,
    confirm: String,
}

async fn setup(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let from = source(req.extensions());
    let Ok(Form(f)) = Form::<SetupForm>::from_request(req, &s).await else {
        return Error::InvalidArgument("expected a form with token and password".into())
            .into_response();
    };
    let again = |status, error: String, token: String| {
        render_with(
            status,
            &SetupPage {
                page: Page::public("Set your password"),
                error: Some(error),
                token,
                done: false,
            },
        )
    };
    if f.password != f.confirm {
        return again(
            StatusCode::BAD_REQUEST,
            "the two passwords differ".into(),
            f.token,
        );
    }
    match s
        .access
        .complete_setup(&f.token, &f.password, &from, now_millis())
        .await
    {
        Ok(_) => render(&SetupPage {
            page: Page::public("Password set"),
            error: None,
            token: String::new(),
            done: true,
        }),
        Err(Error::InvalidArgument(m)) => again(StatusCode::BAD_REQUEST, m, f.token),
        Err(Error::PermissionDenied(m)) => again(StatusCode::FORBIDDEN, m, String::new()),
        Err(e) => e.into_response(),
    }
}
