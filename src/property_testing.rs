//! What the property tests share: how many inputs each tries (a modest number by default, so
//! `cargo test` stays fast, or `PROPTEST_CASES` for a long run, see docs/SECURITY.md), and
//! arbitrary JSON for the request bodies.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// The property tests' configuration: `PROPTEST_CASES` inputs if set, else `default_cases`.
pub fn config(default_cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(default_cases),
        ..proptest::test_runner::Config::default()
    }
}

/// Text a hostile client may send: anything, long runs, control characters, NUL, bidi marks.
pub fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => "[a-z\\u{0}\\u{1}\\u{7f}\\u{85}\\u{200e}\\u{202e}\\u{fb01}é@:]{0,40}",
        1 => (0usize..2000).prop_map(|n| "x".repeat(n)),
    ]
}

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A JSON object whose keys are mostly the ones `known` names, each with any value.
pub fn json_object(known: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        4 => prop::sample::select(known).prop_map(str::to_owned),
        1 => hostile_text(),
    ];
    prop::collection::vec((key, json_value()), 0..8).prop_map(|pairs| pairs.into_iter().collect())
}
