//! Two admins ending each other's power at the same moment (deactivating, locking or
//! demoting), over HTTP and through the CLI at once, on SQLite and PostgreSQL: the server is
//! never left without an admin who can act.
//!
//! A round really raced when the refused change got past authentication (its admin could
//! still act when it was asked) and was then stopped by the last-admin guard: done one after
//! the other, the second admin's token would have been refused first. The tests count those
//! rounds and require some.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::{Server, raw_execute, server_tests};
use crate::support::{HOMEKEY, TestDb};

server_tests!(
    two_admins_ending_each_other_over_http_leave_one_who_can_act,
    an_operator_and_an_admin_at_once_leave_one_who_can_act,
    the_last_admin_cannot_deactivate_their_own_account,
);

/// Rounds per test: each makes a fresh pair of admins, the only ones who can act.
const ROUNDS: usize = 24;

/// The operator's test goes on past [`ROUNDS`] until this many rounds raced...
const WANTED_RACES: usize = 3;
/// ...or this many rounds were run (each about a tenth of a second: a CLI process).
const MAX_AIMED_ROUNDS: usize = 120;

const ACTING_ADMINS: &str =
    "SELECT COUNT(*) FROM users WHERE admin = 1 AND deactivated = 0 AND locked = FALSE AND $1 = $1";

/// How an admin ends another's power, through the Admin API.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Deactivate,
    Lock,
    Demote,
    /// `PUT /v2/users/<id>` with `deactivated: true`.
    PutDeactivated,
}

const ENDINGS: [Ending; 4] = [
    Ending::Deactivate,
    Ending::Lock,
    Ending::Demote,
    Ending::PutDeactivated,
];

impl Ending {
    fn request(self, user_id: &str) -> (&'static str, String, Value) {
        match self {
            Ending::Deactivate => (
                "POST",
                format!("/_synapse/admin/v1/deactivate/{user_id}"),
                json!({}),
            ),
            Ending::Lock => (
                "PUT",
                format!("/_synapse/admin/v2/users/{user_id}"),
                json!({"locked": true}),
            ),
            Ending::Demote => (
                "PUT",
                format!("/_synapse/admin/v1/users/{user_id}/admin"),
                json!({"admin": false}),
            ),
            Ending::PutDeactivated => (
                "PUT",
                format!("/_synapse/admin/v2/users/{user_id}"),
                json!({"deactivated": true}),
            ),
        }
    }

    /// The CLI command that does the same.
    fn command(self, user_id: &str) -> Vec<String> {
        let words: &[&str] = match self {
            Ending::Deactivate | Ending::PutDeactivated => &["user", "deactivate", user_id],
            Ending::Lock => &["user", "lock", user_id],
            Ending::Demote => &["user", "set-admin", user_id, "false"],
        };
        words.iter().map(|w| (*w).to_owned()).collect()
    }
}

/// What an admin's request got.
#[derive(Debug)]
enum Answer {
    Done,
    /// Refused by the last-admin guard, after authentication.
    Guarded,
    /// Refused before: the requester could no longer act (a token refused, not an admin).
    NotAllowed,
}

fn classify(status: StatusCode, body: &Value) -> Answer {
    let guarded = status == StatusCode::BAD_REQUEST
        && body["errcode"] == "M_FORBIDDEN"
        && body["error"]
            .as_str()
            .is_some_and(|e| e.contains("last server admin who can act"));
    match status {
        StatusCode::OK => Answer::Done,
        _ if guarded => Answer::Guarded,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Answer::NotAllowed,
        _ => panic!("unexpected answer {status} {body}"),
    }
}

/// Makes `a` and `b` the only admins who can act, each with a token.
async fn fresh_pair(server: &Server, round: usize) -> ((String, String), (String, String)) {
    raw_execute(&server.db.config, "UPDATE users SET admin = 0", &[]).await;
    let mut pair = Vec::new();
    for side in ["a", "b"] {
        let localpart = format!("{side}{round}");
        let token = server.admin_token(&localpart, "pw").await;
        pair.push((format!("@{localpart}:example.com"), token));
    }
    let b = pair.pop().unwrap();
    let a = pair.pop().unwrap();
    (a, b)
}

async fn acting_admins(server: &Server) -> i64 {
    server.db.count(ACTING_ADMINS, "x").await
}

async fn two_admins_ending_each_other_over_http_leave_one_who_can_act(db: TestDb) {
    let server = Arc::new(Server::start(db, "").await);
    let mut raced = 0;
    for round in 0..ROUNDS {
        let ending = ENDINGS[round % ENDINGS.len()];
        let ((a, a_token), (b, b_token)) = fresh_pair(&server, round).await;
        let (a_method, a_path, a_body) = ending.request(&b);
        let (b_method, b_path, b_body) = ending.request(&a);
        let (a_answer, b_answer) = tokio::join!(
            server.call(a_method, &a_path, Some(&a_token), Some(a_body)),
            server.call(b_method, &b_path, Some(&b_token), Some(b_body)),
        );
        let answers = [
            classify(a_answer.0, &a_answer.1),
            classify(b_answer.0, &b_answer.1),
        ];
        let done = answers.iter().filter(|a| matches!(a, Answer::Done)).count();
        assert_eq!(done, 1, "round {round} ({ending:?}): {answers:?}");
        if answers.iter().any(|a| matches!(a, Answer::Guarded)) {
            raced += 1;
        }
        assert_eq!(
            acting_admins(&server).await,
            1,
            "round {round} ({ending:?}): {answers:?}"
        );
    }
    eprintln!("{raced} of {ROUNDS} rounds raced past authentication");
    assert!(
        raced > 0,
        "no round raced: the two changes never overlapped, so the guard was not tested"
    );
}

/// The operator's `homekey user …` (no `--force`) on one admin while that admin, over HTTP,
/// ends the other's power.
///
/// The command's transaction is a sliver of its process's life, so the request is aimed: each
/// round's answer says whether it came too early (the request won, the command was guarded)
/// or too late (the command won before the request was authenticated), and the next round's
/// delay bisects between the two. Rounds go on, up to [`MAX_AIMED_ROUNDS`], until a few have
/// raced.
async fn an_operator_and_an_admin_at_once_leave_one_who_can_act(db: TestDb) {
    let server = Arc::new(Server::start(db, "").await);
    let database = match &server.db.config {
        homekey::config::DatabaseConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
        homekey::config::DatabaseConfig::PostgresUrl(url) => url.clone(),
        other => panic!("{other:?}"),
    };
    // How long the command takes to reach the database, to aim the requests at.
    let started = Instant::now();
    let probe = crate::support::run_binary(
        HOMEKEY,
        &[
            "user",
            "show",
            "@nobody:example.com",
            "--database",
            &database,
        ],
        b"",
        &[],
    );
    assert_eq!(probe.status.code(), Some(1));
    let command_time = started.elapsed();
    let mut aim = Aim::new(command_time.mul_f64(1.5));
    let mut raced = 0;
    let mut round = 0;
    while round < ROUNDS || (raced < WANTED_RACES && round < MAX_AIMED_ROUNDS) {
        let ending = ENDINGS[round % ENDINGS.len()];
        let ((a, _), (b, b_token)) = fresh_pair(&server, round).await;
        let mut args = ending.command(&b);
        args.extend(["--database".to_owned(), database.clone()]);
        let command = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let output = std::process::Command::new(HOMEKEY)
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output();
            (output, started.elapsed())
        });
        let delay = aim.next_delay();
        let (b_method, b_path, b_body) = ending.request(&a);
        let request = async {
            tokio::time::sleep(delay).await;
            server
                .call(b_method, &b_path, Some(&b_token), Some(b_body))
                .await
        };
        let (command, (status, body)) = tokio::join!(command, request);
        let (output, command_took) = command.unwrap();
        let output = output.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let cli = match output.status.code() {
            Some(0) => Answer::Done,
            Some(1) if stderr.contains("last server admin who can act") => Answer::Guarded,
            other => panic!("round {round}: the command exited {other:?}: {stderr}"),
        };
        let http = classify(status, &body);
        let done = [&cli, &http]
            .iter()
            .filter(|a| matches!(a, Answer::Done))
            .count();
        assert_eq!(
            done, 1,
            "round {round} ({ending:?}): cli {cli:?}, http {http:?}"
        );
        // Only an admin who could still act when asked reaches the guard over HTTP.
        match http {
            Answer::Guarded => raced += 1,
            Answer::Done => aim.too_early(delay, command_took),
            Answer::NotAllowed => aim.too_late(delay),
        }
        assert_eq!(acting_admins(&server).await, 1, "round {round}");
        round += 1;
    }
    eprintln!("{raced} of {round} rounds raced past authentication");
    assert!(
        raced > 0,
        "no request reached the guard while the command was at work: nothing raced"
    );
}

async fn the_last_admin_cannot_deactivate_their_own_account(db: TestDb) {
    let server = Server::start(db, "").await;
    let token = server.admin_token("solo", "solo-pw").await;
    let deactivate = |session: Option<&str>| {
        let mut auth = crate::server::password_auth("solo", "solo-pw", session);
        if session.is_none() {
            auth = Value::Null;
        }
        Some(json!({ "auth": auth }))
    };
    let path = "/_matrix/client/v3/account/deactivate";
    let (status, body) = server
        .call("POST", path, Some(&token), deactivate(None))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let session = body["session"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call("POST", path, Some(&token), deactivate(Some(&session)))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errcode"], "M_FORBIDDEN");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("@solo:example.com is the last server admin who can act"),
        "{body}"
    );
    // Nothing changed: the account still acts.
    assert_eq!(server.whoami(Some(&token)).await.0, StatusCode::OK);
    assert_eq!(acting_admins(&server).await, 1);

    // With a second admin, the same request goes through.
    server.admin_token("duo", "duo-pw").await;
    let (_, body) = server
        .call("POST", path, Some(&token), deactivate(None))
        .await;
    let session = body["session"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call("POST", path, Some(&token), deactivate(Some(&session)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(acting_admins(&server).await, 1);
}

/// Where to send a request so that it lands inside another process's short transaction:
/// a bisection between the latest delay known to be too early and the earliest known to be
/// too late. Scheduling jitter moves the target from round to round, so once the interval is
/// narrower than that jitter it is widened again around its middle.
struct Aim {
    early: Duration,
    late: Duration,
}

impl Aim {
    /// The jitter the interval never narrows below.
    const JITTER: Duration = Duration::from_millis(4);

    fn new(late: Duration) -> Aim {
        Aim {
            early: Duration::ZERO,
            late,
        }
    }

    fn next_delay(&mut self) -> Duration {
        if self.late.saturating_sub(self.early) < Self::JITTER {
            let middle = (self.early + self.late) / 2;
            self.early = middle.saturating_sub(Self::JITTER);
            self.late = middle + Self::JITTER;
        }
        (self.early + self.late) / 2
    }

    /// `command_took` bounds the target from above: the command's transaction ended before
    /// its process did. It widens the interval when the target has moved past its end.
    fn too_early(&mut self, delay: Duration, command_took: Duration) {
        self.early = delay;
        if self.late < delay + Self::JITTER {
            self.late = self.late.max(command_took);
        }
    }

    fn too_late(&mut self, delay: Duration) {
        self.late = delay;
    }
}
