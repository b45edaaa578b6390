//! Hashes against Synapse, both ways: Synapse's own hashes verify in homekey, and homekey's
//! hashes verify under Synapse's rule as Python's `bcrypt` (what Synapse runs) applies it.

use homekey::config::HashScheme;
use homekey::password::HashSettings;
use secrecy::{ExposeSecret, SecretString};

use crate::support::{python_with_bcrypt, synapse_hash_vectors};

struct Vector {
    password: String,
    pepper: String,
    hash: String,
}

fn vectors() -> Vec<Vector> {
    let data = synapse_hash_vectors();
    let mut all = Vec::new();
    for group in ["peppered", "unpeppered"] {
        for entry in data[group].as_array().unwrap() {
            all.push(Vector {
                password: entry["password"].as_str().unwrap().into(),
                pepper: entry["pepper"].as_str().unwrap().into(),
                hash: entry["hash"].as_str().unwrap().into(),
            });
        }
    }
    assert!(all.len() >= 6, "the vectors file lost its entries");
    all
}

#[test]
fn every_synapse_hash_verifies_with_its_pepper_and_nothing_else_does() {
    for v in vectors() {
        let settings =
            HashSettings::new(HashScheme::Bcrypt, 12, SecretString::from(v.pepper.clone()));
        let hash = SecretString::from(v.hash.clone());
        assert!(
            settings.verify(&SecretString::from(v.password.clone()), Some(&hash)),
            "{:?} with pepper {:?}",
            v.password,
            v.pepper
        );
        let wrong = format!("{}x", v.password);
        assert!(!settings.verify(&SecretString::from(wrong), Some(&hash)));
        let other_pepper = HashSettings::new(HashScheme::Bcrypt, 12, SecretString::from("not-it"));
        assert!(!other_pepper.verify(&SecretString::from(v.password.clone()), Some(&hash)));
        // Synapse's cost 12 is what homekey asks for by default: no rehash needed.
        assert!(!settings.needs_rehash(&hash));
    }
}

/// Synapse's rule, as `synapse/handlers/auth.py` applies it with Python's bcrypt.
const SYNAPSE_CHECK: &str = r#"
import json, sys, unicodedata, bcrypt
results = []
for case in json.load(sys.stdin):
    pw = unicodedata.normalize("NFKC", case["password"]).encode("utf8") + case["pepper"].encode("utf8")
    results.append(bcrypt.checkpw(pw[:72], case["hash"].encode("ascii")))
print(json.dumps(results))
"#;

#[test]
fn homekey_hashes_verify_under_synapses_rule_in_python_bcrypt() {
    let Some(python) = python_with_bcrypt("homekey_hashes_verify_under_synapses_rule") else {
        return;
    };
    let long = "ä".repeat(40) + "tail-that-bcrypt-never-sees";
    let cases = [
        ("p@ssw0rd!", "peer-pepper-0123456789"),
        ("ﬁx-Ⅸ-①-Ａ", "peer-pepper-0123456789"),
        ("pässwörd-日本語-🔑", ""),
        (long.as_str(), "pepper"),
    ];
    let mut checks = Vec::new();
    for (password, pepper) in cases {
        let settings = HashSettings::new(HashScheme::Bcrypt, 4, SecretString::from(pepper));
        let hash = settings.hash(&SecretString::from(password)).unwrap();
        checks.push(serde_json::json!({"password": password, "pepper": pepper, "hash": hash.expose_secret()}));
        // A wrong password must fail there too, or the check proves nothing.
        checks.push(serde_json::json!({"password": format!("{password}!"), "pepper": pepper, "hash": hash.expose_secret()}));
    }
    // And what an operator types: `printf 'pw\n' | hash_password -c homeserver.yaml`.
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::write_config(
        dir.path(),
        "server_name: example.com\nbcrypt_rounds: 4\npassword_config: {pepper: cli-pepper}\n",
    );
    let out = crate::support::run_binary(
        crate::support::HASH_PASSWORD,
        &["-c", config.to_str().unwrap()],
        b"pw\n",
        &[],
    );
    assert!(out.status.success());
    let cli_hash = crate::support::stdout(&out).trim().to_owned();
    checks.push(serde_json::json!({"password": "pw", "pepper": "cli-pepper", "hash": cli_hash}));
    checks.push(serde_json::json!({"password": "pw", "pepper": "", "hash": cli_hash}));

    let output = crate::support::run_binary(
        &python,
        &["-c", SYNAPSE_CHECK],
        serde_json::to_string(&checks).unwrap().as_bytes(),
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    let results: Vec<bool> = serde_json::from_slice(&output.stdout).unwrap();
    // The long password's wrong variant differs only past byte 72: it verifies, as in Synapse.
    assert_eq!(
        results,
        [
            true, false, true, false, true, false, true, true, true, false
        ]
    );
}
