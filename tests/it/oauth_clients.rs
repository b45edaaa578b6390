//! Real clients sign in with the Matrix OAuth 2.0 API against the real Synapse 1.163.2
//! delegating to `homekey serve`, behind nginx with the README's config: Element Web's library
//! (matrix-js-sdk 43 on Node 22, `tests/clients/oauth_js_sdk.mjs`: the authorization code
//! grant, and the device authorization grant QR login uses) and Element X's way (its
//! registration, unstable scopes, no `response_mode`, a loopback redirect). The user signs in
//! and allows the client, or approves the device's code, in a real headless Chromium.
//! Synapse's and homekey's `public_baseurl` is the proxy's URL, so that the endpoints a client
//! discovers are reachable. A missing Synapse, nginx, Chromium, Node 22 or js-sdk 43 is a
//! skip, a failure under `CI=true` (`.ci/run` installs them all).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::account_page::Chromium;
use crate::support::{TestDb, skip, synapse_venv};
use crate::synapse_proxy::{Proxy, Stopped, call, client, free_port, program};
use crate::synapse_queue::BesideSynapse;

/// The web client's own site, as registered (`client_uri` and its redirect URI).
pub(crate) const APP: &str = "https://app.homekey.test/";
pub(crate) const APP_HOST: &str = "app.homekey.test";
/// The js-sdk test client's name, as registered and shown on the consent and device pages.
const APP_NAME: &str = "homekey's js-sdk 43 test";

/// What switches QR login on in Synapse's homeserver.yaml (as the README says; Synapse takes
/// it only with `matrix_authentication_service` enabled). homekey ignores the key.
const QR_LOGIN: &str = "experimental_features:\n  msc4388_mode: open\n";

/// Node 22 (`$HOMEKEY_TEST_NODE22`, default `~/.cache/homekey-ci/node22-venv/bin/node`) and the
/// node_modules holding matrix-js-sdk 43 (`$HOMEKEY_TEST_JS_SDK_43`, default
/// `~/.cache/homekey-ci/js-sdk-43/node_modules`), as `.ci/run` installs them; else a skip
/// (under CI a failure).
pub(crate) fn node_22_and_js_sdk_43(test: &str) -> Option<(PathBuf, PathBuf)> {
    let cache =
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/homekey-ci");
    let from = |variable: &str, default: PathBuf| {
        std::env::var_os(variable).map_or(default, PathBuf::from)
    };
    let node = from("HOMEKEY_TEST_NODE22", cache.join("node22-venv/bin/node"));
    let modules = from(
        "HOMEKEY_TEST_JS_SDK_43",
        cache.join("js-sdk-43/node_modules"),
    );
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    if !version.as_deref().is_some_and(|v| v.starts_with("v22.")) {
        skip(
            test,
            &format!(
                "{} is not Node 22 ({version:?}; set HOMEKEY_TEST_NODE22; .ci/run installs it)",
                node.display()
            ),
        );
        return None;
    }
    let package = std::fs::read_to_string(modules.join("matrix-js-sdk/package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let sdk_version = package.as_ref().and_then(|p| p["version"].as_str());
    if !sdk_version.is_some_and(|v| v.starts_with("43.")) {
        skip(
            test,
            &format!(
                "no matrix-js-sdk 43 in {} ({sdk_version:?}; set HOMEKEY_TEST_JS_SDK_43; \
                 .ci/run installs it)",
                modules.display()
            ),
        );
        return None;
    }
    Some((node, modules))
}

/// A site of the test's own on 127.0.0.1 that answers every request 200 with a short page and
/// keeps each request's first line: a web client's HTTPS redirect target (a self-signed
/// certificate made now for its host) or a native client's loopback listener (plain HTTP).
pub(crate) struct Site {
    pub(crate) port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    pub(crate) async fn start(tls_host: Option<&str>) -> Site {
        let acceptor = tls_host.map(|host| {
            let made = rcgen::generate_simple_self_signed(vec![host.to_owned()]).unwrap();
            let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(
                made.signing_key.serialize_der().into(),
            );
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![made.cert.der().clone()], key)
                .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, kept) = (acceptor.clone(), kept.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            // A browser may open a connection it never uses, or give up on
                            // the certificate: such a connection is just dropped.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                answer(stream, &kept).await;
                            }
                        }
                        None => answer(stream, &kept).await,
                    }
                });
            }
        });
        Site {
            port,
            requests,
            task,
        }
    }

    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request's head, keeps its first line, answers 200 and closes.
async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, kept: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    kept.lock()
        .unwrap()
        .push(head.lines().next().unwrap_or_default().to_owned());
    let body = "<!doctype html><title>The app</title><p>Signed in: this window can be closed.";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// What the consent page must say of the client: its name, and what it says of its site.
struct Shown<'a> {
    name: &'a str,
    site: &'a str,
}

/// In Chromium: opens the authorization `url`, signs in on homekey's page when `password` is
/// given (else the browser is already signed in), checks the consent page shows `app`,
/// allows, and waits until the browser lands on a URL starting with `lands_on`, which it
/// returns; else what went wrong (the caller adds the logs). Screenshots `{shots}-*.png`
/// beside the account page's.
async fn sign_in_and_allow(
    chromium: &Chromium,
    url: &str,
    password: Option<&str>,
    app: Shown<'_>,
    lands_on: &str,
    shots: &str,
) -> Result<String, String> {
    let browser = &chromium.client;
    let webdriver = |e: fantoccini::error::CmdError| format!("chromium: {e}");
    browser.goto(url).await.map_err(webdriver)?;
    if let Some(password) = password {
        browser
            .wait()
            .for_element(Locator::Id("password"))
            .await
            .map_err(webdriver)?;
        chromium.shot(&format!("{shots}-1-sign-in")).await;
        crate::account_page::sign_in_with(browser, "alice", password)
            .await
            .map_err(webdriver)?;
    }
    let allow = browser
        .wait()
        .for_element(Locator::Id("allow"))
        .await
        .map_err(webdriver)?;
    chromium.shot(&format!("{shots}-2-consent")).await;
    for (id, expected) in [("client-name", app.name), ("client-site", app.site)] {
        let shown = browser
            .find(Locator::Id(id))
            .await
            .map_err(webdriver)?
            .text()
            .await
            .map_err(webdriver)?;
        if shown != expected {
            return Err(format!(
                "the consent page's #{id}: {shown:?}, expected {expected:?}"
            ));
        }
    }
    browser.find(Locator::Id("deny")).await.map_err(webdriver)?;
    allow.click().await.map_err(webdriver)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = browser.current_url().await.map_err(webdriver)?;
        if now.as_str().starts_with(lands_on) {
            return Ok(now.to_string());
        }
        if Instant::now() > deadline {
            let page = browser.source().await.unwrap_or_default();
            return Err(format!(
                "the browser did not reach {lands_on} in 30 s: it is at {now}:\n{page}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the device page must show of the request: the code the device got, the device ID it
/// asked for, and the app.
struct Device<'a> {
    user_code: &'a str,
    id: &'a str,
    app: &'a str,
}

/// In Chromium: opens a device's `verification_uri_complete`, signs in on the device page with
/// `password` if it asks (then returns true), checks that the approval page shows the
/// device's code, the app, the new device and the address the request came from, allows,
/// and waits for the page that says so; else what went wrong (the caller adds the logs).
/// Screenshots `{shots}-*.png` beside the account page's.
async fn approve_device(
    chromium: &Chromium,
    url: &str,
    password: &str,
    device: Device<'_>,
    shots: &str,
) -> Result<bool, String> {
    let browser = &chromium.client;
    let webdriver = |e: fantoccini::error::CmdError| format!("chromium: {e}");
    let text = |id: &'static str| async move {
        browser
            .find(Locator::Id(id))
            .await
            .map_err(webdriver)?
            .text()
            .await
            .map_err(webdriver)
    };
    browser.goto(url).await.map_err(webdriver)?;
    let first = browser
        .wait()
        .for_element(Locator::Css("#allow, #password"))
        .await
        .map_err(webdriver)?;
    let signs_in = first.attr("id").await.map_err(webdriver)?.as_deref() == Some("password");
    if signs_in {
        chromium.shot(&format!("{shots}-1-sign-in")).await;
        crate::account_page::sign_in_with(browser, "alice", password)
            .await
            .map_err(webdriver)?;
    }
    let allow = browser
        .wait()
        .for_element(Locator::Id("allow"))
        .await
        .map_err(webdriver)?;
    chromium.shot(&format!("{shots}-2-approve")).await;
    let page = browser.source().await.unwrap_or_default();
    let shown = text("user-code").await?;
    if shown != device.user_code {
        return Err(format!(
            "the device page shows the code {shown:?}, the device got {:?}:\n{page}",
            device.user_code
        ));
    }
    let name = text("client-name").await?;
    let new_device = text("device-new").await?;
    let requested = text("requested").await?;
    if name != device.app
        || !new_device.contains(&format!("(device {})", device.id))
        || !requested.ends_with("from the address 127.0.0.1.")
    {
        return Err(format!(
            "the device page: {name:?}, {new_device:?}, {requested:?}; expected {:?}, the new \
             device {:?} and the address 127.0.0.1:\n{page}",
            device.app, device.id
        ));
    }
    allow.click().await.map_err(webdriver)?;
    let done = browser
        .wait()
        .for_element(Locator::Id("done"))
        .await
        .map_err(webdriver)?
        .text()
        .await
        .map_err(webdriver)?;
    chromium.shot(&format!("{shots}-3-done")).await;
    let expected = format!(
        "The device with the code {} is signing in.",
        device.user_code
    );
    if !done.starts_with(&expected) {
        return Err(format!(
            "after Allow the page says {done:?}, not {expected:?}"
        ));
    }
    Ok(signs_in)
}

/// Waits for `prefix` at the start of a line of the file `path`; the rest of that line.
pub(crate) async fn wait_for_line(path: &Path, prefix: &str, node: &mut Stopped) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix(prefix)) {
            return Some(line.to_owned());
        }
        if node.0.try_wait().unwrap().is_some() || Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Element Web's library signs alice in through the OAuth 2.0 API: `getAuthMetadata` through
/// Synapse, `OAuth2.registerClient` as a web client on `https://app.homekey.test/`, the
/// authorization URL in fragment mode opened in Chromium (sign-in page, consent page, Allow),
/// the code read from the fragment of the URL the browser lands on (the client's host resolved
/// to a throwaway HTTPS site of the test), `completeAuthorizationCodeGrant`; a client with those
/// tokens chats and syncs through Synapse; `performRefreshTokenGrant`; `logout()` revokes both
/// tokens and Synapse refuses the access token at once. In the same run a password login still
/// works, and an Admin API reset through homekey ends a second OAuth session. Then QR login's
/// way, on a Synapse with QR login switched on: `startDeviceAuthorizationGrant` for a device
/// ID with `+` and `/`; the test opens the `verification_uri_complete` in Chromium, signs in
/// again (the reset ended the browser's session), checks that the page shows the device's
/// code and allows; `waitForDeviceAuthorizationGrant` gets the tokens, whose client is that
/// device on Synapse, until its `logout()`, after which Synapse refuses the token.
#[tokio::test]
async fn matrix_js_sdk_43_signs_in_through_nginx_with_oauth_in_chromium() {
    let test = "matrix_js_sdk_43_signs_in_through_nginx_with_oauth_in_chromium";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some((node, modules)) = node_22_and_js_sdk_43(test) else {
        return;
    };
    let app = Site::start(Some(APP_HOST)).await;
    let rules = format!(
        "--host-resolver-rules=MAP {APP_HOST} 127.0.0.1:{}",
        app.port
    );
    let flags = [rules, "--ignore-certificate-errors".to_owned()];
    let Some(chromium) = Chromium::start_with(test, &flags).await else {
        return;
    };
    let started = Instant::now();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/");
    let beside = BesideSynapse::start_at(venv, TestDb::sqlite().await, &public, QR_LOGIN).await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    homekey.create_user("alice", "alice-oauth-pw").await;
    let admin = homekey.admin_token("root", "root-pw").await;
    let http = client();
    let proxy = Proxy::nginx_on(port, &nginx, synapse, homekey, &http).await;
    let ready = started.elapsed();
    // QR login is on: Synapse serves its rendezvous, through the proxy.
    let (status, body) = call(
        &http,
        "GET",
        &proxy.url("/_matrix/client/unstable/io.element.msc4388/rendezvous"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, &body["create_available"]),
        (StatusCode::OK, &json!(true)),
        "{body}\n{}",
        synapse.log_tail()
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oauth_js_sdk.mjs");
    // The script's output goes to files: a pipe could fill while the test waits.
    let out = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out.path().join("stdout"), out.path().join("stderr"));
    let callbacks = out.path().join("callbacks");
    std::fs::create_dir(&callbacks).unwrap();
    let child = Command::new(&node)
        .arg(&script)
        .arg(proxy.url("/"))
        .args(["@alice:example.com", APP])
        .arg(&callbacks)
        .env("HOMEKEY_JS_SDK_DIR", &modules)
        .env("HOMEKEY_ALICE_PASSWORD", "alice-oauth-pw")
        .env("HOMEKEY_ALICE_NEW_PASSWORD", "alice-oauth-pw-reset")
        .env("HOMEKEY_ADMIN_TOKEN", &admin)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut node = Stopped(child);
    let context = || {
        format!(
            "{}\n{}\nhomekey:\n{}\nSynapse:\n{}\nnginx:\n{}\nthe app's site got: {:?}",
            std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            std::fs::read_to_string(&stderr_path).unwrap_or_default(),
            homekey.log(),
            synapse.log_tail(),
            proxy.log(),
            app.requests()
        )
    };

    // Two sign-ins: the first signs in on homekey's page, the second finds the browser signed
    // in and shows the consent page at once.
    let mut browser_time = Duration::ZERO;
    for (n, password) in [(1, Some("alice-oauth-pw")), (2, None)] {
        let Some(url) = wait_for_line(&stdout_path, &format!("AUTHORIZE {n} "), &mut node).await
        else {
            panic!("the script asked for no sign-in {n}:\n{}", context());
        };
        let shots = format!("oauth-js-sdk-{n}");
        let asked = Instant::now();
        let landed = sign_in_and_allow(
            &chromium,
            &url,
            password,
            Shown {
                name: APP_NAME,
                site: "From app.homekey.test.",
            },
            APP,
            &shots,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", context()));
        browser_time += asked.elapsed();
        assert!(landed.contains("#code="), "{landed}\n{}", context());
        // The browser reached the app's site over HTTPS (the fragment stays in the browser).
        assert!(
            app.requests().iter().any(|r| r.starts_with("GET / ")),
            "{}",
            context()
        );
        let file = callbacks.join(format!("callback-{n}"));
        std::fs::write(file.with_extension("new"), &landed).unwrap();
        std::fs::rename(file.with_extension("new"), &file).unwrap();
    }

    // The device grant (step j): the script polls while the browser approves its code.
    let Some(line) = wait_for_line(&stdout_path, "DEVICE 1 ", &mut node).await else {
        panic!("the script asked for no device approval:\n{}", context());
    };
    let [user_code, device_id, url] = line.splitn(3, ' ').collect::<Vec<_>>()[..] else {
        panic!("DEVICE 1 {line}");
    };
    assert_eq!(
        url,
        proxy.url(&format!("/_homekey/device/?user_code={user_code}"))
    );
    assert!(
        device_id.contains('+') && device_id.contains('/'),
        "{device_id}"
    );
    let asked = Instant::now();
    let signed_in = approve_device(
        &chromium,
        url,
        "alice-oauth-pw-reset",
        Device {
            user_code,
            id: device_id,
            app: APP_NAME,
        },
        "oauth-js-sdk-device",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", context()));
    browser_time += asked.elapsed();
    assert!(
        signed_in,
        "the Admin API reset with logout (step i) ends the browser's session too"
    );

    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the js-sdk 43 script did not finish in 180 s:\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    assert!(status.success(), "{}", context());
    assert!(
        stdout.contains("matrix-js-sdk: 11 passed, 0 failed, 0 skipped"),
        "{}",
        context()
    );
    // Each logout() revoked the access and the refresh token, each answered 200 by homekey;
    // the device asked once. (homekey's last lines may reach its log after the script ends.)
    let revoked = |log: &str| log.matches("path=/oauth2/revoke status=200").count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while revoked(&homekey.log()) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = homekey.log();
    assert_eq!(revoked(&log), 4, "{}", context());
    assert_eq!(log.matches("path=/oauth2/revoke").count(), 4, "{log}");
    assert_eq!(log.matches("path=/oauth2/device ").count(), 1, "{log}");
    assert_eq!(
        log.matches("path=/oauth2/device status=200").count(),
        1,
        "{log}"
    );
    chromium.close().await;
    eprintln!("{stdout}");
    eprintln!(
        "{test}: {:.1} s (Synapse, homekey and nginx up in {:.1} s; the browser's two sign-ins \
         and the device's approval {:.1} s)",
        started.elapsed().as_secs_f64(),
        ready.as_secs_f64(),
        browser_time.as_secs_f64()
    );
}

/// A form POST through the proxy; the status and the JSON answer.
async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Element X's way, through nginx: discovery through Synapse, Element X's registration (the
/// device grant kept), an authorization with the unstable scopes, no `response_mode` and a
/// loopback redirect on a port it did not register; the user signs in and allows in Chromium,
/// which lands on the test's loopback listener with the code in the query; the code is
/// exchanged over HTTP, the token works on Synapse, refreshes, and its revocation (Element X
/// revokes the access token only) ends the session on Synapse at once. On PostgreSQL (the
/// js-sdk test runs on SQLite).
#[tokio::test]
async fn element_x_signs_in_through_nginx_with_a_loopback_redirect() {
    let test = "element_x_signs_in_through_nginx_with_a_loopback_redirect";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(db) = TestDb::postgres(test).await else {
        return;
    };
    let Some(chromium) = Chromium::start(test).await else {
        return;
    };
    let started = Instant::now();
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}/");
    let beside = BesideSynapse::start_at(venv, db, &public, "").await;
    let (synapse, homekey) = (&beside.synapse, &beside.homekey);
    homekey.create_user("alice", "alice-x-pw").await;
    let http = client();
    let proxy = Proxy::nginx_on(port, &nginx, synapse, homekey, &http).await;
    let loopback = Site::start(None).await;
    let context = || {
        format!(
            "homekey:\n{}\nSynapse:\n{}\nnginx:\n{}\nthe loopback listener got: {:?}",
            homekey.log(),
            synapse.log_tail(),
            proxy.log(),
            loopback.requests()
        )
    };
    let ready = started.elapsed();

    // Discovery through Synapse (the unstable path too: matrix-rust-sdk picks it when
    // /versions lists no v1.15).
    let (status, metadata) = call(
        &http,
        "GET",
        &proxy.url("/_matrix/client/v1/auth_metadata"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{metadata}\n{}", context());
    let (status, unstable) = call(
        &http,
        "GET",
        &proxy.url("/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"),
        None,
        None,
    )
    .await;
    assert_eq!((status, &unstable), (StatusCode::OK, &metadata));
    assert_eq!(metadata["issuer"], public.as_str());
    let endpoint = |key: &str| metadata[key].as_str().unwrap().to_owned();

    // Registered exactly as Element X registers: every grant it asks for is kept, the device
    // grant among them.
    let response = http
        .post(endpoint("registration_endpoint"))
        .json(&crate::oauth_grants::element_x())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{}", context());
    let registered: Value = response.json().await.unwrap();
    let kept: Vec<&str> = registered["grant_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        [
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "{registered}"
    );
    assert_eq!(
        registered["redirect_uris"],
        crate::oauth_grants::element_x()["redirect_uris"],
        "{registered}"
    );
    let client_id = registered["client_id"].as_str().unwrap().to_owned();

    // The authorization as matrix-rust-sdk asks for it: unstable scopes, no response_mode, a
    // loopback redirect on a port of its own.
    let redirect = format!("http://127.0.0.1:{}/callback", loopback.port);
    let device = "ELEMENTXLOOPBACK";
    let verifier = "element-x-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let scope = format!(
        "urn:matrix:org.matrix.msc2967.client:api:* \
         urn:matrix:org.matrix.msc2967.client:device:{device}"
    );
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", scope.as_str()),
        ("state", "element-x-state"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let url = format!("{}?{query}", endpoint("authorization_endpoint"));
    let browser_started = Instant::now();
    let landed = sign_in_and_allow(
        &chromium,
        &url,
        Some("alice-x-pw"),
        Shown {
            name: "Element X",
            site: "The app says it is from element.io; this server cannot confirm it.",
        },
        &redirect,
        "oauth-element-x",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", context()));
    let browser_time = browser_started.elapsed();
    assert!(
        !landed.contains('#'),
        "the answer is in the query: {landed}"
    );
    // The loopback listener got the code in the query.
    let requests = loopback.requests();
    let got = requests
        .iter()
        .find(|r| r.starts_with("GET /callback?"))
        .unwrap_or_else(|| panic!("{}", context()));
    let target = got.split(' ').nth(1).unwrap();
    let sent: Vec<(String, String)> =
        form_urlencoded::parse(target.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    let value = |name: &str| {
        sent.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(value("state").as_deref(), Some("element-x-state"), "{got}");
    let code = value("code").unwrap_or_else(|| panic!("no code: {got}"));

    // The code exchanged over HTTP, through nginx.
    let token_endpoint = endpoint("token_endpoint");
    let (status, tokens) = post_form(
        &http,
        &token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", verifier),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", context());
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let whoami = |token: String| {
        let (http, url) = (http.clone(), proxy.url("/_matrix/client/v3/account/whoami"));
        async move { call(&http, "GET", &url, Some(&token), None).await }
    };
    let (status, body) = whoami(access.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(
        body,
        json!({"user_id": "@alice:example.com", "device_id": device, "is_guest": false})
    );

    // Refreshed: the new access token works on Synapse.
    let (status, fresh) = post_form(
        &http,
        &token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}\n{}", context());
    let fresh_access = fresh["access_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh_access, access);
    let (status, body) = whoami(fresh_access.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(body["device_id"], device);

    // Element X signs out by revoking its access token: Synapse refuses it at once.
    let (status, body) = post_form(
        &http,
        &endpoint("revocation_endpoint"),
        &[
            ("token", &fresh_access),
            ("token_type_hint", "access_token"),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    let (status, body) = whoami(fresh_access).await;
    assert_eq!(
        (status, &body["errcode"]),
        (StatusCode::UNAUTHORIZED, &json!("M_UNKNOWN_TOKEN")),
        "{body}"
    );
    chromium.close().await;
    eprintln!(
        "{test}: {:.1} s (Synapse, homekey and nginx up in {:.1} s; the browser's sign-in {:.1} s)",
        started.elapsed().as_secs_f64(),
        ready.as_secs_f64(),
        browser_time.as_secs_f64()
    );
}
