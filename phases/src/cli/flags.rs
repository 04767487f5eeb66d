//! Go `flag`-package command-line syntax (checklist G-07), reproduced faithfully because platforms
//! (pack, kpack, Tekton, Shipwright) pass single-dash long flags to the phases:
//!
//! - `-name value`, `-name=value`, `--name value`, `--name=value`;
//! - booleans are `-name`, `-name=true`, `-name=false` (never `-name false`: `false` would be positional);
//! - a lone `--` ends the flags and is consumed; a lone `-` is a positional;
//! - parsing stops at the first positional argument; everything after it is positional.
//!
//! The parser knows nothing about phases: it asks a lookup function for each flag's [`FlagKind`] and
//! validates values as Go's `flag.Value.Set` would (so a bad `-uid=x` is a parse error, exit 2).
//! Go value syntaxes live here too: [`parse_go_bool`], [`parse_go_int`], [`parse_go_duration`].

use std::time::Duration;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `-f`, `-f=true`, `-f=false`.
    Bool,
    /// A string value (`-f v`, `-f=v`).
    String,
    /// A repeatable string value; every occurrence appends.
    List,
    /// A Go `int` (`strconv.ParseInt(s, 0, 64)`: decimal, `0x`, `0o`, `0b`, leading-`0` octal).
    Int,
    /// A Go `time.Duration` (`336h`, `1h30m`, `1.5s`).
    Duration,
}

/// A flag value after Go-style validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// A boolean flag.
    Bool(bool),
    /// A string (or one occurrence of a list) flag.
    Str(String),
    /// An integer flag.
    Int(i64),
    /// A duration flag.
    Duration(Duration),
}

/// The result of parsing a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Flags in command-line order, by name (without dashes).
    pub flags: Vec<(String, FlagValue)>,
    /// Positional arguments (everything from the first non-flag argument on).
    pub positionals: Vec<String>,
}

impl Parsed {
    /// Positionals that look like flags (`-x`): Go stops parsing at the first positional, so these were
    /// not interpreted; the phases warn about them.
    pub fn flag_like_positionals(&self) -> impl Iterator<Item = &str> {
        self.positionals
            .iter()
            .map(String::as_str)
            .filter(|a| a.starts_with('-'))
    }
}

/// A command-line error; the binary prints it followed by the usage and exits 2
/// ([`cnb_spec::exit::PARSE_ERROR`]), except [`ParseError::Help`] which exits 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `-h` or `-help` was given and is not a defined flag.
    #[error("help requested")]
    Help,
    /// `---x`, `-=x` and the like.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// A flag this phase does not define at the requested Platform API.
    #[error("flag provided but not defined: -{0}")]
    Undefined(String),
    /// A non-boolean flag at the end of the command line.
    #[error("flag needs an argument: -{0}")]
    NeedsArgument(String),
    /// `-bool=notabool`.
    #[error("invalid boolean value \"{value}\" for -{name}: parse error")]
    InvalidBool {
        /// Flag name.
        name: String,
        /// Offending value.
        value: String,
    },
    /// An int or duration flag with a bad value.
    #[error("invalid value \"{value}\" for flag -{name}: parse error")]
    InvalidValue {
        /// Flag name.
        name: String,
        /// Offending value.
        value: String,
    },
}

/// Parses `args` (without the program name) the way Go's `flag.FlagSet.Parse` does.
///
/// `lookup` returns the kind of a defined flag, or `None` for an unknown one.
pub fn parse(
    args: &[String],
    lookup: impl Fn(&str) -> Option<FlagKind>,
) -> Result<Parsed, ParseError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.len() < 2 || !arg.starts_with('-') {
            break;
        }
        let mut name = &arg[1..];
        if let Some(rest) = name.strip_prefix('-') {
            if rest.is_empty() {
                // "--" terminates the flags and is consumed.
                i += 1;
                break;
            }
            name = rest;
        }
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(ParseError::BadSyntax(arg.clone()));
        }
        i += 1;
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (name, None),
        };
        let Some(kind) = lookup(name) else {
            if name == "help" || name == "h" {
                return Err(ParseError::Help);
            }
            return Err(ParseError::Undefined(name.to_string()));
        };
        let value = if kind == FlagKind::Bool {
            match inline {
                None => FlagValue::Bool(true),
                Some(v) => {
                    FlagValue::Bool(parse_go_bool(v).ok_or_else(|| ParseError::InvalidBool {
                        name: name.to_string(),
                        value: v.to_string(),
                    })?)
                }
            }
        } else {
            let raw = match inline {
                Some(v) => v.to_string(),
                None => {
                    // Go takes the next argument whatever it looks like.
                    let Some(next) = args.get(i) else {
                        return Err(ParseError::NeedsArgument(name.to_string()));
                    };
                    i += 1;
                    next.clone()
                }
            };
            let invalid = || ParseError::InvalidValue {
                name: name.to_string(),
                value: raw.clone(),
            };
            match kind {
                FlagKind::Int => FlagValue::Int(parse_go_int(&raw).ok_or_else(invalid)?),
                FlagKind::Duration => {
                    FlagValue::Duration(parse_go_duration(&raw).ok_or_else(invalid)?)
                }
                _ => FlagValue::Str(raw),
            }
        };
        out.flags.push((name.to_string(), value));
    }
    out.positionals = args[i.min(args.len())..].to_vec();
    Ok(out)
}

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` / `0 f F FALSE false False`; anything else is `None`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` as used by `flag.IntVar`: optional sign, then decimal, `0x`/`0X` hex,
/// `0o`/`0O` or leading-`0` octal, `0b`/`0B` binary; `_` separators only with a base prefix.
pub fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string(), true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    if digits.contains('_') && !prefixed {
        return None;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let mag = u64::from_str_radix(&digits, radix).ok()?;
    if neg {
        0i64.checked_sub_unsigned(mag)
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's `strconv.Atoi` as used for integer env vars (`CNB_USER_ID`): decimal with optional sign.
pub fn parse_go_atoi(s: &str) -> Option<i64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units `ns us µs ms s m h`
/// (`336h`, `1h30m`, `1.5s`, `0`). Negative durations are rejected (a TTL cannot be negative).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_nanos += value * scale;
        rest = after;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total_nanos.round() as u64))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn kinds(name: &str) -> Option<FlagKind> {
        match name {
            "app" | "layers" => Some(FlagKind::String),
            "daemon" | "no-color" => Some(FlagKind::Bool),
            "tag" => Some(FlagKind::List),
            "uid" => Some(FlagKind::Int),
            "kaniko-cache-ttl" => Some(FlagKind::Duration),
            _ => None,
        }
    }

    fn p(args: &[&str]) -> Result<Parsed, ParseError> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v, kinds)
    }

    fn s(v: &str) -> FlagValue {
        FlagValue::Str(v.to_string())
    }

    #[test]
    fn equals_and_space_forms_resolve_alike() {
        // G-07
        let a = p(&["-app=/x"]).unwrap();
        let b = p(&["-app", "/x"]).unwrap();
        let c = p(&["--app", "/x"]).unwrap();
        let d = p(&["--app=/x"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a, d);
        assert_eq!(a.flags, vec![("app".to_string(), s("/x"))]);
    }

    #[test]
    fn value_may_start_with_dash_or_contain_equals() {
        let a = p(&["-app", "-weird", "-layers=a=b"]).unwrap();
        assert_eq!(a.flags[0].1, s("-weird"));
        assert_eq!(a.flags[1].1, s("a=b"));
        let e = p(&["-app="]).unwrap();
        assert_eq!(e.flags[0].1, s(""));
    }

    #[test]
    fn booleans() {
        assert_eq!(p(&["-daemon"]).unwrap().flags[0].1, FlagValue::Bool(true));
        assert_eq!(
            p(&["-daemon=false"]).unwrap().flags[0].1,
            FlagValue::Bool(false)
        );
        assert_eq!(p(&["-daemon=T"]).unwrap().flags[0].1, FlagValue::Bool(true));
        assert_eq!(
            p(&["--daemon=0"]).unwrap().flags[0].1,
            FlagValue::Bool(false)
        );
        // `-daemon false`: false is the first positional.
        let x = p(&["-daemon", "false", "-app", "/x"]).unwrap();
        assert_eq!(x.flags, vec![("daemon".to_string(), FlagValue::Bool(true))]);
        assert_eq!(x.positionals, vec!["false", "-app", "/x"]);
        assert_eq!(
            p(&["-daemon=yes"]),
            Err(ParseError::InvalidBool {
                name: "daemon".into(),
                value: "yes".into()
            })
        );
    }

    #[test]
    fn stops_at_first_positional_and_reports_flag_like_ones() {
        let x = p(&["-app", "/x", "img", "-tag", "t"]).unwrap();
        assert_eq!(x.positionals, vec!["img", "-tag", "t"]);
        assert_eq!(x.flag_like_positionals().collect::<Vec<_>>(), vec!["-tag"]);
        let lone_dash = p(&["-", "-app"]).unwrap();
        assert_eq!(lone_dash.positionals, vec!["-", "-app"]);
        assert!(lone_dash.flags.is_empty());
    }

    #[test]
    fn double_dash_terminates() {
        let x = p(&["-daemon", "--", "-app", "/x"]).unwrap();
        assert_eq!(x.flags.len(), 1);
        assert_eq!(x.positionals, vec!["-app", "/x"]);
    }

    #[test]
    fn repeatable_lists_keep_order() {
        let x = p(&["-tag", "a", "-tag=b", "--tag", "c"]).unwrap();
        let vals: Vec<_> = x.flags.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(vals, vec![s("a"), s("b"), s("c")]);
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["-nope"]), Err(ParseError::Undefined("nope".into())));
        assert_eq!(p(&["-nope=1"]), Err(ParseError::Undefined("nope".into())));
        assert_eq!(p(&["-app"]), Err(ParseError::NeedsArgument("app".into())));
        assert_eq!(p(&["---app"]), Err(ParseError::BadSyntax("---app".into())));
        assert_eq!(p(&["-=x"]), Err(ParseError::BadSyntax("-=x".into())));
        assert_eq!(p(&["-h"]), Err(ParseError::Help));
        assert_eq!(p(&["--help"]), Err(ParseError::Help));
        assert_eq!(
            p(&["-uid", "abc"]),
            Err(ParseError::InvalidValue {
                name: "uid".into(),
                value: "abc".into()
            })
        );
        assert_eq!(
            ParseError::Undefined("x".into()).to_string(),
            "flag provided but not defined: -x"
        );
    }

    #[test]
    fn typed_values() {
        assert_eq!(p(&["-uid=1000"]).unwrap().flags[0].1, FlagValue::Int(1000));
        assert_eq!(p(&["-uid", "0x10"]).unwrap().flags[0].1, FlagValue::Int(16));
        assert_eq!(
            p(&["-kaniko-cache-ttl=1h30m"]).unwrap().flags[0].1,
            FlagValue::Duration(Duration::from_secs(5400))
        );
    }

    #[test]
    fn go_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["", "yes", "tRUE", " true", "2"] {
            assert_eq!(parse_go_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn go_int() {
        assert_eq!(parse_go_int("42"), Some(42));
        assert_eq!(parse_go_int("-7"), Some(-7));
        assert_eq!(parse_go_int("+7"), Some(7));
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("0b101"), Some(5));
        assert_eq!(parse_go_int("0o17"), Some(15));
        assert_eq!(parse_go_int("0x_ff"), Some(255));
        assert_eq!(parse_go_int("1_000"), None);
        assert_eq!(parse_go_int("0"), Some(0));
        assert_eq!(parse_go_int(""), None);
        assert_eq!(parse_go_int("-"), None);
        assert_eq!(parse_go_int("12a"), None);
        assert_eq!(parse_go_int("99999999999999999999"), None);
        assert_eq!(parse_go_atoi("1000"), Some(1000));
        assert_eq!(parse_go_atoi("0x10"), None);
        assert_eq!(parse_go_atoi(""), None);
    }

    #[test]
    fn go_duration() {
        assert_eq!(
            parse_go_duration("336h"),
            Some(Duration::from_secs(336 * 3600))
        );
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_go_duration("2h45m10s"),
            Some(Duration::from_secs(9910))
        );
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "10", "h", "1x", "1..2s", "-1h", "."] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// G-07: `-f=v`, `-f v`, `--f=v` and `--f v` parse to the same flags, for any value (even one
        /// that starts with `-` or contains `=`), and the first positional ends the flags.
        #[test]
        fn forms_are_equivalent(
            pairs in proptest::collection::vec((0usize..2, "[-=a-z/ ]{0,8}"), 0..6),
            positional in "[a-z][a-z0-9/]{0,6}",
            dashes in 1usize..3,
        ) {
            let names = ["app", "layers"];
            let prefix = "-".repeat(dashes);
            let mut joined = Vec::new();
            let mut split = Vec::new();
            for (n, v) in &pairs {
                joined.push(format!("{prefix}{}={v}", names[*n]));
                split.push(format!("{prefix}{}", names[*n]));
                split.push(v.clone());
            }
            joined.push(positional.clone());
            split.push(positional.clone());
            joined.push("-layers=x".to_string());
            split.push("-layers=x".to_string());
            let a = parse(&joined, kinds).unwrap();
            let b = parse(&split, kinds).unwrap();
            proptest::prop_assert_eq!(&a, &b);
            proptest::prop_assert_eq!(a.flags.len(), pairs.len());
            proptest::prop_assert_eq!(a.positionals, vec![positional, "-layers=x".to_string()]);
        }
    }
}
