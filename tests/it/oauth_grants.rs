//! The Matrix OAuth 2.0 API's sign-in, end to end over HTTP beside the real Synapse
//! delegating to homekey, on SQLite and PostgreSQL: a client registers, sends the user to
//! the authorization page, the user signs in and allows it on the consent page, the client
//! exchanges the code (the device made in Synapse before the answer) and refreshes; then
//! what every rule refuses: replayed codes, PKCE and redirect mismatches, stale refresh
//! tokens, locked accounts, resets and legacy logins that end OAuth sessions.

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::Server;
use crate::support::{TestDb, synapse_venv};
use crate::synapse_interop::Synapse;
use crate::synapse_queue::{BesideSynapse, SECRET};

const AUTHORIZE: &str = "/_homekey/oauth2/authorize";
pub(crate) const VERIFIER: &str = "a-pkce-verifier-of-the-client-that-is-long-enough-0123456789";
/// Element X's registration (§2 of the contract): a native client, its private-use scheme
/// and a loopback redirect without a port, and the device grant it always asks for.
pub(crate) fn element_x() -> Value {
    json!({
        "application_type": "native",
        "client_name": "Element X",
        "client_uri": "https://element.io",
        "redirect_uris": ["io.element:/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token",
                        "urn:ietf:params:oauth:grant-type:device_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "tos_uri": "https://element.io/terms",
        "policy_uri": "https://element.io/privacy",
    })
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier))
}

/// A browser without redirects or a cookie jar: the tests read each answer, and carry the
/// page's cookie themselves (it is `Secure`, for `https://matrix.example.com`).
pub(crate) struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

/// A page's answer.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    policy: Option<String>,
    pub(crate) html: String,
}

impl Answer {
    /// The value of the hidden field `name`.
    pub(crate) fn field(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&needle).unwrap_or_else(|| {
            panic!("no field {name} in the page: {}", self.html);
        }) + needle.len();
        let end = self.html[start..].find('"').unwrap() + start;
        // The page escapes `&` and the like; the form sends them back unescaped.
        self.html[start..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
    }

    /// The parameters of the redirect back to the client (in its query or fragment).
    fn sent_back(&self) -> Vec<(String, String)> {
        let location = self.location.as_deref().expect("a redirect");
        let at = location.find(['?', '#']).expect("parameters");
        form_urlencoded::parse(&location.as_bytes()[at + 1..])
            .into_owned()
            .collect()
    }

    fn sent_back_value(&self, name: &str) -> Option<String> {
        self.sent_back()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

impl Browser {
    pub(crate) fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = match &self.cookie {
            Some(cookie) => request.header("Cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        if let Some(set) = response.headers().get(SET_COOKIE) {
            let set = set.to_str().unwrap();
            assert!(
                set.contains("SameSite=Lax") && set.contains("HttpOnly"),
                "{set}"
            );
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        Answer {
            status: response.status(),
            location: header(LOCATION),
            policy: header(CONTENT_SECURITY_POLICY),
            html: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, server: &Server, path_and_query: &str) -> Answer {
        let request = self.http.get(server.url(path_and_query));
        self.send(request).await
    }

    pub(crate) async fn post(
        &mut self,
        server: &Server,
        path: &str,
        form: &[(&str, &str)],
    ) -> Answer {
        let request = self
            .http
            .post(server.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(request).await
    }
}

/// A client of the OAuth API, as the tests drive it.
pub(crate) struct Client {
    pub(crate) id: String,
}

impl Client {
    pub(crate) async fn register(server: &Server, metadata: Value) -> Client {
        let response = server
            .http
            .post(server.url("/oauth2/registration"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        Client {
            id: body["client_id"].as_str().unwrap().to_owned(),
        }
    }

    /// The authorization request's query for `device`, with Element X's unstable scopes and
    /// no `response_mode`.
    pub(crate) fn query(&self, device: &str, extra: &[(&str, &str)]) -> String {
        let scope = format!(
            "urn:matrix:org.matrix.msc2967.client:api:* \
             urn:matrix:org.matrix.msc2967.client:device:{device}"
        );
        let challenge = challenge(VERIFIER);
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", self.id.as_str()),
            ("redirect_uri", "io.element:/callback"),
            ("scope", scope.as_str()),
            ("state", "the-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        pairs.extend_from_slice(extra);
        serde_urlencoded::to_string(pairs).unwrap()
    }

    async fn token(&self, server: &Server, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = form.to_vec();
        form.push(("client_id", &self.id));
        let response = server
            .http
            .post(server.url("/oauth2/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(response.headers()["cache-control"], "no-store");
        (status, response.json().await.unwrap())
    }

    pub(crate) async fn exchange(
        &self,
        server: &Server,
        code: &str,
        verifier: &str,
    ) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "io.element:/callback"),
            ("code_verifier", verifier),
        ];
        self.token(server, &form).await
    }

    async fn refresh(&self, server: &Server, refresh_token: &str) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.token(server, &form).await
    }
}

/// Signs in on the authorization's sign-in page and allows the client on the consent page;
/// returns the code.
pub(crate) async fn sign_in_and_allow(
    server: &Server,
    browser: &mut Browser,
    query: &str,
    user: &str,
    password: &str,
) -> String {
    sign_in(server, browser, query, user, password).await;
    allow(server, browser, query).await
}

/// Signs in on the authorization's sign-in page, which leads back to the authorization.
pub(crate) async fn sign_in(
    server: &Server,
    browser: &mut Browser,
    query: &str,
    user: &str,
    password: &str,
) {
    let page = browser.get(server, &format!("{AUTHORIZE}?{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(
        page.html.contains("Sign in to continue to"),
        "{}",
        page.html
    );
    let signed_in = browser
        .post(
            server,
            "/_homekey/oauth2/sign-in",
            &[
                ("csrf", &page.field("csrf")),
                ("request", &page.field("request")),
                ("user", user),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.html
    );
    let back = signed_in.location.unwrap();
    assert_eq!(
        back,
        format!("{AUTHORIZE}?{query}"),
        "a same-origin path back"
    );
}

/// On the consent page of a signed-in browser, Allow; returns the code.
pub(crate) async fn allow(server: &Server, browser: &mut Browser, query: &str) -> String {
    let consent = browser.get(server, &format!("{AUTHORIZE}?{query}")).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    assert!(consent.html.contains("Element X"), "{}", consent.html);
    let policy = consent.policy.clone().unwrap();
    assert!(
        policy.contains("form-action 'self' io.element:"),
        "{policy}"
    );
    let allowed = browser
        .post(
            server,
            "/_homekey/oauth2/consent",
            &[
                ("csrf", &consent.field("csrf")),
                ("request", &consent.field("request")),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(allowed.status, StatusCode::SEE_OTHER, "{}", allowed.html);
    let location = allowed.location.clone().unwrap();
    assert!(
        location.starts_with("io.element:/callback?code="),
        "{location}"
    );
    assert_eq!(
        allowed.sent_back_value("state").as_deref(),
        Some("the-state")
    );
    allowed.sent_back_value("code").unwrap()
}

/// What homekey answers Synapse about `token`, asked as Synapse asks.
async fn introspect(server: &Server, token: &str) -> Value {
    let response = server
        .http
        .post(server.url("/oauth2/introspect"))
        .bearer_auth(SECRET)
        .header("X-MAS-Supports-Device-Id", "1")
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn text(body: &Value, key: &str) -> String {
    body[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        .to_owned()
}

async fn start(test: &str, db: Option<TestDb>) -> Option<BesideSynapse> {
    let venv = synapse_venv(test)?;
    let db = db?;
    Some(BesideSynapse::start(venv, db).await)
}

#[tokio::test]
async fn sqlite_a_client_signs_a_user_in_and_every_rule_of_the_grants_holds() {
    let test = "sqlite_a_client_signs_a_user_in_and_every_rule_of_the_grants_holds";
    if let Some(beside) = start(test, Some(TestDb::sqlite().await)).await {
        a_client_signs_a_user_in_and_every_rule_of_the_grants_holds(beside).await;
    }
}

#[tokio::test]
async fn postgres_a_client_signs_a_user_in_and_every_rule_of_the_grants_holds() {
    let test = "postgres_a_client_signs_a_user_in_and_every_rule_of_the_grants_holds";
    if let Some(beside) = start(test, TestDb::postgres(test).await).await {
        a_client_signs_a_user_in_and_every_rule_of_the_grants_holds(beside).await;
    }
}

async fn a_client_signs_a_user_in_and_every_rule_of_the_grants_holds(beside: BesideSynapse) {
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    homekey.create_user("alice", "alice-pw").await;
    let client = Client::register(homekey, element_x()).await;
    let mut browser = Browser::new();

    // The whole sign-in: the code comes back in the query (no response_mode, a private-use
    // scheme), is exchanged, and Synapse knows the token and its device at once.
    let query = client.query("OAUTHDEVICE1", &[]);
    let code = sign_in_and_allow(homekey, &mut browser, &query, "alice", "alice-pw").await;
    let (status, tokens) = client.exchange(homekey, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(
        tokens["scope"],
        "urn:matrix:org.matrix.msc2967.client:api:* \
         urn:matrix:org.matrix.msc2967.client:device:OAUTHDEVICE1"
    );
    let access = text(&tokens, "access_token");
    let refresh = text(&tokens, "refresh_token");
    let (status, body) = synapse.whoami(&access).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["user_id"], "@alice:example.com");
    assert_eq!(body["device_id"], "OAUTHDEVICE1");
    let answer = introspect(homekey, &access).await;
    assert_eq!(answer["client_id"], json!(client.id));
    let scope = text(&answer, "scope");
    for part in [
        "urn:matrix:client:api:*",
        "urn:matrix:org.matrix.msc2967.client:api:*",
        "urn:matrix:client:device:OAUTHDEVICE1",
        "urn:matrix:org.matrix.msc2967.client:device:OAUTHDEVICE1",
    ] {
        assert!(scope.split(' ').any(|s| s == part), "{scope}");
    }
    assert!(!scope.contains("admin"), "{scope}");
    let expires_in = answer["expires_in"].as_u64().unwrap();
    assert!((290..=300).contains(&expires_in), "{answer}");
    // The database holds only digests of the tokens: nothing in it is a usable token.
    for (table, token) in [("access_tokens", &access), ("refresh_tokens", &refresh)] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE token = $1");
        let digest = homekey::store::token_forms::digest(token);
        assert_eq!(count(&beside.database, &sql, token).await, 0, "{table}");
        assert_eq!(count(&beside.database, &sql, &digest).await, 1, "{table}");
    }
    // A refresh token is never an access token.
    assert_eq!(
        introspect(homekey, &refresh).await,
        json!({"active": false})
    );

    // The code again: refused, and the session it began ends.
    let (status, body) = client.exchange(homekey, &code, VERIFIER).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    assert_eq!(introspect(homekey, &access).await, json!({"active": false}));
    let (status, body) = client.refresh(homekey, &refresh).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );

    // Signed in already: straight to the consent page. A wrong verifier, a wrong redirect
    // URI or another client spends the code for nothing.
    let query = client.query("OAUTHDEVICE2", &[]);
    let code = allow(homekey, &mut browser, &query).await;
    let (status, body) = client
        .exchange(
            homekey,
            &code,
            "a-wrong-verifier-that-is-long-enough-0123456789abc",
        )
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    assert!(
        text(&body, "error_description").contains("code_verifier"),
        "{body}"
    );
    let (status, _) = client.exchange(homekey, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a spent code stays spent");
    let code = allow(homekey, &mut browser, &query).await;
    let wrong_redirect = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = client.token(homekey, &wrong_redirect).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    let other = Client::register(
        homekey,
        json!({"client_uri": "https://app.example.org", "redirect_uris": ["https://app.example.org/"]}),
    )
    .await;
    let code = allow(homekey, &mut browser, &query).await;
    let (status, body) = other.exchange(homekey, &code, VERIFIER).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    let (status, body) = Client {
        id: "nobody".into(),
    }
    .exchange(homekey, &code, VERIFIER)
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );

    // Refresh: rotated; the old refresh token works again until the new tokens are used
    // (a client whose answer was lost retries), then it is refused and the session stays.
    let code = allow(homekey, &mut browser, &query).await;
    let (_, tokens) = client.exchange(homekey, &code, VERIFIER).await;
    let first_refresh = text(&tokens, "refresh_token");
    let (status, lost) = client.refresh(homekey, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{lost}");
    let (status, retried) = client.refresh(homekey, &first_refresh).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_ne!(retried["access_token"], lost["access_token"]);
    let access = text(&retried, "access_token");
    let (status, body) = synapse.whoami(&access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "OAUTHDEVICE2");
    let (status, body) = client.refresh(homekey, &first_refresh).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    assert_eq!(
        introspect(homekey, &access).await["active"],
        true,
        "the session stays"
    );
    let (status, body) = other
        .refresh(homekey, &text(&retried, "refresh_token"))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );

    // Locked: the session is kept but answers nothing; unlocked, it works again.
    let root = homekey.admin_token("root", "root-pw").await;
    let lock = |locked: bool| {
        homekey.call(
            "PUT",
            "/_synapse/admin/v2/users/@alice:example.com",
            Some(&root),
            Some(json!({"locked": locked})),
        )
    };
    assert_eq!(lock(true).await.0, StatusCode::OK);
    assert_eq!(introspect(homekey, &access).await, json!({"active": false}));
    let (status, body) = client
        .refresh(homekey, &text(&retried, "refresh_token"))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    assert_eq!(lock(false).await.0, StatusCode::OK);
    assert_eq!(introspect(homekey, &access).await["active"], true);

    // A legacy login on the OAuth session's device ends the OAuth session.
    let (status, body) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/login",
            None,
            Some(json!({"type": "m.login.password", "user": "alice",
                        "password": "alice-pw", "device_id": "OAUTHDEVICE2"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(introspect(homekey, &access).await, json!({"active": false}));
    let legacy = text(&body, "access_token");
    assert_eq!(
        introspect(homekey, &legacy).await["device_id"],
        "OAUTHDEVICE2"
    );
    // ...and a grant on a device a legacy login holds ends the legacy token, device kept.
    // (The lock ended the page's sign-in: the password again.)
    sign_in(homekey, &mut browser, &query, "alice", "alice-pw").await;
    let consent = browser.get(homekey, &format!("{AUTHORIZE}?{query}")).await;
    assert!(
        consent.html.contains("another app or login holds"),
        "{}",
        consent.html
    );
    let code = allow(homekey, &mut browser, &query).await;
    let (status, tokens) = client.exchange(homekey, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(introspect(homekey, &legacy).await, json!({"active": false}));
    let access = text(&tokens, "access_token");
    assert_eq!(synapse.whoami(&access).await.0, StatusCode::OK);

    // The Admin API's reset with logout ends OAuth sessions as it ends the others.
    let (status, body) = homekey
        .call(
            "POST",
            "/_synapse/admin/v1/reset_password/@alice:example.com",
            Some(&root),
            Some(json!({"new_password": "alice-new-pw"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(introspect(homekey, &access).await, json!({"active": false}));
    assert!(
        !homekey
            .device_ids("@alice:example.com")
            .await
            .contains(&"OAUTHDEVICE2".to_owned()),
        "the device went"
    );
    let (status, body) = client
        .refresh(homekey, &text(&tokens, "refresh_token"))
        .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );

    // The reset ended the page's sign-in too: the next authorization asks for the password.
    let query = client.query("OAUTHDEVICE3", &[]);
    let code = sign_in_and_allow(homekey, &mut browser, &query, "alice", "alice-new-pw").await;
    let (_, tokens) = client.exchange(homekey, &code, VERIFIER).await;
    let access = text(&tokens, "access_token");
    let refresh = text(&tokens, "refresh_token");

    // Revocation of the access token ends both tokens and the device, in Synapse too.
    let response = homekey
        .http
        .post(homekey.url("/oauth2/revoke"))
        .form(&[
            ("token", access.as_str()),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(introspect(homekey, &access).await, json!({"active": false}));
    let (status, _) = client.refresh(homekey, &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    wait_until_synapse_refuses(synapse, &access).await;

    // Deny goes back to the client with access_denied and its state, and is recorded.
    let query = client.query("OAUTHDEVICE4", &[]);
    let consent = browser.get(homekey, &format!("{AUTHORIZE}?{query}")).await;
    let denied = browser
        .post(
            homekey,
            "/_homekey/oauth2/consent",
            &[
                ("csrf", &consent.field("csrf")),
                ("request", &consent.field("request")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(denied.status, StatusCode::SEE_OTHER);
    assert_eq!(
        denied.sent_back_value("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        denied.sent_back_value("state").as_deref(),
        Some("the-state")
    );
    // A consent without the page's CSRF token does nothing: the page again, 403.
    let forged = browser
        .post(
            homekey,
            "/_homekey/oauth2/consent",
            &[
                ("csrf", "forged"),
                ("request", &query),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.location.is_none());
    let audit = homekey
        .store()
        .list_audit(&Default::default())
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    for action in [
        "oauth_grant",
        "oauth_consent_refused",
        "revoke_token",
        "register_client",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }

    // No token, code or cookie reaches homekey's log.
    let log = homekey.log();
    for secret in [access.as_str(), refresh.as_str(), code.as_str()] {
        assert!(!log.contains(secret), "a secret in the log");
    }
    assert!(!log.contains(SECRET));
}

/// `sql` (a count, `$1` bound to `value`) on the test database.
async fn count(database: &str, sql: &str, value: &str) -> i64 {
    use sqlx::Connection;
    if database.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(database).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(value)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(database).await.unwrap();
        sqlx::query_scalar(sql)
            .bind(value)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

/// Synapse keeps introspection answers up to two minutes, but drops them with the device:
/// the revoked token is refused by Synapse soon after homekey delivered the deletion.
pub(crate) async fn wait_until_synapse_refuses(synapse: &Synapse, token: &str) {
    for _ in 0..50 {
        if synapse.whoami(token).await.0 == StatusCode::UNAUTHORIZED {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "Synapse still takes a revoked token\n{}",
        synapse.log_tail()
    );
}

#[tokio::test]
async fn what_cannot_go_back_to_the_client_is_an_error_page_and_the_rest_goes_back() {
    let test = "what_cannot_go_back_to_the_client_is_an_error_page_and_the_rest_goes_back";
    let Some(beside) = start(test, Some(TestDb::sqlite().await)).await else {
        return;
    };
    let homekey = &beside.homekey;
    let client = Client::register(homekey, element_x()).await;
    let mut browser = Browser::new();
    // An unknown client, or a redirect URI it did not register: a page, never a redirect.
    let unknown = client.query("D", &[]).replace(&client.id, "unknown-client");
    let evil = client
        .query("D", &[])
        .replace("io.element%3A%2Fcallback", "https%3A%2F%2Fevil.example%2F");
    for query in [unknown, evil] {
        let page = browser.get(homekey, &format!("{AUTHORIZE}?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.location.is_none());
        assert!(page.html.contains("cannot go on"), "{}", page.html);
    }
    // The rest goes back to the client with its state: prompt=none or unknown, no PKCE, mixed
    // scopes. (prompt=create is never refused: tests/it/oauth_sign_up.rs.)
    let no_pkce = client
        .query("D", &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    for (query, error) in [
        (client.query("D", &[("prompt", "none")]), "login_required"),
        (
            client.query("D", &[("prompt", "select_account")]),
            "invalid_request",
        ),
        (no_pkce, "invalid_request"),
        (
            client.query("D", &[]).replace(
                "device%3AD",
                "device%3AD+urn%3Amatrix%3Aclient%3Adevice%3AE",
            ),
            "invalid_scope",
        ),
    ] {
        let page = browser.get(homekey, &format!("{AUTHORIZE}?{query}")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{query}: {}", page.html);
        assert_eq!(
            page.sent_back_value("error").as_deref(),
            Some(error),
            "{query}"
        );
        assert_eq!(page.sent_back_value("state").as_deref(), Some("the-state"));
    }
}

/// An OAuth session's token on homekey's own endpoints: it works (never `M_UNKNOWN_TOKEN`),
/// user-interactive auth is not offered to it (Synapse's 404 in this mode), the Admin API
/// admits it only with Synapse's admin scope granted to an admin, and `/logout` ends it.
#[tokio::test]
async fn an_oauth_token_on_homekeys_endpoints_is_a_session_without_interactive_auth() {
    let test = "an_oauth_token_on_homekeys_endpoints_is_a_session_without_interactive_auth";
    let Some(beside) = start(test, Some(TestDb::sqlite().await)).await else {
        return;
    };
    let homekey = &beside.homekey;
    homekey.create_user("alice", "alice-pw").await;
    homekey.admin_token("root", "root-pw").await;
    let client = Client::register(homekey, element_x()).await;
    // One session of alice's, and two of root's: with and without the admin scope.
    let session = |who: &'static str, device: &'static str, admin: bool| {
        let client = &client;
        async move {
            let mut browser = Browser::new();
            let mut query = client.query(device, &[]);
            if admin {
                query = query.replace(
                    &format!("device%3A{device}"),
                    &format!("device%3A{device}+urn%3Asynapse%3Aadmin%3A*"),
                );
            }
            let code =
                sign_in_and_allow(homekey, &mut browser, &query, who, &format!("{who}-pw")).await;
            let (status, tokens) = client.exchange(homekey, &code, VERIFIER).await;
            assert_eq!(status, StatusCode::OK, "{tokens}");
            (text(&tokens, "access_token"), text(&tokens, "scope"))
        }
    };
    let (alice, alice_scope) = session("alice", "ALICEOAUTH", true).await;
    assert!(
        !alice_scope.contains("admin"),
        "not an admin: {alice_scope}"
    );
    let (root_admin, root_scope) = session("root", "ROOTADMIN", true).await;
    assert!(root_scope.ends_with("urn:synapse:admin:*"), "{root_scope}");
    let (root_plain, _) = session("root", "ROOTPLAIN", false).await;

    let (status, body) = homekey.whoami(Some(&alice)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "ALICEOAUTH");
    for (method, path, body) in [
        (
            "POST",
            "/_matrix/client/v3/account/password",
            json!({"new_password": "x-new-password"}),
        ),
        ("POST", "/_matrix/client/v3/account/deactivate", json!({})),
        (
            "POST",
            "/_matrix/client/v3/delete_devices",
            json!({"devices": ["ALICEOAUTH"]}),
        ),
        ("DELETE", "/_matrix/client/v3/devices/ALICEOAUTH", json!({})),
    ] {
        let (status, answer) = homekey.call(method, path, Some(&alice), Some(body)).await;
        assert_eq!(
            (status, &answer["errcode"]),
            (StatusCode::NOT_FOUND, &json!("M_UNRECOGNIZED")),
            "{method} {path}: {answer}"
        );
    }
    assert!(homekey.has_password("@alice:example.com", "alice-pw").await);
    assert_eq!(homekey.whoami(Some(&alice)).await.0, StatusCode::OK);

    let users = "/_synapse/admin/v2/users/@alice:example.com";
    assert_eq!(
        homekey.call("GET", users, Some(&root_admin), None).await.0,
        StatusCode::OK
    );
    let (status, body) = homekey.call("GET", users, Some(&root_plain), None).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::FORBIDDEN, &json!("M_FORBIDDEN"))
    );
    let scope = introspect(homekey, &root_admin).await["scope"].clone();
    assert!(
        scope.as_str().unwrap().contains("urn:synapse:admin:*"),
        "{scope}"
    );
    // No longer an admin: the scope stays granted, but the rights go with the flag.
    homekey
        .store()
        .set_admin(
            "@root:example.com",
            false,
            homekey::store::AdminGuard::Off,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        homekey.call("GET", users, Some(&root_admin), None).await.0,
        StatusCode::FORBIDDEN
    );
    let scope = introspect(homekey, &root_admin).await["scope"].clone();
    assert!(!scope.as_str().unwrap().contains("admin"), "{scope}");

    // /logout ends the OAuth session as it ends any other.
    let (status, _) = homekey
        .call(
            "POST",
            "/_matrix/client/v3/logout",
            Some(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspect(homekey, &alice).await, json!({"active": false}));
    let (status, body) = homekey.whoami(Some(&alice)).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN"))
    );
}

/// Polls the token endpoint with the device grant.
async fn poll(server: &Server, client: &Client, device_code: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code),
    ];
    client.token(server, &form).await
}

/// Asks for a device authorization with `scope`.
async fn ask_device(server: &Server, client: &Client, scope: &str) -> Value {
    let response = server
        .http
        .post(server.url("/oauth2/device"))
        .form(&[("client_id", client.id.as_str()), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

fn error_of(answer: &(StatusCode, Value)) -> (StatusCode, &str) {
    (answer.0, answer.1["error"].as_str().unwrap_or("none"))
}

/// QR login's way: a Synapse with MSC4388 switched on starts beside homekey, and a device
/// (whose ID, as QR login makes them, holds `+` and `/`) signs in with the device
/// authorization grant once the user approves its code on homekey's page; polling early is
/// `authorization_pending`, too often `slow_down`; a refusal is `access_denied`, an old code
/// `expired_token`, a code used `invalid_grant`.
#[tokio::test]
async fn a_device_signs_in_once_its_user_approves_the_code_on_the_page() {
    let test = "a_device_signs_in_once_its_user_approves_the_code_on_the_page";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let shared = "oauth:\n  device_code_lifetime: 12s\n\
                  experimental_features:\n  msc4388_mode: open\n";
    let beside = BesideSynapse::start_sharing(venv, TestDb::sqlite().await, None, shared).await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    homekey.create_user("alice", "alice-pw").await;
    let client = Client::register(homekey, element_x()).await;
    let scope = "urn:matrix:client:api:* urn:matrix:client:device:qr+Lo/gin==";

    // Synapse serves the rendezvous QR login needs.
    let (status, body) = synapse
        .get(
            "/_matrix/client/unstable/io.element.msc4388/rendezvous",
            "none",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["create_available"], true);

    let expiring = ask_device(homekey, &client, scope).await;
    let started = std::time::Instant::now();
    let asked = ask_device(homekey, &client, scope).await;
    let user_code = text(&asked, "user_code");
    assert_eq!(user_code.len(), 9, "{asked}");
    assert_eq!(
        asked["verification_uri"],
        "https://matrix.example.com/_homekey/device/"
    );
    assert_eq!(
        asked["verification_uri_complete"],
        format!("https://matrix.example.com/_homekey/device/?user_code={user_code}")
    );
    assert_eq!(
        (asked["interval"].as_i64(), asked["expires_in"].as_i64()),
        (Some(5), Some(12))
    );
    let device_code = text(&asked, "device_code");
    assert_eq!(
        error_of(&poll(homekey, &client, &device_code).await),
        (StatusCode::BAD_REQUEST, "authorization_pending")
    );

    // The user follows the link, signs in, checks the code and allows the device.
    let mut browser = Browser::new();
    let link = format!("/_homekey/device/?user_code={user_code}");
    let page = browser.get(homekey, &link).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "{}\n{}",
        page.html,
        homekey.log()
    );
    let signed_in = browser
        .post(
            homekey,
            "/_homekey/device/sign-in",
            &[
                ("csrf", &page.field("csrf")),
                ("user_code", &page.field("user_code")),
                ("user", "alice"),
                ("password", "alice-pw"),
            ],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.html
    );
    let back = signed_in.location.clone().unwrap();
    assert_eq!(back, format!("/_homekey/device/?user_code={user_code}"));
    let approval = browser.get(homekey, &back).await;
    assert_eq!(approval.status, StatusCode::OK, "{}", approval.html);
    for needle in [
        user_code.as_str(),
        "from the address 127.0.0.1",
        "Element X",
        // Escaped as every value a page shows.
        "qr+Lo&#x2f;gin==",
    ] {
        assert!(
            approval.html.contains(needle),
            "{needle}: {}",
            approval.html
        );
    }
    // A forged decision does nothing.
    let forged = browser
        .post(
            homekey,
            "/_homekey/device/decision",
            &[
                ("csrf", "forged"),
                ("user_code", &user_code),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let allowed = browser
        .post(
            homekey,
            "/_homekey/device/decision",
            &[
                ("csrf", &approval.field("csrf")),
                ("user_code", &user_code),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.html);
    assert!(allowed.html.contains("Device allowed"), "{}", allowed.html);

    // Polled again sooner than its interval: slow down, and the interval grows.
    assert_eq!(
        error_of(&poll(homekey, &client, &device_code).await),
        (StatusCode::BAD_REQUEST, "slow_down")
    );
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    let (status, tokens) = poll(homekey, &client, &device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], scope);
    let access = text(&tokens, "access_token");
    let (status, body) = synapse.whoami(&access).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["device_id"], "qr+Lo/gin==");
    assert_eq!(
        error_of(&poll(homekey, &client, &device_code).await).1,
        "invalid_grant",
        "tokens are handed out once"
    );
    // The code is spent: the page no longer offers it.
    let gone = browser.get(homekey, &link).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.html);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "the test was too slow"
    );

    // Denied: access_denied at the next poll.
    let asked = ask_device(homekey, &client, scope).await;
    let page = browser
        .get(
            homekey,
            &format!("/_homekey/device/?user_code={}", text(&asked, "user_code")),
        )
        .await;
    let denied = browser
        .post(
            homekey,
            "/_homekey/device/decision",
            &[
                ("csrf", &page.field("csrf")),
                ("user_code", &page.field("user_code")),
                ("decision", "deny"),
            ],
        )
        .await;
    assert!(denied.html.contains("Device denied"), "{}", denied.html);
    assert_eq!(
        error_of(&poll(homekey, &client, &text(&asked, "device_code")).await),
        (StatusCode::BAD_REQUEST, "access_denied")
    );

    // Never answered: expired once its lifetime is over.
    let left = std::time::Duration::from_secs(13).saturating_sub(started.elapsed());
    tokio::time::sleep(left).await;
    assert_eq!(
        error_of(&poll(homekey, &client, &text(&expiring, "device_code")).await),
        (StatusCode::BAD_REQUEST, "expired_token")
    );
    // A code typed wrong, or another client's device code.
    let wrong = browser
        .get(homekey, "/_homekey/device/?user_code=BBBB-BBBB")
        .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert!(
        wrong.html.contains("not waiting for approval"),
        "{}",
        wrong.html
    );
    let other = Client::register(
        homekey,
        json!({"client_uri": "https://app.example.org", "redirect_uris": ["https://app.example.org/"]}),
    )
    .await;
    let response = homekey
        .http
        .post(homekey.url("/oauth2/device"))
        .form(&[("client_id", other.id.as_str()), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "a client without the device grant"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    let log = homekey.log();
    assert!(
        !log.contains(&device_code) && !log.contains(&access),
        "a secret in the log"
    );
}
