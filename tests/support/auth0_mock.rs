//! A local stand-in for an Auth0 tenant, faithful to the contract in shared/notes/auth0-contract.md:
//! the same paths, JSON and form bodies, status codes, both error shapes, rate-limit headers and
//! token expiry, with switches for latency, 429s, 5xx and dropped connections. It checks what it
//! is sent (client credentials, bearer token, grant type, realm, a quoted v3 query) and records
//! any deviation, so a client bug fails a test instead of passing against a lenient fake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "ivr-test-client";
pub const CLIENT_SECRET: &str = "s3cr3t-client-secret-7f2a91";
pub const CONNECTION: &str = "Phone-PINs";
const REALM_GRANT: &str = "http://auth0.com/oauth/grant-type/password-realm";

#[derive(Clone)]
pub struct MockUser {
    pub user_id: String,
    pub email: String,
    pub account_number: String,
    pub pin: String,
    pub balance: String,
    pub mfa: bool,
    /// `app_metadata.ivr_greeting`, the seed's greeting text.
    pub ivr_greeting: Option<String>,
}

#[derive(Default, Clone, Copy)]
pub struct Switches {
    pub latency: Duration,
    /// The next N requests get 429 with rate-limit headers (reset in `rate_limit_reset_s`).
    pub rate_limit_next: usize,
    pub rate_limit_reset_s: u64,
    pub server_error: bool,
    pub drop_connections: bool,
    /// Lifetime of management tokens.
    pub token_ttl_s: u64,
}

#[derive(Default)]
pub struct MockState {
    pub users: Mutex<Vec<MockUser>>,
    pub switches: Mutex<Switches>,
    tokens: Mutex<HashMap<String, Instant>>,
    failures: Mutex<HashMap<String, usize>>,
    pub token_requests: AtomicUsize,
    pub search_requests: AtomicUsize,
    pub login_requests: AtomicUsize,
    /// Requests that broke the contract.
    pub violations: Mutex<Vec<String>>,
    /// Everything secret the mock handed out or was sent, for log checks.
    pub issued_tokens: Mutex<Vec<String>>,
    audience: Mutex<String>,
}

impl MockState {
    pub fn requests(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
            + self.search_requests.load(Ordering::SeqCst)
            + self.login_requests.load(Ordering::SeqCst)
    }

    pub fn set(&self, f: impl FnOnce(&mut Switches)) {
        f(&mut self.switches.lock().unwrap());
    }

    /// Auth0's brute-force protection blocks this user (10 failures from our one IP).
    pub fn block(&self, email: &str) {
        self.failures.lock().unwrap().insert(email.to_string(), 10);
    }

    /// Revokes every management token (the API will answer 401).
    pub fn expire_tokens(&self) {
        self.tokens.lock().unwrap().clear();
    }

    fn violation(&self, what: String) -> Response {
        self.violations.lock().unwrap().push(what.clone());
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": what})),
        )
            .into_response()
    }
}

pub struct Auth0Mock {
    pub url: String,
    pub state: Arc<MockState>,
}

impl Auth0Mock {
    /// The settings that point the IVR's Auth0 backend at this mock.
    pub fn ivr_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("IVR_DIRECTORY__BACKEND", "auth0"),
            ("IVR_AUTH0__DOMAIN", self.url.as_str()),
            ("IVR_AUTH0__CLIENT_ID", CLIENT_ID),
            ("IVR_AUTH0__CLIENT_SECRET", CLIENT_SECRET),
            ("IVR_AUTH0__CONNECTION", CONNECTION),
        ]
    }

    /// Starts on a loopback port, in a thread of its own, with the two demo users.
    pub fn start() -> Auth0Mock {
        let (tx, rx) = std::sync::mpsc::channel();
        let state = Arc::new(MockState {
            switches: Mutex::new(Switches {
                token_ttl_s: 86400,
                rate_limit_reset_s: 1,
                ..Switches::default()
            }),
            ..MockState::default()
        });
        *state.users.lock().unwrap() = vec![
            MockUser {
                user_id: "auth0|alice".into(),
                email: "alice@example.com".into(),
                account_number: "12345".into(),
                pin: "2468".into(),
                balance: "1234.56".into(),
                mfa: false,
                ivr_greeting: Some("Alice".into()),
            },
            MockUser {
                user_id: "auth0|bob".into(),
                email: "bob@example.com".into(),
                account_number: "24680".into(),
                pin: "1357".into(),
                balance: "0.99".into(),
                mfa: false,
                ivr_greeting: None,
            },
        ];
        let shared = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr: SocketAddr = listener.local_addr().unwrap();
                let url = format!("http://{addr}");
                let state = shared;
                *state.audience.lock().unwrap() = format!("{url}/api/v2/");
                tx.send((url, state.clone())).unwrap();
                let app = Router::new()
                    .route("/oauth/token", post(token))
                    .route("/api/v2/users", get(users))
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let (url, state) = rx.recv().unwrap();
        Auth0Mock { url, state }
    }
}

fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Applies the switches every endpoint shares; `Some` is the answer to give instead.
async fn faults(state: &MockState) -> Option<Response> {
    let switches = *state.switches.lock().unwrap();
    tokio::time::sleep(switches.latency).await;
    if switches.drop_connections {
        // Dropping the connection mid-request: the server task dies without answering.
        panic!("auth0 mock: dropping the connection as asked");
    }
    if switches.server_error {
        let body = json!({"error": "temporarily_unavailable", "error_description": "The service is unavailable"});
        return Some((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
    }
    if switches.rate_limit_next > 0 {
        state.switches.lock().unwrap().rate_limit_next -= 1;
        let reset = epoch() + switches.rate_limit_reset_s;
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit", "10".parse().unwrap());
        headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
        headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
        let body = json!({"error": "too_many_requests", "error_description": "Global limit has been reached"});
        return Some((StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response());
    }
    None
}

/// `/oauth/token` takes JSON or a form, like Auth0.
async fn token(State(state): State<Arc<MockState>>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = if headers
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/json"))
    {
        serde_json::from_str::<HashMap<String, Value>>(&body)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect()
    } else {
        serde_urlencoded_parse(&body)
    };
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    match grant.as_str() {
        "client_credentials" => state.token_requests.fetch_add(1, Ordering::SeqCst),
        _ => state.login_requests.fetch_add(1, Ordering::SeqCst),
    };
    if let Some(fault) = faults(&state).await {
        return fault;
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        let body = json!({"error": "access_denied", "error_description": "Unauthorized"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    match grant.as_str() {
        "client_credentials" => {
            let audience = state.audience.lock().unwrap().clone();
            if form.get("audience") != Some(&audience) {
                return state.violation(format!(
                    "audience {:?}, expected {audience:?}",
                    form.get("audience")
                ));
            }
            let ttl = state.switches.lock().unwrap().token_ttl_s;
            let token = format!("mgmt.{}.{}", rand_token(), epoch());
            state
                .tokens
                .lock()
                .unwrap()
                .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
            state.issued_tokens.lock().unwrap().push(token.clone());
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": "read:users"})).into_response()
        }
        REALM_GRANT => {
            if form.get("realm").map(String::as_str) != Some(CONNECTION) {
                return state.violation(format!("realm {:?}", form.get("realm")));
            }
            let username = form.get("username").cloned().unwrap_or_default();
            let password = form.get("password").cloned().unwrap_or_default();
            let user = state
                .users
                .lock()
                .unwrap()
                .iter()
                .find(|u| u.email == username)
                .cloned();
            let mut failures = state.failures.lock().unwrap();
            let count = failures.entry(username.clone()).or_default();
            if *count >= 10 {
                let body = json!({"error": "too_many_attempts", "error_description": "Your account has been blocked after multiple consecutive login attempts."});
                return (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            }
            match user {
                Some(u) if u.pin == password => {
                    *count = 0;
                    if u.mfa {
                        let body = json!({"error": "mfa_required", "error_description": "Multifactor authentication required", "mfa_token": "mfa.x"});
                        return (StatusCode::FORBIDDEN, Json(body)).into_response();
                    }
                    let token = format!("user.{}", rand_token());
                    state.issued_tokens.lock().unwrap().push(token.clone());
                    Json(
                        json!({"access_token": token, "token_type": "Bearer", "expires_in": 86400}),
                    )
                    .into_response()
                }
                _ => {
                    *count += 1;
                    let body = json!({"error": "invalid_grant", "error_description": "Wrong email or password."});
                    (StatusCode::FORBIDDEN, Json(body)).into_response()
                }
            }
        }
        "password" => {
            let body = json!({"error": "server_error", "error_description": "Authorization server not configured with default connection."});
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
        other => state.violation(format!("grant_type {other:?}")),
    }
}

/// `/api/v2/users?q=app_metadata.account_number:"..."&search_engine=v3`
async fn users(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.search_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = faults(&state).await {
        return fault;
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let valid = state
        .tokens
        .lock()
        .unwrap()
        .get(bearer)
        .is_some_and(|&until| Instant::now() < until);
    if !valid {
        let body = json!({"statusCode": 401, "error": "Unauthorized", "message": "Expired token received for JSON Web Token validation", "attributes": {"error": "Expired token received for JSON Web Token validation"}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if query.get("search_engine").map(String::as_str) != Some("v3") {
        let body = json!({"statusCode": 400, "error": "Bad Request", "message": "The search_engine v2 is not supported", "errorCode": "operation_not_supported"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let q = query.get("q").cloned().unwrap_or_default();
    let Some(account) = q
        .strip_prefix("app_metadata.account_number:\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .filter(|a| a.bytes().all(|b| b.is_ascii_digit()) && !a.is_empty())
    else {
        return state.violation(format!("query not a quoted account number: {q:?}"));
    };
    let found: Vec<Value> = state
        .users
        .lock()
        .unwrap()
        .iter()
        .filter(|u| u.account_number == account)
        .map(|u| {
            let mut meta = json!({"account_number": u.account_number, "balance": u.balance});
            if let Some(greeting) = &u.ivr_greeting {
                meta["ivr_greeting"] = json!(greeting);
            }
            json!({"user_id": u.user_id, "email": u.email, "blocked": false, "app_metadata": meta})
        })
        .collect();
    Json(Value::Array(found)).into_response()
}

fn rand_token() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "{:x}{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn serde_urlencoded_parse(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}
