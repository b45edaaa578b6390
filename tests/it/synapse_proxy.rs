//! The README's reverse-proxy configs, run as written (only the addresses and the port
//! replaced) in front of the real Synapse 1.163.2 delegating to `homekey serve`: Debian's
//! nginx (`nginx-light`, `$HOMEKEY_TEST_NGINX`, default `/usr/sbin/nginx`) and Caddy
//! (`$HOMEKEY_TEST_CADDY`, default `caddy` on the PATH), each in a folder of its own on a
//! port of 127.0.0.1, stopped when the test ends. A client sees one server: logins, logouts,
//! passwords and device deletion answered by homekey, everything else by Synapse, and the
//! calls between the two out of reach. Then matrix-js-sdk through nginx
//! (`tests/clients/beside_synapse.mjs`). A missing nginx, Caddy, Node.js or js-sdk is a skip,
//! a failure under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, password_auth};
use crate::support::{skip, synapse_venv};
use crate::synapse_delegation::{SECRET, synapse_beside_homekey};
use crate::synapse_interop::Synapse;

/// The config between `<!-- {name}:start -->` and `<!-- {name}:end -->` in the README, without
/// its code fence.
fn readme_config(name: &str) -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    let from = readme
        .find(&start)
        .unwrap_or_else(|| panic!("README: no {start}"))
        + start.len();
    let to = readme[from..]
        .find(&end)
        .unwrap_or_else(|| panic!("README: no {end}"))
        + from;
    let block = readme[from..to].trim();
    let lines: Vec<&str> = block.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("```")) && lines.last() == Some(&"```"),
        "README: {name} is not one fenced block"
    );
    lines[1..lines.len() - 1].join("\n") + "\n"
}

/// `text` with each `(placeholder, value)` replaced; each placeholder must be there.
fn substitute(text: &str, substitutions: &[(&str, String)]) -> String {
    let mut text = text.to_owned();
    for (placeholder, value) in substitutions {
        assert!(
            text.contains(placeholder),
            "the README's config lost its placeholder {placeholder:?}"
        );
        text = text.replace(placeholder, value);
    }
    text
}

pub(crate) fn free_port() -> u16 {
    crate::support::free_port()
}

/// `host:port` of a `http://host:port…` URL.
fn address(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// SIGTERM, then up to 10 s for the process to exit, then SIGKILL.
fn stop_process(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The program `variable` names, else `default`, if it runs with `version_arg`; else a skip
/// (under CI a failure).
pub(crate) fn program(
    test: &str,
    variable: &str,
    default: &str,
    version_arg: &str,
) -> Option<PathBuf> {
    let program = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    let runs = Command::new(&program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if runs {
        Some(program)
    } else {
        skip(
            test,
            &format!(
                "{} does not run (set {variable}; .ci/run installs it)",
                program.display()
            ),
        );
        None
    }
}

/// A process of a test's own, stopped when dropped.
pub(crate) struct Stopped(pub(crate) Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        stop_process(&mut self.0);
    }
}

/// A reverse proxy started by a test: its process, its folder, its port.
pub(crate) struct Proxy {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
    log: PathBuf,
}

impl Proxy {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the proxy answers `/_matrix/client/versions` (Synapse's, through it).
    async fn wait_until_ready(&mut self, http: &reqwest::Client, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = http
                .get(self.url("/_matrix/client/versions"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{what} exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not answer in 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// nginx with the README's config in its `http {}` context; pid, logs and temporary
    /// files under its own prefix.
    pub(crate) async fn nginx(
        nginx: &Path,
        synapse: &Synapse,
        homekey: &Server,
        http: &reqwest::Client,
    ) -> Proxy {
        Proxy::nginx_on(free_port(), nginx, synapse, homekey, http).await
    }

    /// [`Proxy::nginx`] on `port` of 127.0.0.1, chosen before Synapse and homekey start (their
    /// `public_baseurl` is the proxy's URL).
    pub(crate) async fn nginx_on(
        port: u16,
        nginx: &Path,
        synapse: &Synapse,
        homekey: &Server,
        http: &reqwest::Client,
    ) -> Proxy {
        let site = |port: u16| {
            substitute(
                &readme_config("nginx-beside-synapse"),
                &[
                    ("127.0.0.1:8008", address(&synapse.url(""))),
                    ("127.0.0.1:8081", address(&homekey.base)),
                    ("listen 80;", format!("listen 127.0.0.1:{port};")),
                ],
            )
        };
        Proxy::nginx_with(port, nginx, site, http).await
    }

    /// nginx with the README's config, its `upstream homekey` the two instances' (the
    /// README's "Two instances", on `a` and `b`), and its listener for Synapse's
    /// introspection on `asked`.
    async fn nginx_two_instances(
        nginx: &Path,
        synapse: &Synapse,
        (a, b, asked): (u16, u16, u16),
        http: &reqwest::Client,
    ) -> Proxy {
        let site = |port: u16| {
            let upstream = substitute(
                &readme_config("nginx-two-instances"),
                &[
                    ("127.0.0.1:8081", format!("127.0.0.1:{a}")),
                    ("127.0.0.1:8082", format!("127.0.0.1:{b}")),
                    ("127.0.0.1:8080", format!("127.0.0.1:{asked}")),
                ],
            );
            substitute(
                &readme_config("nginx-beside-synapse"),
                &[
                    ("upstream homekey { server 127.0.0.1:8081; }\n", upstream),
                    ("127.0.0.1:8008", address(&synapse.url(""))),
                    ("listen 80;", format!("listen 127.0.0.1:{port};")),
                ],
            )
        };
        Proxy::nginx_with(free_port(), nginx, site, http).await
    }

    /// nginx with the site `site(port)` in its `http {}` context, on `port`.
    async fn nginx_with(
        port: u16,
        nginx: &Path,
        site: impl FnOnce(u16) -> String,
        http: &reqwest::Client,
    ) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        // Its workers run as `nobody` when the test runs as root: they need to reach the folder.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let p = dir.path().display().to_string();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("beside-synapse.conf"), site(port)).unwrap();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/logs/error.log;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log {p}/logs/access.log;\n\
                 client_body_temp_path {p}/temp-body;\n  proxy_temp_path {p}/temp-proxy;\n\
                 fastcgi_temp_path {p}/temp-fastcgi;\n  uwsgi_temp_path {p}/temp-uwsgi;\n\
                 scgi_temp_path {p}/temp-scgi;\n  include {p}/beside-synapse.conf;\n}}\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("logs/error.log");
        let stderr = std::fs::File::create(dir.path().join("logs/stderr.log")).unwrap();
        let child = Command::new(nginx)
            .args(["-p", &p, "-e", &format!("{p}/logs/error.log"), "-c"])
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut proxy = Proxy {
            child,
            _dir: dir,
            port,
            log,
        };
        proxy.wait_until_ready(http, "nginx").await;
        proxy
    }

    /// Caddy with the README's Caddyfile, its site address made `http://127.0.0.1:PORT` (no
    /// certificate), its admin endpoint off, its data and config in its own folder.
    async fn caddy(
        caddy: &Path,
        synapse: &Synapse,
        homekey: &Server,
        http: &reqwest::Client,
    ) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = substitute(
            &readme_config("caddy-beside-synapse"),
            &[
                ("127.0.0.1:8008", address(&synapse.url(""))),
                ("127.0.0.1:8081", address(&homekey.base)),
                (
                    "matrix.example.com {",
                    format!("http://127.0.0.1:{port} {{"),
                ),
            ],
        );
        let config = dir.path().join("Caddyfile");
        // Global options come first in a Caddyfile; the README's site block follows as written.
        std::fs::write(&config, format!("{{\n\tadmin off\n}}\n\n{site}")).unwrap();
        let log = dir.path().join("caddy.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&config)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        let mut proxy = Proxy {
            child,
            _dir: dir,
            port,
            log,
        };
        proxy.wait_until_ready(http, "caddy").await;
        proxy
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        stop_process(&mut self.child);
    }
}

/// One request; the status and the JSON answer (`Null` if none).
pub(crate) async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method.parse().unwrap(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The tests' HTTP client: no proxy, and no idle connection kept (a proxy stopping
/// gracefully would wait for it).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub(crate) fn password_login(user: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    })
}

/// An appservice with MSC4190 device management, known only to Synapse.
pub(crate) const AS_TOKEN: &str = "as-token-proxy-0123456789abcdefghij";

/// Restarts Synapse with an appservice registered (`bridge_*` users).
pub(crate) async fn register_appservice(synapse: &mut Synapse, dir: &Path) {
    let registration = dir.join("bridge.yaml");
    std::fs::write(
        &registration,
        format!(
            "id: bridge\nurl: null\nas_token: {AS_TOKEN}\nhs_token: hs-token-proxy-0123456789\n\
             sender_localpart: bridgebot\nrate_limited: false\nio.element.msc4190: true\n\
             namespaces:\n  users:\n    - exclusive: true\n      regex: '@bridge_.*:example\\.com'\n\
             \x20 aliases: []\n  rooms: []\n"
        ),
    )
    .unwrap();
    synapse.stop();
    let mut config = std::fs::read_to_string(&synapse.config).unwrap();
    config.push_str(&format!(
        "app_service_config_files: ['{}']\n",
        registration.display()
    ));
    std::fs::write(&synapse.config, config).unwrap();
    synapse.start().await;
}

/// Who must answer a request through the proxy.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Upstream {
    Homekey,
    Synapse,
}

/// The README's table of routes, one request each (no token: nothing changes).
const ROUTES: &[(&str, &str, Upstream)] = {
    use Upstream::{Homekey, Synapse};
    &[
        ("GET", "/_matrix/client/v3/login", Homekey),
        ("POST", "/_matrix/client/r0/login", Homekey),
        ("POST", "/_matrix/client/v3/logout", Homekey),
        ("POST", "/_matrix/client/r0/logout/all", Homekey),
        ("POST", "/_matrix/client/v3/refresh", Homekey),
        (
            "GET",
            "/_matrix/client/v3/register/available?username=x",
            Homekey,
        ),
        ("POST", "/_matrix/client/v3/register", Homekey),
        ("POST", "/_matrix/client/r0/register", Homekey),
        (
            "GET",
            "/_matrix/client/v1/register/m.login.registration_token/validity",
            Homekey,
        ),
        ("GET", "/_synapse/admin/v1/registration_tokens", Homekey),
        (
            "POST",
            "/_synapse/admin/v1/registration_tokens/new",
            Homekey,
        ),
        ("POST", "/_matrix/client/v3/account/password", Homekey),
        (
            "POST",
            "/_matrix/client/r0/account/password/email/requestToken",
            Homekey,
        ),
        (
            "GET",
            "/_synapse/client/password_reset/email/submit_token",
            Homekey,
        ),
        (
            "POST",
            "/_matrix/client/v3/register/email/requestToken",
            Homekey,
        ),
        (
            "POST",
            "/_matrix/client/r0/register/email/requestToken",
            Homekey,
        ),
        (
            "GET",
            "/_matrix/client/unstable/registration/email/submit_token",
            Homekey,
        ),
        ("POST", "/_matrix/client/r0/account/deactivate", Homekey),
        ("POST", "/_matrix/client/v3/delete_devices", Homekey),
        ("DELETE", "/_matrix/client/v3/devices/ROUTED", Homekey),
        ("DELETE", "/_matrix/client/r0/devices/ROUTED", Homekey),
        (
            "POST",
            "/_matrix/client/r0/admin/reset_password/@x:example.com",
            Homekey,
        ),
        (
            "POST",
            "/_synapse/admin/v1/reset_password/@x:example.com",
            Homekey,
        ),
        ("GET", "/_synapse/admin/v1/register", Homekey),
        (
            "POST",
            "/_synapse/admin/v1/deactivate/@x:example.com",
            Homekey,
        ),
        (
            "GET",
            "/_synapse/admin/v1/username_available?username=x",
            Homekey,
        ),
        (
            "POST",
            "/_synapse/admin/v1/users/@x:example.com/login",
            Homekey,
        ),
        (
            "GET",
            "/_synapse/admin/v1/users/@x:example.com/admin",
            Homekey,
        ),
        ("GET", "/_synapse/admin/v2/users?from=0", Homekey),
        ("GET", "/_synapse/admin/v3/users", Homekey),
        (
            "GET",
            "/_synapse/admin/v2/users/%40x%3Aexample.com",
            Homekey,
        ),
        ("PUT", "/_synapse/admin/v2/users/@x:example.com", Homekey),
        (
            "POST",
            "/_synapse/admin/v2/users/@x:example.com/delete_devices",
            Homekey,
        ),
        (
            "DELETE",
            "/_synapse/admin/v2/users/@x:example.com/devices/ROUTED",
            Homekey,
        ),
        ("GET", "/.well-known/openid-configuration", Homekey),
        ("GET", "/_homekey/account/", Homekey),
        ("GET", "/_homekey/oauth2/authorize", Homekey),
        ("POST", "/oauth2/registration", Homekey),
        ("POST", "/oauth2/token", Homekey),
        ("POST", "/oauth2/revoke", Homekey),
        ("POST", "/oauth2/device", Homekey),
        ("GET", "/_homekey/device/", Homekey),
        // A QR login's device ID is base64: `+`, `/` and `=` (nginx matches the decoded path).
        (
            "DELETE",
            "/_matrix/client/v3/devices/qr+Lo%2Fgin%3D%3D",
            Homekey,
        ),
        (
            "GET",
            "/_matrix/client/v3/devices/qr+Lo%2Fgin%3D%3D",
            Synapse,
        ),
        ("GET", "/_matrix/client/versions", Synapse),
        ("GET", "/_matrix/client/v3/account/whoami", Synapse),
        ("GET", "/_matrix/client/v3/capabilities", Synapse),
        ("GET", "/_matrix/client/v3/devices", Synapse),
        ("GET", "/_matrix/client/v3/devices/ROUTED", Synapse),
        ("PUT", "/_matrix/client/v3/devices/ROUTED", Synapse),
        ("GET", "/_matrix/client/v3/profile/@x:example.com", Synapse),
        ("GET", "/_matrix/client/v3/sync", Synapse),
        ("GET", "/_synapse/admin/v1/server_version", Synapse),
        ("GET", "/_synapse/admin/v1/whois/@x:example.com", Synapse),
        (
            "GET",
            "/_synapse/admin/v2/users/@x:example.com/devices",
            Synapse,
        ),
        (
            "GET",
            "/_synapse/admin/v2/users/@x:example.com/devices/ROUTED",
            Synapse,
        ),
    ]
};

/// Sends every request of [`ROUTES`] through the proxy and checks, by homekey's access log,
/// that homekey saw exactly those it must answer.
async fn check_routes(http: &reqwest::Client, proxy: &Proxy, homekey: &Server) {
    // With a body where the method takes one: homekey refuses these for their token before
    // any handler reads the body, and must still leave the connection usable for the next
    // (Caddy keeps its connections to homekey open, and answered 502 when it did not).
    for (method, path, _) in ROUTES {
        let mut request = http.request(method.parse().unwrap(), proxy.url(path));
        if *method != "GET" {
            request = request.json(&serde_json::json!({"pad": "x".repeat(4096)}));
        }
        let status = request.send().await.unwrap().status();
        assert!(
            !status.is_server_error(),
            "{method} {path}: {status}\n{}\nhomekey:\n{}",
            proxy.log(),
            homekey.log()
        );
    }
    let line = |method: &str, path: &str| format!("method={method} path={path} status=");
    let (last_method, last_path, _) = ROUTES
        .iter()
        .rfind(|(_, _, upstream)| *upstream == Upstream::Homekey)
        .unwrap();
    assert!(homekey.wait_for_log(&line(last_method, last_path)));
    let log = homekey.log();
    for (method, path, upstream) in ROUTES {
        let seen = log.contains(&line(method, path));
        assert_eq!(
            seen,
            *upstream == Upstream::Homekey,
            "{method} {path} should be {upstream:?}'s (homekey saw it: {seen})"
        );
    }
}

#[tokio::test]
async fn through_nginx_accounts_go_to_homekey_and_everything_else_to_synapse() {
    let test = "through_nginx_accounts_go_to_homekey_and_everything_else_to_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let started = Instant::now();
    let registration_dir = tempfile::tempdir().unwrap();
    let register_script = venv.join("bin/register_new_matrix_user");
    let (mut synapse, homekey) = synapse_beside_homekey(venv).await;
    register_appservice(&mut synapse, registration_dir.path()).await;
    homekey.create_user("alice", "alice-pw").await;
    let root = homekey.admin_token("root", "root-pw").await;
    let http = client();
    let proxy = Proxy::nginx(&nginx, &synapse, &homekey, &http).await;
    let at = |path: &str| proxy.url(path);
    let context = || format!("nginx:\n{}\nSynapse:\n{}", proxy.log(), synapse.log_tail());
    check_routes(&http, &proxy, &homekey).await;

    // The login flows and the login are homekey's (Synapse's own are 404 in this mode).
    let (status, body) = call(&http, "GET", &at("/_matrix/client/v3/login"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(body["flows"][0]["type"], "m.login.password", "{body}");
    let login = at("/_matrix/client/v3/login");
    let (status, body) = call(
        &http,
        "POST",
        &login,
        None,
        Some(password_login("alice", "alice-pw")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert!(homekey.wait_for_log("method=POST path=/_matrix/client/v3/login status=200"));
    let alice = body["access_token"].as_str().unwrap().to_owned();
    let first_device = body["device_id"].as_str().unwrap().to_owned();

    // Her token works on Synapse: whoami is Synapse's answer (homekey only saw the question).
    let whoami = at("/_matrix/client/v3/account/whoami");
    let (status, body) = call(&http, "GET", &whoami, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(body["user_id"], "@alice:example.com");
    assert_eq!(body["device_id"], json!(first_device));
    assert!(homekey.wait_for_log("path=/oauth2/introspect status=200"));

    // A second session, whose token Synapse has not seen yet.
    let (status, body) = call(
        &http,
        "POST",
        &login,
        None,
        Some(password_login("alice", "alice-pw")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["access_token"].as_str().unwrap().to_owned();
    let second_device = body["device_id"].as_str().unwrap().to_owned();

    // Reading a device is Synapse's; deleting it homekey's, with user-interactive auth.
    let device_path = format!("/_matrix/client/v3/devices/{second_device}");
    let (status, body) = call(&http, "GET", &at(&device_path), Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(body["device_id"], json!(second_device));
    let (status, body) = call(
        &http,
        "DELETE",
        &at(&device_path),
        Some(&alice),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}\n{}", context());
    assert_eq!(body["flows"][0]["stages"][0], "m.login.password", "{body}");
    let session = body["session"].as_str().unwrap().to_owned();
    let auth = json!({"auth": password_auth("alice", "alice-pw", Some(&session))});
    let (status, body) = call(&http, "DELETE", &at(&device_path), Some(&alice), Some(auth)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert!(homekey.wait_for_log(&format!("method=DELETE path={device_path} status=200")));
    let log = homekey.log();
    for path in [&device_path, "/_matrix/client/v3/account/whoami"] {
        assert!(
            !log.contains(&format!("method=GET path={path} ")),
            "homekey answered GET {path}, Synapse's:\n{log}"
        );
    }
    assert_eq!(
        homekey.device_ids("@alice:example.com").await,
        vec![first_device.clone()]
    );
    // homekey deleted it in Synapse too: Synapse no longer has it, and refuses its token.
    let (status, body) = call(&http, "GET", &at(&device_path), Some(&alice), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "Synapse still has it: {body}"
    );
    let (status, body) = call(&http, "GET", &whoami, Some(&second), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN_TOKEN", "{body}");

    // The calls between Synapse and homekey are out of reach, even with the right secret.
    let form = format!("token={alice}&token_type_hint=access_token");
    let introspect = |base: String| {
        http.post(base)
            .bearer_auth(SECRET)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };
    let response = introspect(at("/oauth2/introspect")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = introspect(homekey.url("/oauth2/introspect")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "homekey itself answers");
    let query_user = "/_synapse/mas/query_user?localpart=alice";
    let (status, body) = call(&http, "GET", &at(query_user), Some(SECRET), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["errcode"], "M_UNRECOGNIZED", "{body}");
    let (status, body) = call(&http, "GET", &synapse.url(query_user), Some(SECRET), None).await;
    assert_eq!(status, StatusCode::OK, "Synapse itself answers: {body}");

    // Synapse's Admin API for accounts is homekey's, the legacy client path included.
    let user = "/_synapse/admin/v2/users/@alice:example.com";
    let (status, body) = call(&http, "GET", &at(user), Some(&root), None).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(body["name"], "@alice:example.com");
    assert!(homekey.wait_for_log(&format!("method=GET path={user} status=200")));
    let reset = "/_matrix/client/r0/admin/reset_password/@alice:example.com";
    let new_password = json!({"new_password": "alice-new-pw", "logout_devices": false});
    let (status, body) = call(&http, "POST", &at(reset), Some(&root), Some(new_password)).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    let (status, body) = call(
        &http,
        "POST",
        &login,
        None,
        Some(password_login("alice", "alice-pw")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(
        &http,
        "POST",
        &login,
        None,
        Some(password_login("alice", "alice-new-pw")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // An appservice registers its user and manages its device (MSC4190) through the proxy:
    // Synapse does both; the DELETE, which the proxy sends to homekey, homekey passes on.
    let (status, body) = call(
        &http,
        "POST",
        &at("/_matrix/client/v3/register"),
        Some(AS_TOKEN),
        Some(json!({
            "type": "m.login.application_service",
            "username": "bridge_carol",
            "inhibit_login": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert_eq!(body["user_id"], "@bridge_carol:example.com");
    let bridged = at("/_matrix/client/v3/devices/BRIDGED?user_id=@bridge_carol:example.com");
    let (status, body) = call(
        &http,
        "PUT",
        &bridged,
        Some(AS_TOKEN),
        Some(json!({"display_name": "bridged"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", context());
    let (status, body) = call(&http, "GET", &bridged, Some(AS_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["display_name"], "bridged");
    let (status, body) = call(&http, "DELETE", &bridged, Some(AS_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
    assert!(homekey.wait_for_log(
        "method=DELETE path=/_matrix/client/v3/devices/BRIDGED?user_id=@bridge_carol:example.com status=200"
    ));
    let (status, body) = call(&http, "GET", &bridged, Some(AS_TOKEN), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the device is still there: {body}"
    );
    // A token neither knows: Synapse's 401.
    let (status, body) = call(
        &http,
        "DELETE",
        &at(&device_path),
        Some("syt_unknown_to_both"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["errcode"], "M_UNKNOWN_TOKEN", "{body}");

    // Synapse's own register_new_matrix_user, pointed at the public URL, registers through
    // homekey; the new user exists in Synapse and chats there.
    let output = Command::new(&register_script)
        .args([
            "-k",
            crate::synapse_queue::REGISTRATION_SECRET,
            "-u",
            "newcomer",
            "-p",
            "newcomer-pw",
            "--no-admin",
        ])
        .arg(proxy.url("/"))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && printed.contains("Success!"),
        "{printed}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, body) = call(
        &http,
        "POST",
        &login,
        None,
        Some(password_login("newcomer", "newcomer-pw")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let newcomer = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &http,
        "POST",
        &at("/_matrix/client/v3/createRoom"),
        Some(&newcomer),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", context());

    let log = homekey.log();
    for secret in [
        SECRET,
        AS_TOKEN,
        alice.as_str(),
        "alice-pw",
        "alice-new-pw",
        &newcomer,
        "newcomer-pw",
    ] {
        assert!(!log.contains(secret), "homekey logged a secret:\n{log}");
    }
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn through_caddy_the_login_is_homekeys_and_its_token_works_on_synapse() {
    let test = "through_caddy_the_login_is_homekeys_and_its_token_works_on_synapse";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(caddy) = program(test, "HOMEKEY_TEST_CADDY", "caddy", "version") else {
        return;
    };
    let started = Instant::now();
    let (synapse, homekey) = synapse_beside_homekey(venv).await;
    homekey.create_user("alice", "alice-pw").await;
    let http = client();
    let proxy = Proxy::caddy(&caddy, &synapse, &homekey, &http).await;
    let at = |path: &str| proxy.url(path);
    check_routes(&http, &proxy, &homekey).await;

    let login = at("/_matrix/client/v3/login");
    let (status, body) = call(
        &http,
        "POST",
        &login,
        None,
        Some(password_login("alice", "alice-pw")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", proxy.log());
    assert!(homekey.wait_for_log("method=POST path=/_matrix/client/v3/login status=200"));
    let alice = body["access_token"].as_str().unwrap().to_owned();
    let device = body["device_id"].as_str().unwrap().to_owned();
    let whoami = at("/_matrix/client/v3/account/whoami");
    let (status, body) = call(&http, "GET", &whoami, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", synapse.log_tail());
    assert_eq!(body["user_id"], "@alice:example.com");
    assert_eq!(body["device_id"], json!(device));
    assert!(
        !homekey
            .log()
            .contains("method=GET path=/_matrix/client/v3/account/whoami "),
        "homekey answered whoami, Synapse's"
    );

    // A device's DELETE is homekey's (its user-interactive auth), reading it Synapse's.
    let device_path = at(&format!("/_matrix/client/v3/devices/{device}"));
    let (status, body) = call(&http, "GET", &device_path, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(&http, "DELETE", &device_path, Some(&alice), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["session"].is_string(), "not homekey's UIA: {body}");

    let response = http
        .post(at("/oauth2/introspect"))
        .bearer_auth(SECRET)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={alice}&token_type_hint=access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let query_user = at("/_synapse/mas/query_user?localpart=alice");
    let (status, _) = call(&http, "GET", &query_user, Some(SECRET), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!homekey.log().contains(SECRET));
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Asserts that `proxy` answers homekey's routes with a Matrix error clients retry (503
/// `M_UNKNOWN`, JSON, `Retry-After`) while homekey cannot be reached, and still passes the
/// rest to Synapse.
async fn assert_homekey_unavailable(http: &reqwest::Client, proxy: &Proxy, what: &str) {
    for (method, path) in [
        ("POST", "/_matrix/client/v3/login"),
        ("GET", "/_matrix/client/r0/login"),
        ("DELETE", "/_matrix/client/v3/devices/SOME"),
        ("POST", "/_synapse/admin/v1/reset_password/@x:example.com"),
        ("GET", "/_homekey/account/"),
    ] {
        let response = http
            .request(method.parse().unwrap(), proxy.url(path))
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} {method} {path}: {text}"
        );
        assert_eq!(
            headers.get("content-type").map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "{what} {method} {path}"
        );
        assert_eq!(
            headers.get("retry-after").map(|v| v.to_str().unwrap()),
            Some("5"),
            "{what} {method} {path}"
        );
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what} {method} {path}: not JSON: {text}"));
        assert_eq!(body["errcode"], "M_UNKNOWN", "{what} {method} {path}");
        assert!(body["error"].is_string(), "{what} {method} {path}");
    }
    let (status, _) = call(
        http,
        "GET",
        &proxy.url("/_matrix/client/versions"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{what}: Synapse's routes");
}

/// With homekey stopped, nginx and Caddy with the README's configs answer homekey's routes
/// with a Matrix error (503 `M_UNKNOWN`, JSON, `Retry-After: 5`), not the proxy's own 502
/// page, which clients show as a broken server; Synapse's routes still work.
#[tokio::test]
async fn with_homekey_stopped_nginx_and_caddy_answer_its_routes_with_a_matrix_error() {
    let test = "with_homekey_stopped_nginx_and_caddy_answer_its_routes_with_a_matrix_error";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(caddy) = program(test, "HOMEKEY_TEST_CADDY", "caddy", "version") else {
        return;
    };
    let (synapse, mut homekey) = synapse_beside_homekey(venv).await;
    let http = client();
    let through_nginx = Proxy::nginx(&nginx, &synapse, &homekey, &http).await;
    let through_caddy = Proxy::caddy(&caddy, &synapse, &homekey, &http).await;
    homekey.stop();
    assert_homekey_unavailable(&http, &through_nginx, "nginx").await;
    assert_homekey_unavailable(&http, &through_caddy, "caddy").await;
}

/// The node_modules holding matrix-js-sdk (`tests/clients/run.sh --install` puts it in
/// `$HOMEKEY_CLIENTS_CACHE`, default `~/.cache/homekey-ci/js-sdk`), with a Node.js >= 20.
pub(crate) fn js_sdk(test: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("HOMEKEY_CLIENTS_CACHE").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/homekey-ci/js-sdk")
        },
        PathBuf::from,
    );
    let modules = cache.join("node_modules");
    if !modules.join("matrix-js-sdk/package.json").is_file() {
        skip(
            test,
            &format!(
                "no matrix-js-sdk in {} (bash tests/clients/run.sh --install)",
                modules.display()
            ),
        );
        return None;
    }
    let node = Command::new("node")
        .args([
            "-e",
            "process.exit(Number(process.versions.node.split('.')[0]) >= 20 ? 0 : 1)",
        ])
        .status()
        .is_ok_and(|status| status.success());
    if !node {
        skip(test, "no Node.js >= 20 on the PATH");
        return None;
    }
    Some(modules)
}

#[tokio::test]
async fn matrix_js_sdk_through_nginx_discovers_logs_in_and_chats() {
    let test = "matrix_js_sdk_through_nginx_discovers_logs_in_and_chats";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(modules) = js_sdk(test) else {
        return;
    };
    let started = Instant::now();
    let (synapse, homekey) = synapse_beside_homekey(venv).await;
    homekey.create_user("alice", "alice-js-pw").await;
    homekey.create_user("bob", "bob-js-pw").await;
    let http = client();
    let proxy = Proxy::nginx(&nginx, &synapse, &homekey, &http).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/beside_synapse.mjs");
    // The script's output goes to files: a pipe could fill while the test waits.
    let out = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (out.path().join("stdout"), out.path().join("stderr"));
    let child = Command::new("node")
        .arg(&script)
        .args([
            &proxy.url(""),
            "https://matrix.example.com/",
            "@alice:example.com",
            "@bob:example.com",
        ])
        .env("HOMEKEY_JS_SDK_DIR", &modules)
        .env("HOMEKEY_ALICE_PASSWORD", "alice-js-pw")
        .env("HOMEKEY_BOB_PASSWORD", "bob-js-pw")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut node = Stopped(child);
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the js-sdk script did not finish in 180 s:\n{}",
            std::fs::read_to_string(&stdout_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "{stdout}\n{stderr}\nhomekey:\n{}\nSynapse:\n{}\nnginx:\n{}",
        homekey.log(),
        synapse.log_tail(),
        proxy.log()
    );
    assert!(stdout.contains("5 passed, 0 failed, 0 skipped"), "{stdout}");
    eprintln!("{stdout}");
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}

/// The account page through the README's nginx config, as a user meets it: a client finds
/// the account page in Synapse's `auth_metadata`, and chromium opens its deep links through
/// nginx: the profile, the sessions, ending one (Synapse refuses its token at once), a
/// cross-signing reset Synapse asked for, and a password change that signs out the other
/// devices (Synapse refuses their tokens at once). Screenshots in
/// `$CARGO_TARGET_DIR/account-page/nginx-*.png`.
#[tokio::test]
async fn through_nginx_a_client_finds_the_account_page_and_chromium_follows_its_deep_links() {
    use fantoccini::Locator;
    let test = "through_nginx_a_client_finds_the_account_page_and_chromium_follows_its_deep_links";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(chromium) = crate::account_page::Chromium::start(test).await else {
        return;
    };
    let (synapse, homekey) = synapse_beside_homekey(venv).await;
    homekey.create_user("alice", "alice-pw").await;
    let http = client();
    let proxy = Proxy::nginx(&nginx, &synapse, &homekey, &http).await;
    let at = |path: &str| proxy.url(path);
    let context = || format!("nginx:\n{}\nSynapse:\n{}", proxy.log(), synapse.log_tail());
    let login = || async {
        let (status, body) = call(
            &http,
            "POST",
            &at("/_matrix/client/v3/login"),
            None,
            Some(password_login("alice", "alice-pw")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
        let token = body["access_token"].as_str().unwrap().to_owned();
        (token, body["device_id"].as_str().unwrap().to_owned())
    };
    let (phone, phone_device) = login().await;
    let (laptop, laptop_device) = login().await;
    let whoami = |token: String| {
        let http = http.clone();
        let url = at("/_matrix/client/v3/account/whoami");
        async move { call(&http, "GET", &url, Some(&token), None).await.0 }
    };
    assert_eq!(whoami(phone.clone()).await, StatusCode::OK, "{}", context());

    // The client finds the account page in Synapse's auth metadata, through nginx.
    let (status, metadata) = call(
        &http,
        "GET",
        &at("/_matrix/client/v1/auth_metadata"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{metadata}\n{}", context());
    let account = metadata["account_management_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(account, "https://matrix.example.com/_homekey/account/");
    let actions = metadata["account_management_actions_supported"]
        .as_array()
        .unwrap();
    for action in [
        "org.matrix.profile",
        "org.matrix.sessions_list",
        "org.matrix.session_end",
        "org.matrix.cross_signing_reset",
        "org.matrix.account_deactivate",
    ] {
        assert!(actions.contains(&json!(action)), "{metadata}");
    }
    // matrix.example.com is this nginx: the browser goes to its port.
    let through_nginx = |url: &str| url.replace("https://matrix.example.com/", &at("/"));
    let page = through_nginx(&account);
    let client = chromium.client.clone();
    let result = async {
        client
            .goto(&format!("{page}?action=org.matrix.profile"))
            .await?;
        chromium.shot("nginx-1-sign-in").await;
        crate::account_page::sign_in_with(&client, "alice", "alice-pw").await?;
        let user_id = client.wait().for_element(Locator::Id("user-id")).await?;
        assert_eq!(user_id.text().await?, "@alice:example.com");
        chromium.shot("nginx-2-profile").await;

        client
            .goto(&format!("{page}?action=org.matrix.sessions_list"))
            .await?;
        let listed = client.wait().for_element(Locator::Id("sessions")).await?;
        let listed = listed.text().await?;
        assert!(
            listed.contains(&phone_device) && listed.contains(&laptop_device),
            "{listed}"
        );
        chromium.shot("nginx-3-sessions").await;

        client
            .goto(&format!(
                "{page}?action=org.matrix.session_end&device_id={phone_device}"
            ))
            .await?;
        client
            .wait()
            .for_element(Locator::Id("end-session"))
            .await?
            .click()
            .await?;
        let notice = client.wait().for_element(Locator::Id("notice")).await?;
        assert_eq!(
            notice.text().await?,
            format!("Session {phone_device} was signed out.")
        );
        chromium.shot("nginx-4-session-ended").await;
        assert_eq!(
            whoami(phone.clone()).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            context()
        );
        assert_eq!(whoami(laptop.clone()).await, StatusCode::OK);

        // A cross-signing reset: Synapse asks for the page's approval, through nginx.
        let upload = at("");
        let first = crate::account_page::master_key("@alice:example.com");
        let (status, body) =
            crate::account_page::upload_master_key(&http, &upload, &laptop, &first).await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", context());
        let second = crate::account_page::master_key("@alice:example.com");
        let (status, body) =
            crate::account_page::upload_master_key(&http, &upload, &laptop, &second).await;
        let link = crate::account_page::assert_oauth_stage(status, &body);
        client.goto(&through_nginx(&link)).await?;
        client
            .wait()
            .for_element(Locator::Id("allow-reset"))
            .await?;
        chromium.shot("nginx-5-cross-signing-reset").await;
        client
            .find(Locator::Id("allow-reset"))
            .await?
            .click()
            .await?;
        let notice = client.wait().for_element(Locator::Id("notice")).await?;
        assert!(notice.text().await?.contains("within 10 minutes"));
        chromium.shot("nginx-6-cross-signing-approved").await;
        let (status, body) =
            crate::account_page::upload_master_key(&http, &upload, &laptop, &second).await;
        assert_eq!(status, StatusCode::OK, "{body}\n{}", context());

        // The password, the other devices signed out: Synapse refuses the laptop at once.
        client
            .goto(&format!("{page}?action=password_change"))
            .await?;
        crate::account_page::change_password_signing_out_the_others(
            &client,
            "alice-pw",
            "alice-nginx-pw",
        )
        .await?;
        chromium.shot("nginx-7-password-changed").await;
        assert_eq!(
            whoami(laptop.clone()).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            context()
        );
        // Still signed in to the page, on its new session.
        client
            .goto(&format!("{page}?action=org.matrix.profile"))
            .await?;
        client.wait().for_element(Locator::Id("user-id")).await?;
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    chromium.close().await;
    result.unwrap();
    let log = homekey.log();
    assert!(!log.contains(SECRET) && !log.contains("alice-pw"), "{log}");
}

/// One request of a load: when it was sent, and whether it got the answer it expected.
struct Sent {
    at: Instant,
    ok: bool,
    what: String,
}

/// One worker of the two-instance load: logs in through the proxy and asks Synapse who it
/// is with the token, then `logout`s or resets its own user's password (with logout) through
/// the proxy, until `until`. Returns every request it sent, and the tokens it still holds
/// and those it ended.
async fn load_worker(
    http: reqwest::Client,
    public: String,
    user: String,
    admin: Option<String>,
    until: Instant,
) -> (Vec<Sent>, Vec<String>, Vec<String>) {
    let (mut sent, mut live, mut ended) = (Vec::new(), Vec::new(), Vec::new());
    let mut password = format!("{user}-pw-0");
    // A reset that got no answer (in flight on the killed instance) may have been done.
    let mut reset_in_doubt: Option<String> = None;
    let mut record = |at: Instant, ok: bool, what: &str| {
        sent.push(Sent {
            at,
            ok,
            what: what.to_owned(),
        })
    };
    let mut round = 0;
    while Instant::now() < until {
        round += 1;
        let at = Instant::now();
        let login = format!("{public}/_matrix/client/v3/login");
        let answer = http
            .post(&login)
            .json(&password_login(&user, &password))
            .send()
            .await;
        let token = match answer {
            Ok(r) if r.status() == StatusCode::OK => {
                let body: Value = r.json().await.unwrap();
                body["access_token"].as_str().unwrap().to_owned()
            }
            Ok(r) if r.status() == StatusCode::FORBIDDEN && reset_in_doubt.is_some() => {
                password = reset_in_doubt.take().unwrap();
                continue;
            }
            _ => {
                record(at, false, "login");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        reset_in_doubt = None;
        record(at, true, "login");
        live.push(token.clone());
        let at = Instant::now();
        let whoami = format!("{public}/_matrix/client/v3/account/whoami");
        let answer = http.get(&whoami).bearer_auth(&token).send().await;
        record(
            at,
            answer.is_ok_and(|r| r.status() == StatusCode::OK),
            "whoami on Synapse",
        );
        let at = Instant::now();
        match &admin {
            None => {
                let logout = format!("{public}/_matrix/client/v3/logout");
                let answer = http
                    .post(&logout)
                    .bearer_auth(&token)
                    .body("{}")
                    .send()
                    .await;
                let ok = answer.is_ok_and(|r| r.status() == StatusCode::OK);
                record(at, ok, "logout");
                // Without an answer the token may or may not have ended: not checked.
                live.retain(|t| *t != token);
                if ok {
                    ended.push(token);
                }
            }
            Some(admin) => {
                let new = format!("{user}-pw-{round}");
                let reset =
                    format!("{public}/_synapse/admin/v1/reset_password/@{user}:example.com");
                let answer = http
                    .post(&reset)
                    .bearer_auth(admin)
                    .json(&json!({"new_password": new}))
                    .send()
                    .await;
                let ok = answer.is_ok_and(|r| r.status() == StatusCode::OK);
                record(at, ok, "reset");
                if ok {
                    password = new;
                    ended.append(&mut live);
                } else {
                    reset_in_doubt = Some(new);
                    live.clear();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (sent, live, ended)
}

/// The README's "Two instances": two `homekey serve` on one PostgreSQL behind nginx, Synapse
/// asking nginx's loopback listener about tokens. Under a steady load of logins, Synapse's
/// `whoami` with their tokens, logouts and admin resets through the proxy, one instance is
/// killed (-9) and restarted later: no request sent after the kill fails (those in flight on
/// the killed instance may), and at the end nothing is owed to Synapse, every ended token is
/// refused by Synapse and every live one works, and Synapse has no device homekey has not.
#[tokio::test]
async fn two_instances_behind_nginx_keep_serving_while_one_is_killed_and_restarted() {
    let test = "two_instances_behind_nginx_keep_serving_while_one_is_killed_and_restarted";
    let Some(venv) = synapse_venv(test) else {
        return;
    };
    let Some(nginx) = program(test, "HOMEKEY_TEST_NGINX", "/usr/sbin/nginx", "-v") else {
        return;
    };
    let Some(db) = crate::support::TestDb::postgres(test).await else {
        return;
    };
    let started = Instant::now();
    let (asked, b_port) = (free_port(), free_port());
    let second_db = db.share().await;
    let mut beside = crate::synapse_queue::BesideSynapse::start_asking(venv, db, Some(asked)).await;
    let a_port: u16 = beside
        .homekey
        .base
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let second = Server::start(second_db, &beside.instance_config(b_port)).await;
    let http = client();
    let proxy =
        Proxy::nginx_two_instances(&nginx, &beside.synapse, (a_port, b_port, asked), &http).await;
    let root = beside.homekey.admin_token("root", "root-pw").await;
    let logging_in = ["lara", "leo", "lina"];
    let resetting = ["rita", "rob"];
    for user in logging_in.iter().chain(&resetting) {
        beside
            .homekey
            .create_user(user, &format!("{user}-pw-0"))
            .await;
    }

    const LOAD: Duration = Duration::from_secs(24);
    let until = Instant::now() + LOAD;
    let mut workers = tokio::task::JoinSet::new();
    for user in logging_in {
        workers.spawn(load_worker(
            http.clone(),
            proxy.url(""),
            user.into(),
            None,
            until,
        ));
    }
    for user in resetting {
        let admin = Some(root.clone());
        workers.spawn(load_worker(
            http.clone(),
            proxy.url(""),
            user.into(),
            admin,
            until,
        ));
    }
    tokio::time::sleep(LOAD / 3).await;
    let pid = beside.homekey.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    // "After the kill" starts when the instance is gone (its port refuses connections): a
    // request sent between the signal and the process's end is one in flight on it.
    let address = beside.homekey.base.trim_start_matches("http://").to_owned();
    let gone_by = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(
            Instant::now() < gone_by,
            "the killed instance still accepts"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let killed_at = Instant::now();
    tokio::time::sleep(LOAD / 3).await;
    let restart_db = beside.homekey.db.share().await;
    // The killed server's handle owns the database: kept until the end of the test.
    let _killed = std::mem::replace(
        &mut beside.homekey,
        Server::start(restart_db, &beside.homekey_config).await,
    );

    let (mut sent, mut live, mut ended) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(joined) = workers.join_next().await {
        let (s, l, e) = joined.unwrap();
        sent.extend(s);
        live.extend(l);
        ended.extend(e);
    }
    let failed_after_kill: Vec<&Sent> = sent.iter().filter(|s| !s.ok && s.at > killed_at).collect();
    let in_flight_at_kill: Vec<&str> = sent
        .iter()
        .filter(|s| !s.ok && s.at <= killed_at)
        .map(|s| s.what.as_str())
        .collect();
    let answered_503 = std::fs::read_to_string(proxy.log.with_file_name("access.log"))
        .unwrap()
        .lines()
        .filter(|line| line.contains("\" 503 "))
        .count();
    eprintln!(
        "{test}: {} requests ({} after the kill), {} failed: {in_flight_at_kill:?} in flight \
         at the kill, {} sent after it; nginx answered 503 {answered_503} times",
        sent.len(),
        sent.iter().filter(|s| s.at > killed_at).count(),
        sent.iter().filter(|s| !s.ok).count(),
        failed_after_kill.len(),
    );
    assert!(
        failed_after_kill.is_empty(),
        "sent after the kill and failed: {:?}\n{}",
        failed_after_kill
            .iter()
            .map(|s| format!("{} at {:?}", s.what, s.at - killed_at))
            .collect::<Vec<_>>(),
        proxy.log()
    );
    assert!(sent.len() > 100, "too little load: {} requests", sent.len());

    // Nothing owed to Synapse is lost.
    beside.wait_until_nothing_owed(Duration::from_secs(30));
    for token in &ended {
        let (status, body) = beside.synapse.whoami(token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an ended token: {body}");
    }
    for token in &live {
        let (status, body) = beside.synapse.whoami(token).await;
        assert_eq!(status, StatusCode::OK, "a live token: {body}");
    }
    for user in logging_in.iter().chain(&resetting) {
        let user_id = format!("@{user}:example.com");
        let in_homekey = beside.homekey.device_ids(&user_id).await;
        let in_synapse = beside.synapse_devices(&root, &user_id).await;
        let unknown: Vec<&String> = in_synapse
            .iter()
            .filter(|d| !in_homekey.contains(d))
            .collect();
        assert!(
            unknown.is_empty(),
            "{user_id}: Synapse still has {unknown:?}"
        );
    }
    drop(second);
    eprintln!("{test}: {:.1} s", started.elapsed().as_secs_f64());
}
