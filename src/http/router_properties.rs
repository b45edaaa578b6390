//! Every query string and path parameter of the API, fuzzed through the whole router in
//! process (`tower::ServiceExt::oneshot`): whatever a client puts there, the answer is no
//! 5xx and no panic. The request bodies have their own properties (`json`, `admin::users`).

use axum::body::Body;
use axum::http::{Request, header};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use secrecy::ExposeSecret;
use tower::ServiceExt;

use super::{AppState, router};
use crate::accounts::{Accounts, Actor, NewAccount, NewAccountPassword};
use crate::config::{Config, DatabaseConfig};
use crate::ids::UserId;
use crate::property_testing::{config, path_segment, query_number, query_string};
use crate::store::{OpenMode, Store};

/// The routes that take a path parameter (`{}`, each filled in on its own) or read the
/// query, with the method each is called with. Bodies are `{}`: the parameters are the point.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/_synapse/admin/v2/users"),
    ("GET", "/_synapse/admin/v3/users"),
    ("GET", "/_synapse/admin/v1/username_available"),
    ("GET", "/_synapse/admin/v2/users/{}"),
    ("PUT", "/_synapse/admin/v2/users/{}"),
    ("GET", "/_synapse/admin/v1/users/{}/admin"),
    ("PUT", "/_synapse/admin/v1/users/{}/admin"),
    ("POST", "/_synapse/admin/v1/deactivate/{}"),
    ("GET", "/_synapse/admin/v1/whois/{}"),
    ("POST", "/_synapse/admin/v1/users/{}/login"),
    ("POST", "/_synapse/admin/v1/reset_password/{}"),
    ("POST", "/_matrix/client/r0/admin/reset_password/{}"),
    ("GET", "/_synapse/admin/v2/users/{}/devices"),
    ("GET", "/_synapse/admin/v2/users/{}/devices/{}"),
    ("PUT", "/_synapse/admin/v2/users/{}/devices/{}"),
    ("DELETE", "/_synapse/admin/v2/users/{}/devices/{}"),
    ("POST", "/_synapse/admin/v2/users/{}/delete_devices"),
    ("GET", "/_synapse/admin/v1/register"),
    ("GET", "/_matrix/client/v3/account/whoami"),
    ("GET", "/_matrix/client/v3/devices/{}"),
    ("PUT", "/_matrix/client/r0/devices/{}"),
    ("DELETE", "/_matrix/client/v3/devices/{}"),
    ("GET", "/_matrix/client/v3/profile/{}"),
    ("GET", "/_matrix/client/v3/profile/{}/displayname"),
    ("PUT", "/_matrix/client/v3/profile/{}/displayname"),
];

/// Every query parameter the API reads (the token's is added by [`TokenIn`]).
const QUERY_NAMES: &[&str] = &[
    "from",
    "limit",
    "name",
    "user_id",
    "guests",
    "deactivated",
    "admins",
    "locked",
    "order_by",
    "dir",
    "username",
];

/// Where a request carries the admin's token.
#[derive(Debug, Clone, Copy)]
enum TokenIn {
    Nowhere,
    Header,
    Query,
    /// Both, which is refused.
    HeaderAndQuery,
}

fn token_in() -> impl Strategy<Value = TokenIn> {
    prop_oneof![
        1 => Just(TokenIn::Nowhere),
        4 => Just(TokenIn::Header),
        2 => Just(TokenIn::Query),
        1 => Just(TokenIn::HeaderAndQuery),
    ]
}

/// A router on a fresh SQLite database with one admin, and the admin's token, which the
/// requests carry.
async fn app(dir: &std::path::Path) -> (axum::Router, String) {
    let mut config = Config::builtin();
    config.server_name = "example.com".into();
    config.bcrypt_rounds = 4;
    config.database = DatabaseConfig::Sqlite {
        path: dir.join("homeserver.db"),
    };
    let store = Store::open(&config.database, OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let accounts = Accounts::new(store, std::sync::Arc::new(config));
    let operator = Actor::operator("cli:router-properties");
    let admin = UserId::parse_local("admin", "example.com").unwrap();
    accounts
        .create_user(
            &operator,
            NewAccount {
                user_id: admin.clone(),
                password: NewAccountPassword::None,
                admin: true,
                user_type: None,
                displayname: None,
                avatar_url: None,
                threepids: Vec::new(),
            },
        )
        .await
        .unwrap();
    let session = accounts
        .open_session(&operator, admin.as_str(), "router properties", None)
        .await
        .unwrap();
    let app = router(AppState {
        accounts: std::sync::Arc::new(accounts),
    });
    (app, session.access_token.expose_secret().to_owned())
}

/// Runs `requests` against the router on a fresh database: no answer may be a 5xx, and
/// no request may panic.
fn never_a_5xx(
    requests: impl Strategy<Value = (&'static str, String, String, TokenIn)>,
    default_cases: u32,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, admin_token) = runtime.block_on(app(dir.path()));
    let mut runner = TestRunner::new(config(default_cases));
    let sent = std::cell::Cell::new(0u32);
    runner
        .run(&requests, |(method, path, mut query, token_in)| {
            if matches!(token_in, TokenIn::Query | TokenIn::HeaderAndQuery) {
                query.push_str(&format!("&access_token={admin_token}"));
            }
            let uri = format!("{path}?{query}");
            let mut request = Request::builder().method(method).uri(&uri);
            if matches!(token_in, TokenIn::Header | TokenIn::HeaderAndQuery) {
                request = request.header(header::AUTHORIZATION, format!("Bearer {admin_token}"));
            }
            // A URI the client library would refuse to send is no input for the server.
            let Ok(request) = request.body(Body::from("{}")) else {
                return Err(TestCaseError::reject("not a URI"));
            };
            let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
            sent.set(sent.get() + 1);
            prop_assert!(
                !response.status().is_server_error(),
                "{method} {uri}: {}",
                response.status()
            );
            Ok(())
        })
        .unwrap();
    assert!(sent.get() > 0);
}

/// Every route that takes a path parameter or reads the query, with any segments and any
/// query string, with the admin's token (in the header, the query, both) or none.
#[test]
fn no_query_string_or_path_parameter_gets_a_5xx_or_a_panic() {
    let requests = (
        prop::sample::select(ROUTES),
        prop::collection::vec(path_segment(), 2),
        token_in(),
    )
        .prop_flat_map(|((method, template), segments, token_in)| {
            let path = template
                .replacen("{}", &segments[0], 1)
                .replacen("{}", &segments[1], 1);
            (
                Just(method),
                Just(path),
                query_string(QUERY_NAMES),
                Just(token_in),
            )
        });
    never_a_5xx(requests, 512);
}

/// The listings' `from` and `limit`, always both given, as numbers of any size: their sum
/// once overflowed (a panic in a debug build).
#[test]
fn any_from_and_limit_of_a_listing_get_no_5xx() {
    let requests = (
        prop::sample::select(vec!["/_synapse/admin/v2/users", "/_synapse/admin/v3/users"]),
        query_number(),
        query_number(),
    )
        .prop_map(|(path, from, limit)| {
            let query = format!("from={from}&limit={limit}");
            ("GET", path.to_owned(), query, TokenIn::Header)
        });
    never_a_5xx(requests, 256);
}
