//! Issue 18, the HTTP layer: where a token may come from and where it must never go, query
//! parameters the listing cannot take, the client's address behind a reverse proxy, and the
//! SQLite token lookup while the database is locked.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, server_tests};
use crate::support::TestDb;

server_tests!(
    every_spelling_of_the_query_token_authenticates_and_none_reaches_the_log,
    a_token_in_the_header_and_the_query_at_once_is_refused_as_synapse_does,
    huge_from_and_limit_of_the_listings_are_answered_not_overflowed,
    a_request_refused_before_its_body_is_read_leaves_the_connection_usable,
);

/// A request refused for its token before any handler reads its body still leaves its
/// connection usable: the next request on it is answered. (A reverse proxy that keeps
/// connections to homekey open, as Caddy does, answered its client 502 when it was not.)
async fn a_request_refused_before_its_body_is_read_leaves_the_connection_usable(db: TestDb) {
    use std::io::{Read, Write};
    let server = Server::start(db, "").await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let exchange = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(&address).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let body = format!("{{\"pad\": \"{}\"}}", "x".repeat(60_000));
        let requests = format!(
            "POST /_matrix/client/v3/logout HTTP/1.1\r\nHost: homekey\r\n\
             Authorization: Bearer not-a-token\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}\
             GET /_matrix/client/versions HTTP/1.1\r\nHost: homekey\r\n\r\n",
            body.len()
        );
        socket.write_all(requests.as_bytes()).unwrap();
        let mut answers = Vec::new();
        let mut buffer = [0u8; 8192];
        // Until both answers are in, the connection closes, or 5 s pass.
        while !String::from_utf8_lossy(&answers).contains("\"versions\"") {
            match socket.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => answers.extend_from_slice(&buffer[..n]),
            }
        }
        String::from_utf8_lossy(&answers).into_owned()
    })
    .await
    .unwrap();
    // Each answer's status (a body ends without a newline, so the next answer follows on).
    let statuses: Vec<&str> = exchange
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &exchange[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["401", "200"], "{exchange}");
}

const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

/// A GET with `headers` as they are given (no bearer helper: the tests choose every byte).
async fn get_with_headers(
    server: &Server,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = server.http.get(server.url(path_and_query));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body)
}

/// Waits until the access log has the line of a request made after every other one, so the
/// log holds everything the test sent before it.
async fn flush_access_log(server: &Server, marker: &str) -> String {
    let path = format!("/_matrix/client/versions?{marker}=1");
    assert_eq!(
        server.call("GET", &path, None, None).await.0,
        StatusCode::OK
    );
    assert!(
        // Its value is not one the log keeps: the name is enough.
        server.wait_for_log(&format!("?{marker}=")),
        "{}",
        server.log()
    );
    server.log()
}

/// axum's `Query` percent-decodes parameter names, so `access%5Ftoken` is `access_token`:
/// each spelling authenticates, and the log redacts each one, however it was written.
async fn every_spelling_of_the_query_token_authenticates_and_none_reaches_the_log(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("carol", "pw-carol").await;
    let spellings = [
        "access_token",
        "access%5Ftoken",
        "access%5ftoken",
        "%61ccess_token",
        "%61%63%63%65%73%73%5F%74%6F%6B%65%6E",
    ];
    let mut tokens = Vec::new();
    for name in spellings {
        let token = server.token_for("carol", "pw-carol").await;
        let (status, body) = server
            .call(
                "GET",
                &format!("{WHOAMI}?limit=1&{name}={token}"),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "?{name}=: {body}");
        assert_eq!(body["user_id"], "@carol:example.com", "?{name}=");
        tokens.push(token);
    }
    // Refused requests are logged too: a token given twice, or beside a header.
    let twice = server.token_for("carol", "pw-carol").await;
    let path = format!("{WHOAMI}?access%5Ftoken=x&access_token={twice}");
    server.call("GET", &path, None, None).await;
    let beside = server.token_for("carol", "pw-carol").await;
    let path = format!("{WHOAMI}?access%5Ftoken={beside}");
    let (status, _) = get_with_headers(&server, &path, &[("authorization", "Bearer x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    tokens.extend([twice, beside]);
    // Misspelt names authenticate nothing, and their values do not reach the log either.
    for name in [
        "access+token",
        "access_token%20",
        "accesstoken",
        "token",
        "a",
    ] {
        let token = server.token_for("carol", "pw-carol").await;
        let (status, body) = server
            .call("GET", &format!("{WHOAMI}?{name}={token}"), None, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "?{name}=: {body}");
        tokens.push(token);
    }

    let log = flush_access_log(&server, "spellings_done").await;
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "a token in the log:\n{log}");
    }
    // The other parameters are still there, and the redaction says where a token was.
    assert!(log.contains("?limit=1&access_token=<redacted>"), "{log}");
}

/// Synapse's rules (`get_access_token_from_request`): a token in both places, two
/// `Authorization` headers, or one that is not exactly `Bearer <token>` are 401
/// `M_MISSING_TOKEN`, each with its own message; a header alone or a query alone works.
async fn a_token_in_the_header_and_the_query_at_once_is_refused_as_synapse_does(db: TestDb) {
    let server = Server::start(db, "").await;
    server.create_user("dan", "pw-dan").await;
    let token = server.token_for("dan", "pw-dan").await;
    let bearer = format!("Bearer {token}");
    let missing = |message: &str| json!({"errcode": "M_MISSING_TOKEN", "error": message});
    let mixing = missing("Mixing Authorization headers and access_token query parameters.");

    let refused = [
        // Both: the same token, another one, an empty query value, an encoded name.
        (
            format!("{WHOAMI}?access_token={token}"),
            vec![bearer.clone()],
            mixing.clone(),
        ),
        (
            format!("{WHOAMI}?access_token=other"),
            vec![bearer.clone()],
            mixing.clone(),
        ),
        (
            format!("{WHOAMI}?access_token="),
            vec![bearer.clone()],
            mixing.clone(),
        ),
        (
            format!("{WHOAMI}?access%5Ftoken={token}"),
            vec![bearer.clone()],
            mixing.clone(),
        ),
        // A header that is not Bearer still counts as a header beside the query.
        (
            format!("{WHOAMI}?access_token={token}"),
            vec!["Basic Zm9vOmJhcg==".into()],
            mixing.clone(),
        ),
        (
            WHOAMI.into(),
            vec![bearer.clone(), bearer.clone()],
            missing("Too many Authorization headers."),
        ),
        (
            WHOAMI.into(),
            vec!["Basic Zm9vOmJhcg==".into()],
            missing("Invalid Authorization header."),
        ),
        (
            WHOAMI.into(),
            vec![format!("bearer {token}")],
            missing("Invalid Authorization header."),
        ),
        (
            WHOAMI.into(),
            vec![format!("Bearer  {token}")],
            missing("Invalid Authorization header."),
        ),
        (
            WHOAMI.into(),
            vec![format!("Bearer {token} x")],
            missing("Invalid Authorization header."),
        ),
        (
            WHOAMI.into(),
            vec!["Bearer".into()],
            missing("Invalid Authorization header."),
        ),
        (WHOAMI.into(), vec![], missing("Missing access token")),
    ];
    for (path, headers, expected) in refused {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|h| ("authorization", h.as_str()))
            .collect();
        let (status, body) = get_with_headers(&server, &path, &headers).await;
        assert_eq!(
            (status, &body),
            (StatusCode::UNAUTHORIZED, &expected),
            "{path} with {headers:?}"
        );
    }

    // One place at a time works; another query parameter beside the header is no token.
    for (path, headers) in [
        (format!("{WHOAMI}?access_token={token}"), vec![]),
        (WHOAMI.to_owned(), vec![("authorization", bearer.as_str())]),
        (
            format!("{WHOAMI}?access_tokens=x"),
            vec![("authorization", bearer.as_str())],
        ),
    ] {
        let (status, body) = get_with_headers(&server, &path, &headers).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["user_id"], "@dan:example.com");
    }
    // The first of two query tokens is the one read, as in Synapse.
    let path = format!("{WHOAMI}?access_token={token}&access_token=other");
    let (status, body) = get_with_headers(&server, &path, &[]).await;
    assert_eq!(
        (status, &body["user_id"]),
        (StatusCode::OK, &json!("@dan:example.com"))
    );
}

/// `from` and `limit` of the user listings up to `i64::MAX` each are answered (Synapse takes
/// any integer); their sum once overflowed, a panic that dropped the connection. Past
/// `i64::MAX` it is 400 `M_INVALID_PARAM`, as for any other value that is not an integer.
async fn huge_from_and_limit_of_the_listings_are_answered_not_overflowed(db: TestDb) {
    let server = Server::start(db, "").await;
    let admin = server.admin_token("root", "root-pw").await;
    server.create_user("eve", "eve-pw").await;
    let max = i64::MAX;
    for version in ["v2", "v3"] {
        let list = |query: String| format!("/_synapse/admin/{version}/users?{query}");
        for (query, users) in [
            (format!("from={max}&limit={max}"), 0),
            (format!("from=1&limit={max}"), 1),
            (format!("from=0&limit={max}"), 2),
            (format!("from={max}"), 0),
        ] {
            let (status, body) = server
                .call("GET", &list(query.clone()), Some(&admin), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{version} {query}: {body}");
            assert_eq!(body["users"].as_array().unwrap().len(), users, "{query}");
            assert_eq!(body["total"], 2, "{query}");
            assert!(body.get("next_token").is_none(), "{query}: {body}");
        }
        for name in ["from", "limit"] {
            let query = format!("{name}=9223372036854775808");
            let (status, body) = server.call("GET", &list(query), Some(&admin), None).await;
            assert_eq!(
                (status, body),
                (
                    StatusCode::BAD_REQUEST,
                    json!({"errcode": "M_INVALID_PARAM", "error": format!("Query parameter {name} must be an integer")})
                )
            );
        }
    }
}

/// Holds SQLite's WAL locks as a process recovering the WAL after a crash holds them (the
/// write, checkpoint and recovery locks of the `-shm` file), with the WAL index's header
/// cleared as such a recovery finds it: every reader of the database waits, up to its busy
/// timeout, then gets `SQLITE_BUSY`. Prints "held", waits for a line on stdin, releases.
const HOLD_WAL_RECOVERY: &str = r#"
import fcntl, os, sys
fd = os.open(sys.argv[1] + "-shm", os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 3, 120)
os.pwrite(fd, b"\0" * 136, 0)
print("held", flush=True)
sys.stdin.readline()
fcntl.lockf(fd, fcntl.LOCK_UN, 3, 120)
print("released", flush=True)
"#;

/// While SQLite cannot be read, the token lookup (on the async worker, by rusqlite) waits
/// at most about 20 ms, then asks sqlx's pool, for at most 250 ms: whoami answers 503
/// `M_UNKNOWN` with `Retry-After` well within a second, never after the 5 s busy timeout of
/// the writes and never 500. Once the locks are gone, the same token works at once.
#[tokio::test]
async fn a_locked_sqlite_answers_whoami_503_at_once_not_500_after_seconds() {
    use std::io::{BufRead, BufReader, Write};
    let server = std::sync::Arc::new(Server::start(TestDb::sqlite().await, "").await);
    server.create_user("fay", "fay-pw").await;
    let token = server.token_for("fay", "fay-pw").await;
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);
    let homekey::config::DatabaseConfig::Sqlite { path } = &server.db.config else {
        unreachable!()
    };
    let mut holder = std::process::Command::new("python3")
        .args(["-c", HOLD_WAL_RECOVERY, path.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");

    // One at a time, then eight at once (more than the pool's four connections).
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let response = server
            .http
            .get(server.url(WHOAMI))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        times.push(started.elapsed());
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "5");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errcode"], "M_UNKNOWN", "{body}");
    }
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (server, token) = (server.clone(), token.clone());
        burst.spawn(async move {
            let started = std::time::Instant::now();
            let (status, body) = server.whoami(Some(&token)).await;
            (started.elapsed(), status, body)
        });
    }
    while let Some(joined) = burst.join_next().await {
        let (took, status, body) = joined.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        times.push(took);
    }
    let slowest = times.iter().max().unwrap();
    eprintln!("FIGURES whoami while SQLite is locked: {times:?}");
    assert!(
        *slowest < std::time::Duration::from_millis(900),
        "a whoami took {slowest:?} while SQLite was locked: {times:?}"
    );

    holder.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    line.clear();
    said.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "released");
    holder.wait().unwrap();
    let (status, body) = server.whoami(Some(&token)).await;
    assert_eq!(
        (status, &body["user_id"]),
        (StatusCode::OK, &json!("@fay:example.com"))
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(&token), "{log}");
}

/// `rc_login` with a per-address burst of two (draining one per 1000 s), the other limits
/// out of the way; `x_forwarded` on the listener or not.
fn proxied_listener_with_address_limit(x_forwarded: bool) -> String {
    format!(
        "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    x_forwarded: {x_forwarded}\n\
         rc_login:\n  address: {{per_second: 0.001, burst_count: 2}}\n  \
         account: {{per_second: 1000, burst_count: 1000}}\n  \
         failed_attempts: {{per_second: 1000, burst_count: 1000}}\n"
    )
}

/// A login with a wrong password (it counts against the address all the same), with
/// `X-Forwarded-For: forwarded_for` if given; the status.
async fn login_forwarded_for(server: &Server, forwarded_for: Option<&str>) -> StatusCode {
    let body = json!({"type": "m.login.password", "user": "gil", "password": "wrong"});
    let mut request = server
        .http
        .post(server.url("/_matrix/client/v3/login"))
        .body(body.to_string());
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    request.send().await.unwrap().status()
}

/// Behind a proxy (`x_forwarded: true`), the client is the rightmost `X-Forwarded-For`
/// entry: a client that rotates the leftmost one, which it writes itself, stays in its own
/// bucket, while other clients of the same proxy have theirs. A request without the header
/// is the proxy's own.
#[tokio::test]
async fn behind_a_proxy_the_rightmost_forwarded_address_is_rate_limited() {
    let server = Server::start(
        TestDb::sqlite().await,
        &proxied_listener_with_address_limit(true),
    )
    .await;
    server.create_user("gil", "gil-pw").await;
    for spoof in ["10.0.0.1", "10.0.0.2"] {
        let header = format!("{spoof}, 203.0.113.7");
        assert_eq!(
            login_forwarded_for(&server, Some(&header)).await,
            StatusCode::FORBIDDEN
        );
    }
    for spoof in ["10.0.0.3", "192.0.2.44", "2001:db8::99"] {
        let header = format!("{spoof}, 203.0.113.7");
        assert_eq!(
            login_forwarded_for(&server, Some(&header)).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{header}: a new leftmost entry escaped the limit"
        );
    }
    // Another client of the same proxy, and the proxy itself (no header), are not limited.
    for header in [Some("10.0.0.1, 198.51.100.9"), Some("198.51.100.10"), None] {
        assert_eq!(
            login_forwarded_for(&server, header).await,
            StatusCode::FORBIDDEN,
            "{header:?}"
        );
    }
}

/// Without `x_forwarded`, `X-Forwarded-For` is ignored: every request from this peer shares
/// its bucket, whatever the header says.
#[tokio::test]
async fn without_x_forwarded_the_forwarded_header_is_ignored() {
    let server = Server::start(
        TestDb::sqlite().await,
        &proxied_listener_with_address_limit(false),
    )
    .await;
    server.create_user("gil", "gil-pw").await;
    assert_eq!(
        login_forwarded_for(&server, Some("203.0.113.7")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        login_forwarded_for(&server, None).await,
        StatusCode::FORBIDDEN
    );
    for header in [Some("198.51.100.9"), Some("10.0.0.1, 198.51.100.10"), None] {
        assert_eq!(
            login_forwarded_for(&server, header).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{header:?}"
        );
    }
}

/// What whois shows of a login: the client's address (behind a proxy with `x_forwarded`, the
/// rightmost `X-Forwarded-For` entry; without it, the peer's own address), its user agent,
/// and when.
#[tokio::test]
async fn whois_shows_the_address_and_user_agent_a_login_came_from() {
    for (x_forwarded, expected_ip) in [(true, "203.0.113.7"), (false, "127.0.0.1")] {
        let server = Server::start(
            TestDb::sqlite().await,
            &format!(
                "listeners:\n  - port: 0\n    bind_addresses: ['127.0.0.1']\n    \
                 x_forwarded: {x_forwarded}\n"
            ),
        )
        .await;
        server.create_user("hal", "hal-pw").await;
        let body = json!({"type": "m.login.password", "user": "hal", "password": "hal-pw"});
        let before = homekey::accounts::now_ms();
        let response = server
            .http
            .post(server.url("/_matrix/client/v3/login"))
            .header("x-forwarded-for", "10.0.0.1, 203.0.113.7")
            .header("user-agent", "Element/1.11 (test)")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let login: Value = response.json().await.unwrap();
        let token = login["access_token"].as_str().unwrap();
        let (status, whois) = server
            .call(
                "GET",
                "/_synapse/admin/v1/whois/@hal:example.com",
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{whois}");
        let connection = &whois["devices"][""]["sessions"][0]["connections"][0];
        assert_eq!(
            connection["ip"], expected_ip,
            "x_forwarded {x_forwarded}: {whois}"
        );
        assert_eq!(connection["user_agent"], "Element/1.11 (test)");
        assert!(
            connection["last_seen"].as_i64().unwrap() >= before,
            "{whois}"
        );
    }
}
