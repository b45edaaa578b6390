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

/// `text` percent-encoded for a URI path segment or query, every byte but the unreserved
/// ones escaped, as a careful client encodes it.
pub fn percent_encoded(text: &str) -> String {
    use std::fmt::Write;
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Characters a URI may hold as they are, `%` among them, so that broken escapes (`%zz`,
/// `%F`, `%FF` alone, which is not UTF-8) get through to the server.
const RAW_URI_TEXT: &str = "[A-Za-z0-9%@:._~!$'()*+,;=&/-]{0,30}";

/// A path segment a hostile client may send in place of a user or device ID: any text,
/// encoded; something shaped like a user ID; or raw URI characters with broken escapes.
pub fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => hostile_text().prop_map(|text| percent_encoded(&text)),
        2 => "@[a-zA-Z0-9._=/+-]{0,20}(:[a-z.]{0,12}(:[0-9]{0,7})?)?"
            .prop_map(|text| percent_encoded(&text)),
        2 => RAW_URI_TEXT,
        1 => Just(String::new()),
    ]
    .prop_filter("a path segment holds no slash", |segment| {
        !segment.contains('/')
    })
}

/// A number as a query parameter may hold it: of every size and sign, near the ends of
/// `i64` (where sums overflow) and past them.
pub fn query_number() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<i64>().prop_map(|n| n.to_string()),
        2 => (i64::MAX - 1000..=i64::MAX).prop_map(|n| n.to_string()),
        1 => (0i64..1000).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[0-9]{19,40}",
    ]
}

/// A value of a query parameter: numbers, the spellings a parser may stumble on, booleans
/// and enum names, and any text.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => query_number(),
        1 => prop::sample::select(vec![
            i64::MIN.to_string(),
            "-0".to_owned(),
            "+1".into(),
            " 1".into(),
            "1e3".into(),
            "0x10".into(),
            "\u{ff11}".into(),
            "true".into(),
            "false".into(),
            "f".into(),
            "b".into(),
            "name".into(),
            "last_seen_ts".into(),
            String::new(),
        ]),
        2 => hostile_text(),
    ]
}

/// A query string: any of the parameters `known` names (each in about half of the strings),
/// with any values, and a few of any other name, encoded as a client encodes them; or raw URI
/// characters with broken escapes.
pub fn query_string(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    let named = prop::sample::subsequence(known, 0..=known.len()).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|name| (Just(name.to_owned()), query_value()))
            .collect::<Vec<_>>()
    });
    let others = prop::collection::vec((hostile_text(), query_value()), 0..3);
    prop_oneof![
        4 => (named, others).prop_map(|(named, others)| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(named.into_iter().chain(others))
                .finish()
        }),
        1 => RAW_URI_TEXT,
    ]
}
