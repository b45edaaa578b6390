//! Mail through a real SMTP server: aiosmtpd (`tests/it/smtp_server.py`, from
//! `$HOMEKEY_TEST_PYTHON`'s venv; `.ci/run` installs it) on loopback, plain or with STARTTLS on
//! a throwaway certificate of a throwaway CA. `homekey email test` as a process, and the queue
//! delivered by `homekey serve`: SMTP down and back, a serve killed while it holds a mail,
//! mail to an address no account has, and Synapse's own templates rendered by homekey.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use homekey::store::NewMail;
use serde_json::Value;

use crate::server::{Server, server_tests};
use crate::support::{self, HOMEKEY, TestDb, free_port, run_binary, stderr, stdout};

/// A Python interpreter that has aiosmtpd, or `None` (skipped; under CI a failure).
pub(crate) fn python_with_aiosmtpd(test: &str) -> Option<String> {
    let python = std::env::var("HOMEKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_it = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|out| out.status.success());
    if has_it {
        Some(python)
    } else {
        support::skip(
            test,
            &format!(
                "{python} has no aiosmtpd module (set HOMEKEY_TEST_PYTHON; .ci/run installs it)"
            ),
        );
        None
    }
}

/// A throwaway CA and a certificate it signed for `localhost`, as PEM files in `dir`.
pub(crate) struct TestCa {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestCa {
    fn new(dir: &Path) -> TestCa {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "homekey test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let paths = TestCa {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&paths.ca, pem("CERTIFICATE", ca.der())).unwrap();
        std::fs::write(&paths.cert, pem("CERTIFICATE", cert.der())).unwrap();
        std::fs::write(&paths.key, pem("PRIVATE KEY", &key.serialize_der())).unwrap();
        paths
    }
}

/// aiosmtpd on 127.0.0.1:`port`, killed when dropped.
pub(crate) struct Smtp {
    child: Child,
    dir: tempfile::TempDir,
}

/// A message as the SMTP server received it and Python's mail parser read it.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) parsed: Value,
    raw: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.parsed["headers"][name].as_str().unwrap_or_default()
    }
    /// The text part, its lines ended by `\n` (on the wire they end in CRLF).
    pub(crate) fn text(&self) -> String {
        self.parsed["text"]
            .as_str()
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }
    fn html(&self) -> String {
        self.parsed["html"]
            .as_str()
            .unwrap_or_default()
            .replace("\r\n", "\n")
    }
}

impl Smtp {
    pub(crate) fn start(
        python: &str,
        port: u16,
        starttls: Option<&TestCa>,
        auth: Option<&str>,
    ) -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_server.py");
        let mut command = Command::new(python);
        command
            .arg(&script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Its own log (a refused TLS handshake is a traceback there): beside the mail.
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap());
        if let Some(ca) = starttls {
            command.arg("--starttls").arg(&ca.cert).arg(&ca.key);
        }
        if let Some(auth) = auth {
            command.args(["--auth", auth]);
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the SMTP server did not start");
        Smtp { child, dir }
    }

    /// The messages received so far, in order.
    pub(crate) fn received(&self) -> Vec<Received> {
        let mut found = Vec::new();
        for n in 1.. {
            let eml = self.dir.path().join(format!("{n}.eml"));
            let Ok(raw) = std::fs::read(&eml) else {
                break;
            };
            let json = std::fs::read_to_string(self.dir.path().join(format!("{n}.json"))).unwrap();
            found.push(Received {
                parsed: serde_json::from_str(&json).unwrap(),
                raw: String::from_utf8_lossy(&raw).into_owned(),
            });
        }
        found
    }

    /// Waits (up to `seconds`) until `count` messages arrived.
    pub(crate) fn wait_for(&self, count: usize, seconds: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() > deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `email:` section for an SMTP server on 127.0.0.1:`port`, with `extra` keys.
pub(crate) fn email_section(port: u16, extra: &str) -> String {
    format!(
        "email:\n  smtp_host: 127.0.0.1\n  smtp_port: {port}\n  \
         notif_from: \"%(app)s <noreply@example.com>\"\n  app_name: Homekey Test\n{extra}"
    )
}

/// A config file for `homekey email test` in `dir`.
fn config_file(dir: &Path, email: &str) -> PathBuf {
    support::write_config(
        dir,
        &format!(
            "server_name: example.com\ndatabase:\n  name: sqlite3\n  args:\n    database: {}\n{email}",
            dir.join("homeserver.db").display()
        ),
    )
}

fn email_test(config: &Path, to: &str) -> std::process::Output {
    run_binary(
        HOMEKEY,
        &["email", "test", "--to", to, "-c", config.to_str().unwrap()],
        b"",
        &[],
    )
}

#[test]
fn email_test_delivers_over_plain_smtp_with_both_parts_and_the_headers() {
    let Some(python) = python_with_aiosmtpd("email_test_delivers_over_plain_smtp") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), &email_section(port, ""));
    let out = email_test(&config, "alice@example.org");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("sent a test mail to alice@example.org through 127.0.0.1:{port}")
    );
    let received = smtp.wait_for(1, 5);
    assert_eq!(received.len(), 1);
    let mail = &received[0];
    assert_eq!(mail.parsed["mail_from"], "noreply@example.com");
    assert_eq!(mail.parsed["rcpt_tos"][0], "alice@example.org");
    assert_eq!(mail.parsed["tls"], false);
    assert_eq!(mail.header("From"), "Homekey Test <noreply@example.com>");
    assert_eq!(mail.header("To"), "alice@example.org");
    assert_eq!(mail.header("Subject"), "[example.com] Test mail");
    assert_eq!(mail.header("Auto-Submitted"), "auto-generated");
    assert!(
        mail.header("Message-ID").ends_with("@example.com>"),
        "{mail:?}"
    );
    assert!(!mail.header("Date").is_empty());
    assert_eq!(
        mail.parsed["types"],
        serde_json::json!(["multipart/alternative", "text/plain", "text/html"])
    );
    assert_eq!(mail.parsed["charsets"][1], "utf-8");
    assert_eq!(mail.parsed["charsets"][2], "utf-8");
    assert!(
        mail.text()
            .contains("test mail from homekey on example.com")
    );
    assert!(
        mail.html()
            .contains("<p>This is a test mail from homekey on example.com.</p>")
    );
    assert!(mail.raw.contains("Auto-Submitted: auto-generated"));
}

#[test]
fn email_test_over_starttls_trusts_the_ca_file_and_nothing_else() {
    let Some(python) = python_with_aiosmtpd("email_test_over_starttls") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let port = free_port();
    let smtp = Smtp::start(&python, port, Some(&ca), None);

    // The certificate is for localhost; the server is reached at 127.0.0.1 (tlsname).
    let trusted = format!(
        "  require_transport_security: true\n  tlsname: localhost\n  smtp_ca_file: {}\n",
        ca.ca.display()
    );
    let config = config_file(dir.path(), &email_section(port, &trusted));
    let out = email_test(&config, "bob@example.org");
    assert!(out.status.success(), "{}", stderr(&out));
    let received = smtp.wait_for(1, 5);
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].parsed["tls"], true,
        "the mail went over STARTTLS"
    );
    assert_eq!(received[0].parsed["rcpt_tos"][0], "bob@example.org");

    // Without the CA file the certificate is nobody's: TLS fails, nothing is sent.
    let untrusted = "  require_transport_security: true\n  tlsname: localhost\n";
    let config = config_file(dir.path(), &email_section(port, untrusted));
    let out = email_test(&config, "bob@example.org");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = stderr(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with("homekey: TLS with the SMTP server failed: STARTTLS"),
        "{line}"
    );
    // A certificate for another name is refused too.
    let wrong_name = format!(
        "  require_transport_security: true\n  tlsname: mail.example.org\n  smtp_ca_file: {}\n",
        ca.ca.display()
    );
    let config = config_file(dir.path(), &email_section(port, &wrong_name));
    let out = email_test(&config, "bob@example.org");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("homekey: TLS with the SMTP server failed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(smtp.received().len(), 1);
}

#[test]
fn email_test_says_in_one_line_which_step_failed() {
    let Some(python) = python_with_aiosmtpd("email_test_says_which_step_failed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let one_line = |email: &str, to: &str| {
        let config = config_file(dir.path(), email);
        let out = email_test(&config, to);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let line = stderr(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        line
    };

    // Nothing listens there.
    let closed = free_port();
    let line = one_line(&email_section(closed, ""), "a@example.org");
    assert!(
        line.starts_with("homekey: connecting to the SMTP server failed: 127.0.0.1:"),
        "{line}"
    );
    // A name that does not resolve.
    let line = one_line(
        &email_section(closed, "").replace("127.0.0.1", "no-such-host.invalid"),
        "a@example.org",
    );
    assert!(
        line.starts_with("homekey: resolving the SMTP host failed: no-such-host.invalid"),
        "{line}"
    );

    let port = free_port();
    let smtp = Smtp::start(&python, port, None, Some("mailer:right-password"));
    // STARTTLS required, but the server offers none.
    let line = one_line(
        &email_section(port, "  require_transport_security: true\n"),
        "a@example.org",
    );
    assert!(
        line.starts_with(
            "homekey: TLS with the SMTP server failed: the server does not offer STARTTLS"
        ),
        "{line}"
    );
    // Implicit TLS against a plain server.
    let line = one_line(&email_section(port, "  force_tls: true\n"), "a@example.org");
    assert!(
        line.starts_with("homekey: TLS with the SMTP server failed"),
        "{line}"
    );
    // A wrong password: refused, and the password is not in the line.
    let line = one_line(
        &email_section(
            port,
            "  smtp_user: mailer\n  smtp_pass: wrong-password-xyz\n",
        ),
        "a@example.org",
    );
    assert!(
        line.starts_with("homekey: the SMTP server refused the authentication: as mailer"),
        "{line}"
    );
    assert!(!line.contains("wrong-password-xyz"), "{line}");
    // A recipient the server refuses.
    let with_auth = email_section(port, "  smtp_user: mailer\n  smtp_pass: right-password\n");
    let line = one_line(&with_auth, "nobody@refused.invalid");
    assert!(
        line.starts_with(
            "homekey: the SMTP server refused the recipient: nobody@refused.invalid: permanent error (550)"
        ),
        "{line}"
    );
    assert!(smtp.received().is_empty());
    // And with the right password, it goes.
    let out = email_test(&config_file(dir.path(), &with_auth), "a@example.org");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(smtp.wait_for(1, 5).len(), 1);
}

/// `homekey email status` on the test database: (exit code, stdout).
fn email_status(db: &TestDb) -> (Option<i32>, String) {
    let database = match &db.config {
        homekey::config::DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
        other => panic!("{other:?}"),
    };
    let out = run_binary(
        HOMEKEY,
        &["email", "status", "--database", &database],
        b"",
        &[],
    );
    (out.status.code(), stdout(&out))
}

fn a_mail(to: &str, only_if_address_known: bool) -> NewMail {
    NewMail {
        to: to.to_owned(),
        subject: "Über den Test".to_owned(),
        text: "secret link https://example.com/reset?token=SECRET-TOKEN\n".to_owned(),
        html:
            "<p>secret link <a href=\"https://example.com/reset?token=SECRET-TOKEN\">reset</a></p>"
                .to_owned(),
        only_if_address_known,
    }
}

/// Waits (up to `seconds`) until `status` says `needle`.
fn wait_for_status(db: &TestDb, needle: &str, seconds: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let (_, out) = email_status(db);
        if out.contains(needle) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SMTP is down: the queued mail waits, `homekey email status` shows it with the error, and it
/// goes out once SMTP is up; then its body is gone from the database.
async fn queued_mail_waits_for_smtp_and_goes_out_when_it_is_back(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("queued_mail_waits_for_smtp") else {
        return;
    };
    let port = free_port();
    let config = email_section(
        port,
        "  smtp_timeout: 2s\n  delivery_retry_delays: [1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s]\n",
    );
    let server = Server::start(db, &config).await;
    let (code, out) = email_status(&server.db);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "no mail waiting, none given up");

    server
        .store()
        .queue_mail(&a_mail("carol@example.org", false))
        .await
        .unwrap();
    let out = wait_for_status(&server.db, "retrying", 15);
    assert!(
        out.starts_with("mail not sent: 1 waiting, 0 given up"),
        "{out}"
    );
    let row = out.lines().nth(1).unwrap();
    assert!(
        row.starts_with("carol@example.org\tretrying\tÜber den Test\t"),
        "{row}"
    );
    assert!(
        row.ends_with(&format!(
            "connecting to the SMTP server failed: 127.0.0.1:{port}: Connection refused (os error 111)"
        )) || row.contains("connecting to the SMTP server failed"),
        "{row}"
    );
    assert!(!out.contains("SECRET-TOKEN"), "{out}");
    assert!(!server.log().contains("SECRET-TOKEN"));

    let smtp = Smtp::start(&python, port, None, None);
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].header("Subject"), "Über den Test");
    assert!(received[0].text().contains("token=SECRET-TOKEN"));
    let out = wait_for_status(&server.db, "no mail waiting", 5);
    assert_eq!(out.trim(), "no mail waiting, none given up");
    // Sent: the body (a link) is no longer kept.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_mail_outbox WHERE state = $1 AND body_text IS NULL AND body_html IS NULL",
            "sent",
        )
        .await
        != 1
    {
        assert!(Instant::now() < deadline, "the sent mail keeps its body");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!server.log().contains("SECRET-TOKEN"));
}

/// Mail that may only go to an account's address: to one, it goes; to an unknown address, it
/// takes the same queue and is dropped at delivery, without its body kept.
async fn mail_to_an_address_no_account_has_is_dropped_at_delivery(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("mail_to_an_unknown_address_is_dropped") else {
        return;
    };
    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    crate::server::raw_execute(
        &db.config,
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
         VALUES ($1, 'email', $2, 0, 0)",
        &["@dave:example.com", "dave@example.org"],
    )
    .await;
    let server = Server::start(db, &email_section(port, "")).await;
    server
        .store()
        .queue_mail(&a_mail("nobody@example.org", true))
        .await
        .unwrap();
    server
        .store()
        .queue_mail(&a_mail("dave@example.org", true))
        .await
        .unwrap();
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    assert_eq!(received[0].parsed["rcpt_tos"][0], "dave@example.org");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .db
        .count(
            "SELECT COUNT(*) FROM homekey_mail_outbox WHERE state = $1 AND body_text IS NULL",
            "dropped",
        )
        .await
        != 1
    {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.wait_for_log("mail dropped: its recipient is no account's address"));
    assert!(!server.log().contains("nobody@example.org"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.received().len(), 1);
}

/// A serve killed while it holds a mail (its SMTP server never answered): another serve
/// takes the mail once the lease has run out, and it is delivered once.
async fn a_mail_held_by_a_killed_serve_is_delivered_once_by_another(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("a_mail_held_by_a_killed_serve") else {
        return;
    };
    let port = free_port();
    // A server that accepts and never speaks: the delivery waits for its greeting.
    let silent = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let config = email_section(port, "  smtp_timeout: 1s\n  delivery_retry_delays: [1s]\n");
    let shared = db.share().await;
    let first = Server::start(db, &config).await;
    first
        .store()
        .queue_mail(&a_mail("erin@example.org", false))
        .await
        .unwrap();
    let (connection, _) = silent.accept().unwrap();
    // The first serve has the mail, and dies with it.
    let mut first = first;
    let _ = Command::new("kill")
        .args(["-KILL", &first.pid().to_string()])
        .status();
    let _ = first.stop();
    drop((connection, silent));
    let leased_at = Instant::now();

    let smtp = Smtp::start(&python, port, None, None);
    let second = Server::start(shared, &config).await;
    let received = smtp.wait_for(1, 40);
    assert_eq!(received.len(), 1, "{}", second.log());
    assert!(
        leased_at.elapsed() >= Duration::from_secs(5),
        "taken before the lease ran out"
    );
    assert_eq!(received[0].parsed["rcpt_tos"][0], "erin@example.org");
    let out = wait_for_status(&second.db, "no mail waiting", 5);
    assert_eq!(out.trim(), "no mail waiting, none given up");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.received().len(), 1, "delivered once");
}

/// The mail cannot be delivered: after the last retry it is given up, logged with its
/// recipient and error (never its body), and `homekey email status` shows it and exits 1.
async fn undeliverable_mail_is_given_up_and_shown(db: TestDb) {
    let port = free_port();
    let config = email_section(port, "  delivery_retry_delays: [1s]\n");
    let server = Server::start(db, &config).await;
    server
        .store()
        .queue_mail(&a_mail("frank@example.org", false))
        .await
        .unwrap();
    let out = wait_for_status(&server.db, "GIVEN UP", 15);
    assert!(
        out.starts_with("mail not sent: 0 waiting, 1 given up"),
        "{out}"
    );
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .starts_with("frank@example.org\tGIVEN UP\tÜber den Test\t"),
        "{out}"
    );
    assert!(out.contains("\t2 attempt(s)\t"), "{out}");
    let (code, _) = email_status(&server.db);
    assert_eq!(code, Some(1));
    assert!(server.wait_for_log("mail given up"));
    let log = server.log();
    let line = log.lines().find(|l| l.contains("mail given up")).unwrap();
    assert!(line.contains("frank@example.org"), "{line}");
    assert!(
        line.contains("connecting to the SMTP server failed"),
        "{line}"
    );
    assert!(!log.contains("SECRET-TOKEN"));
    assert_eq!(
        server
            .db
            .count(
                "SELECT COUNT(*) FROM homekey_mail_outbox WHERE state = $1 AND body_text IS NULL",
                "given_up",
            )
            .await,
        1
    );
}

/// Synapse's own templates (copied from the Synapse venv at test time, never committed),
/// in `templates.custom_template_directory`: the reset mail homekey queues and delivers is
/// theirs, and so are the pages; what they do not give (`_base.html`) is homekey's.
async fn synapse_templates_in_the_custom_directory_are_used(db: TestDb) {
    let Some(python) = python_with_aiosmtpd("synapse_templates_are_used") else {
        return;
    };
    let Some(venv) = support::synapse_venv("synapse_templates_are_used") else {
        return;
    };
    let templates = venv.join("lib/python3.11/site-packages/synapse/res/templates");
    let custom = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for entry in std::fs::read_dir(&templates).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("password_reset") {
            std::fs::copy(&path, custom.path().join(&name)).unwrap();
            copied += 1;
        }
    }
    assert_eq!(copied, 5, "Synapse's five password_reset templates");

    let port = free_port();
    let smtp = Smtp::start(&python, port, None, None);
    let section = format!(
        "{}templates:\n  custom_template_directory: {}\npublic_baseurl: https://matrix.example.com/\n",
        email_section(
            port,
            "  subjects:\n    password_reset: \"[%(server_name)s] Reset it\"\n"
        ),
        custom.path().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config_path = config_file(dir.path(), &section);
    let config = homekey::config::Config::load(&[&config_path]).unwrap();
    let link = "https://matrix.example.com/_synapse/client/password_reset/email/submit_token?token=TOKEN1&client_secret=SECRET2&sid=SID3";
    let mail = homekey::mail::password_reset_mail(&config, "grace@example.org", link).unwrap();
    assert!(mail.only_if_address_known);

    crate::server::raw_execute(
        &db.config,
        "INSERT INTO user_threepids (user_id, medium, address, validated_at, added_at) \
         VALUES ($1, 'email', $2, 0, 0)",
        &["@grace:example.com", "grace@example.org"],
    )
    .await;
    let server = Server::start(db, &section).await;
    server.store().queue_mail(&mail).await.unwrap();
    let received = smtp.wait_for(1, 15);
    assert_eq!(received.len(), 1, "{}", server.log());
    let got = &received[0];
    assert_eq!(got.header("Subject"), "[example.com] Reset it");
    assert_eq!(got.header("From"), "Homekey Test <noreply@example.com>");
    // Synapse's words, the link as it is in the text part, escaped in the HTML part.
    assert!(
        got.text().starts_with(
            "A password reset request has been received for your Matrix account. If this\nwas you"
        ),
        "{}",
        got.text()
    );
    assert!(
        got.text().contains(&format!("\n{link}\n")),
        "{}",
        got.text()
    );
    assert!(
        got.html().contains(&format!(
            "<a href=\"{0}\">{0}</a>",
            link.replace('&', "&amp;")
        )),
        "{}",
        got.html()
    );
    assert!(
        got.html()
            .contains("<strong>do not</strong> click the link")
    );
    // Synapse's password_reset.html extends "_base.html", which is homekey's here.
    assert!(
        got.html()
            .contains("<title>Password reset · example.com</title>"),
        "{}",
        got.html()
    );

    // The pages of the link, from the same directory.
    let page = homekey::mail::templates::password_reset_confirmation(
        &config, "SID3", "TOK\"EN", "SEC<RET",
    )
    .unwrap();
    assert!(
        page.contains("<input type=\"hidden\" name=\"token\" value=\"TOK&#34;EN\">"),
        "{page}"
    );
    assert!(page.contains("value=\"SEC&lt;RET\""), "{page}");
    assert!(page.contains("Confirm changing my password"), "{page}");
    let failure =
        homekey::mail::templates::password_reset_failure(&config, "This token has expired")
            .unwrap();
    assert!(
        failure.contains("The request failed for the following reason: This token has expired."),
        "{failure}"
    );
    let success = homekey::mail::templates::password_reset_success(&config).unwrap();
    assert!(
        success.contains("Your email has now been validated"),
        "{success}"
    );
}

server_tests!(
    queued_mail_waits_for_smtp_and_goes_out_when_it_is_back,
    mail_to_an_address_no_account_has_is_dropped_at_delivery,
    a_mail_held_by_a_killed_serve_is_delivered_once_by_another,
    undeliverable_mail_is_given_up_and_shown,
    synapse_templates_in_the_custom_directory_are_used,
);
