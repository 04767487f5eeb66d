//! Tests of the BurntSushi-compatible encoder. Expected bytes are the reference's where it has them (the
//! `plan.toml` of its detector acceptance test), else built from `encode.go`'s rules (module docs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde::Serialize;

use super::*;

#[derive(Serialize)]
struct Provider {
    id: String,
    version: String,
}

#[derive(Serialize)]
struct Require {
    name: String,
    version: String,
    metadata: toml::Table,
}

#[derive(Serialize)]
struct Entry {
    providers: Vec<Provider>,
    requires: Vec<Require>,
}

#[derive(Serialize)]
struct Plan {
    entries: Vec<Entry>,
}

#[test]
fn reference_detector_acceptance_plan_toml() {
    // buildpacks/lifecycle acceptance/detector_test.go: the plan.toml the reference's detector writes.
    let mut metadata = toml::Table::new();
    metadata.insert("world".into(), "Earth-616".into());
    let plan = Plan {
        entries: vec![Entry {
            providers: vec![Provider {
                id: "simple_buildpack".into(),
                version: "simple_buildpack_version".into(),
            }],
            requires: vec![Require {
                name: "some-world".into(),
                version: "0.1".into(),
                metadata,
            }],
        }],
    };
    assert_eq!(
        to_string(&plan).unwrap(),
        "[[entries]]\n\n  [[entries.providers]]\n    id = \"simple_buildpack\"\n    version = \"simple_buildpack_version\"\n\n  [[entries.requires]]\n    name = \"some-world\"\n    version = \"0.1\"\n    [entries.requires.metadata]\n      world = \"Earth-616\"\n"
    );
}

#[derive(Serialize)]
struct Sub {
    sha: String,
}

#[derive(Serialize)]
struct Doc {
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<Sub>,
    table: Sub,
    list: Vec<String>,
    empty: Vec<Sub>,
    nil: Option<String>,
    name: String,
}

#[test]
fn direct_keys_first_blank_line_before_top_level_tables_struct_order() {
    let d = Doc {
        image: Some(Sub { sha: "a".into() }),
        table: Sub { sha: "b".into() },
        list: vec!["x".into(), "y".into()],
        empty: vec![],
        nil: None,
        name: "n".into(),
    };
    assert_eq!(
        to_string(&d).unwrap(),
        "list = [\"x\", \"y\"]\nempty = []\nname = \"n\"\n\n[image]\n  sha = \"a\"\n\n[table]\n  sha = \"b\"\n"
    );
}

#[test]
fn maps_are_sorted_direct_before_tables_and_nested_headers_have_no_blank_line() {
    let v: toml::Table = toml::from_str(
        "z = 1\na = \"s\"\n[m]\nk = true\n[m.deep]\nq = 1.5\n[[arr]]\nx = 1\n[[arr]]\nx = 2\n[[m.list]]\ny = 3\n",
    )
    .unwrap();
    assert_eq!(
        to_string(&v).unwrap(),
        "a = \"s\"\nz = 1\n\n[[arr]]\n  x = 1\n\n[[arr]]\n  x = 2\n\n[m]\n  k = true\n  [m.deep]\n    q = 1.5\n\n  [[m.list]]\n    y = 3\n"
    );
}

#[test]
fn empty_tables_get_headers_and_empty_documents_are_empty() {
    #[derive(Serialize)]
    struct E {
        metadata: toml::Table,
    }
    assert_eq!(
        to_string(&E {
            metadata: toml::Table::new()
        })
        .unwrap(),
        "[metadata]\n"
    );
    assert_eq!(to_string(&toml::Table::new()).unwrap(), "");
}

#[test]
fn strings_and_keys_are_quoted_like_go() {
    let mut t = BTreeMap::new();
    t.insert(
        "a.b",
        "q\" b\\ \u{8}\t\n\u{c}\r \u{1} \u{1f} \u{7f} é ☃ <&>",
    );
    t.insert("", "empty key");
    t.insert("bare_Key-1", "x");
    assert_eq!(
        to_string(&t).unwrap(),
        "\"\" = \"empty key\"\n\"a.b\" = \"q\\\" b\\\\ \\b\\t\\n\\f\\r \\u0001 \\u001f \\u007f é ☃ <&>\"\nbare_Key-1 = \"x\"\n"
    );
    let mut nested = toml::Table::new();
    let mut inner = toml::Table::new();
    inner.insert("k".into(), 1.into());
    nested.insert("my table".into(), inner.into());
    assert_eq!(to_string(&nested).unwrap(), "[\"my table\"]\n  k = 1\n");
}

#[test]
fn numbers_like_strconv() {
    let v: toml::Table = toml::from_str(
        "a = 1.0\nb = -0.5\nc = 1e21\nd = 1e-7\ne = nan\nf = -inf\ng = inf\nh = -9223372036854775808\ni = 3.14159\n",
    )
    .unwrap();
    assert_eq!(
        to_string(&v).unwrap(),
        "a = 1.0\nb = -0.5\nc = 1000000000000000000000.0\nd = 0.0000001\ne = nan\nf = -inf\ng = +inf\nh = -9223372036854775808\ni = 3.14159\n"
    );
    #[derive(Serialize)]
    struct F {
        f: f32,
        u: u64,
    }
    assert_eq!(
        to_string(&F {
            f: 0.1,
            u: u64::MAX
        })
        .unwrap(),
        "f = 0.1\nu = 18446744073709551615\n"
    );
}

#[test]
fn datetimes_like_rfc3339nano() {
    let v: toml::Table = toml::from_str(
        "a = 1979-05-27T07:32:00Z\nb = 1979-05-27 00:32:00.999000-07:00\nc = 1979-05-27T07:32:00+00:00\nd = 1979-05-27T07:32:00.5\ne = 1979-05-27\nf = 07:32:00.000001\n",
    )
    .unwrap();
    assert_eq!(
        to_string(&v).unwrap(),
        "a = 1979-05-27T07:32:00Z\nb = 1979-05-27T00:32:00.999-07:00\nc = 1979-05-27T07:32:00Z\nd = 1979-05-27T07:32:00.5\ne = 1979-05-27\nf = 07:32:00.000001\n"
    );
}

#[test]
fn tables_inside_inline_arrays_are_inline() {
    let v: toml::Table =
        toml::from_str("a = [[{x = 1, t = {q = 2}}, {}]]\nb = [1, {z = \"y\", a = [2]}]\n")
            .unwrap();
    assert_eq!(
        to_string(&v).unwrap(),
        "a = [[{x = 1, t = {q = 2}}, {}]]\nb = [1, {a = [2], z = \"y\"}]\n"
    );
}

#[test]
fn unencodable_values_are_errors() {
    assert!(to_string(&"x").is_err());
    assert!(to_string(&vec![1]).is_err());
    let mut m = BTreeMap::new();
    m.insert("a", vec![Some(1), None]);
    assert!(to_string(&m)
        .unwrap_err()
        .to_string()
        .contains("nil element"));
    let mut m = BTreeMap::new();
    m.insert(1, 1);
    assert!(to_string(&m).is_err());
}

#[test]
fn output_reads_back_as_the_same_value() {
    let text = "top = \"t\"\n[a]\nb = [1, 2]\n[a.c]\nd = \"e\"\n[[f]]\ng = { h = 1 }\n[[f]]\n[[f.i]]\nj = 1979-05-27T07:32:00Z\n";
    let v: toml::Table = toml::from_str(text).unwrap();
    let out = to_string(&v).unwrap();
    let back: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(back, v, "{out}");
}
