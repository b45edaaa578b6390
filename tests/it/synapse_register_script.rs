//! Synapse's own `register_new_matrix_user` script (from `pip install matrix-synapse`)
//! registers users on a running homekey through shared-secret registration.

use std::process::Command;

use reqwest::StatusCode;

use crate::server::{Server, server_tests};
use crate::support::{TestDb, synapse_venv};

server_tests!(synapses_register_new_matrix_user_registers_an_admin_on_homekey);

const SHARED_SECRET: &str = "script-shared-secret";

async fn synapses_register_new_matrix_user_registers_an_admin_on_homekey(db: TestDb) {
    let Some(venv) =
        synapse_venv("synapses_register_new_matrix_user_registers_an_admin_on_homekey")
    else {
        return;
    };
    let server = Server::start(
        db,
        &format!("registration_shared_secret: {SHARED_SECRET}\n"),
    )
    .await;
    let script = venv.join("bin/register_new_matrix_user");
    let run = |args: &[&str]| {
        let output = Command::new(&script)
            .args(args)
            .arg(&server.base)
            .output()
            .expect("the script runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };

    // The shared secret on the command line, as operators run it.
    let (code, stdout) = run(&[
        "-k",
        SHARED_SECRET,
        "-u",
        "operator",
        "-p",
        "op-pw",
        "--admin",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("Success!"), "{stdout}");
    let user = server
        .store()
        .get_user("@operator:example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.admin);
    let token = server.token_for("operator", "op-pw").await;
    let (status, _) = server
        .call(
            "GET",
            "/_synapse/admin/v2/users/@operator:example.com",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the new admin uses the Admin API");

    // The shared secret from a homeserver.yaml, a user that is no admin.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("homeserver.yaml");
    std::fs::write(
        &config,
        format!("registration_shared_secret: {SHARED_SECRET}\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (code, stdout) = run(&["-c", config, "-u", "plain", "-p", "plain-pw", "--no-admin"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        !server
            .store()
            .get_user("@plain:example.com")
            .await
            .unwrap()
            .unwrap()
            .admin
    );

    // Taken: an error, unless --exists-ok.
    let (code, stdout) = run(&["-c", config, "-u", "plain", "-p", "x", "--no-admin"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("User ID already taken."), "{stdout}");
    let (code, stdout) = run(&[
        "-c",
        config,
        "-u",
        "plain",
        "-p",
        "x",
        "--no-admin",
        "--exists-ok",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("User already exists. Skipping."),
        "{stdout}"
    );

    // A wrong secret registers nobody.
    let (code, stdout) = run(&["-k", "wrong-secret", "-u", "intruder", "-p", "x", "--admin"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("HMAC incorrect"), "{stdout}");
    assert!(
        server
            .store()
            .get_user("@intruder:example.com")
            .await
            .unwrap()
            .is_none()
    );
}
