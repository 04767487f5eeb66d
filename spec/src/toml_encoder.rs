//! The TOML encoder of every file the lifecycle writes, byte-compatible with the reference's
//! (github.com/BurntSushi/toml v1.3 `encode.go`, which the reference lifecycle's `encoding.WriteTOML`
//! uses): issue 13's byte parity for `analyzed.toml`, `group.toml`, `plan.toml`, `metadata.toml`,
//! `report.toml`, `<layer>.toml` and the rest.
//!
//! The rules, as the Go encoder applies them to Go values (a serde struct stands for a Go struct, a
//! serde map for a Go map):
//! - struct fields in declaration order, map keys sorted (bytewise, Go's `sort.Strings`); in both, the
//!   keys whose value is not a table come first, then tables and arrays of tables;
//! - `None` (Go's nil) is skipped; a struct that is present is always written, even when empty;
//! - keys and table headers are indented by two spaces per nesting level (`Indent * (len(key)-1)`);
//! - a blank line before every top-level `[table]` and before every `[[array-of-tables]]` element at any
//!   depth (nothing before the first line of the file); nested `[a.b]` headers have none;
//! - an array whose elements are all tables is an array of tables; an empty array is `key = []`;
//!   tables inside inline arrays are inline (`{k = v, k2 = v2}`);
//! - strings double-quoted with the `dblQuotedReplacer` escapes (`\"`, `\\`, `\b \t \n \f \r`, other
//!   control characters and DEL as `\u00XX`, everything else verbatim); keys bare when made of
//!   `A-Za-z0-9_-`, else quoted the same way (`""` for the empty key);
//! - floats in the shortest `'f'` form with `.0` added when there is no dot, `nan`, `+inf`, `-inf`;
//! - datetimes as Go's `time.RFC3339Nano` (`Z` for a zero offset, trailing fractional zeros dropped),
//!   local ones without offset.

use std::fmt::{self, Write as _};

use serde::ser::{self, Serialize};

/// The serde struct name under which `toml::value::Datetime` serializes itself.
const DATETIME_NAME: &str = "$__toml_private_Datetime";

/// Encoding failed (a value TOML cannot hold, e.g. a top-level non-table or an array with a nil element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

impl ser::Error for EncodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EncodeError(msg.to_string())
    }
}

/// Encodes `value` as the reference's TOML encoder would encode the equivalent Go value.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, EncodeError> {
    let node = value.serialize(NodeSerializer)?;
    let Node::Table(table) = node else {
        return Err(EncodeError(
            "toml: top-level values must be Go maps or structs".into(),
        ));
    };
    let mut enc = Encoder::default();
    enc.table_body(&[], &table)?;
    Ok(enc.out)
}

// ---- Value tree ------------------------------------------------------------------------------------

/// A serialized value: what the Go encoder sees through reflection.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// Go nil (serde `None`, unit): skipped where it is a field or map value.
    Nil,
    Str(String),
    /// An integer, kept as text (Go writes `int64` and `uint64` alike in decimal).
    Int(String),
    Float(f64),
    Bool(bool),
    /// A datetime, already in Go's text form.
    Datetime(String),
    Array(Vec<Node>),
    Table(Table),
}

/// A Go struct (`sorted == false`: fields in declaration order) or map (`sorted == true`).
#[derive(Debug, Clone, PartialEq, Default)]
struct Table {
    entries: Vec<(String, Node)>,
    sorted: bool,
}

impl Node {
    /// Go's `typeIsTable(tomlTypeOfGo(v))`: a table, or a non-empty array all of whose elements are
    /// tables (`isTableArray`; a mixed array is an inline array).
    fn is_table_like(&self) -> bool {
        match self {
            Node::Table(_) => true,
            Node::Array(items) => {
                !items.is_empty() && items.iter().all(|i| matches!(i, Node::Table(_)))
            }
            _ => false,
        }
    }
}

impl Table {
    /// The non-nil entries in output order: direct values first then tables, each group sorted for maps.
    fn ordered(&self) -> Vec<&(String, Node)> {
        let (mut direct, mut sub): (Vec<_>, Vec<_>) = self
            .entries
            .iter()
            .filter(|(_, v)| *v != Node::Nil)
            .partition(|(_, v)| !v.is_table_like());
        if self.sorted {
            direct.sort_by(|a, b| a.0.cmp(&b.0));
            sub.sort_by(|a, b| a.0.cmp(&b.0));
        }
        direct.extend(sub);
        direct
    }
}

// ---- Writer ----------------------------------------------------------------------------------------

#[derive(Default)]
struct Encoder {
    out: String,
}

const INDENT: &str = "  ";

impl Encoder {
    /// Go's `newline()`: a line break, unless nothing has been written yet.
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn indent(&mut self, depth: usize) {
        for _ in 1..depth {
            self.out.push_str(INDENT);
        }
    }

    /// `eStruct`/`eMap` of a non-inline table whose header (if any) is written.
    fn table_body(&mut self, key: &[&str], table: &Table) -> Result<(), EncodeError> {
        for (k, v) in table.ordered() {
            let mut path = key.to_vec();
            path.push(k);
            self.encode(&path, v)?;
        }
        Ok(())
    }

    /// Go's `encode(key, rv)` for a non-nil value under `key`.
    fn encode(&mut self, key: &[&str], v: &Node) -> Result<(), EncodeError> {
        match v {
            Node::Nil => Ok(()),
            Node::Table(t) => {
                if key.len() == 1 {
                    self.newline();
                }
                self.indent(key.len());
                self.out.push('[');
                self.dotted(key);
                self.out.push(']');
                self.newline();
                self.table_body(key, t)
            }
            Node::Array(items) if v.is_table_like() => {
                for item in items {
                    match item {
                        Node::Nil => continue,
                        Node::Table(t) => {
                            self.newline();
                            self.indent(key.len());
                            self.out.push_str("[[");
                            self.dotted(key);
                            self.out.push_str("]]");
                            self.newline();
                            self.table_body(key, t)?;
                        }
                        _ => {
                            return Err(EncodeError(format!(
                            "toml: cannot encode an array mixing tables and values under key '{}'",
                            key.join(".")
                        )))
                        }
                    }
                }
                Ok(())
            }
            _ => {
                self.indent(key.len());
                let last = key.last().copied().unwrap_or_default();
                self.out.push_str(&quote_key(last));
                self.out.push_str(" = ");
                self.element(v)?;
                self.newline();
                Ok(())
            }
        }
    }

    fn dotted(&mut self, key: &[&str]) {
        for (i, k) in key.iter().enumerate() {
            if i > 0 {
                self.out.push('.');
            }
            self.out.push_str(&quote_key(k));
        }
    }

    /// Go's `eElement`: a value on the right of `=` or inside an inline array/table.
    fn element(&mut self, v: &Node) -> Result<(), EncodeError> {
        match v {
            Node::Nil => {
                return Err(EncodeError(
                    "toml: cannot encode array with nil element".into(),
                ))
            }
            Node::Str(s) => quote_into(&mut self.out, s),
            Node::Int(i) => self.out.push_str(i),
            Node::Float(f) => self.out.push_str(&go_float(*f)),
            Node::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Node::Datetime(d) => self.out.push_str(d),
            Node::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.element(item)?;
                }
                self.out.push(']');
            }
            Node::Table(t) => {
                self.out.push('{');
                let all = t.ordered();
                for (i, (k, v)) in all.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.out.push_str(&quote_key(k));
                    self.out.push_str(" = ");
                    self.element(v)?;
                }
                self.out.push('}');
            }
        }
        Ok(())
    }
}

/// Go's `Key.maybeQuoted`: bare when every character is `A-Za-z0-9_-`.
fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return k.to_string();
    }
    let mut s = String::with_capacity(k.len() + 2);
    quote_into(&mut s, k);
    s
}

/// `"` + `dblQuotedReplacer.Replace(s)` + `"`.
fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `floatAddDecimal(strconv.FormatFloat(f, 'f', -1, 64))`, `nan`, `±inf`.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f.is_sign_negative() { "-inf" } else { "+inf" }.into();
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        s + ".0"
    }
}

/// A TOML datetime in Go's `time.RFC3339Nano` form (local forms without offset), as BurntSushi writes
/// the `time.Time` it decoded.
fn go_datetime(text: &str) -> Result<String, EncodeError> {
    let dt: toml::value::Datetime = text
        .parse()
        .map_err(|e| EncodeError(format!("toml: invalid datetime {text:?}: {e}")))?;
    let mut out = String::new();
    if let Some(d) = dt.date {
        let _ = write!(out, "{:04}-{:02}-{:02}", d.year, d.month, d.day);
    }
    if let Some(t) = dt.time {
        if dt.date.is_some() {
            out.push('T');
        }
        let _ = write!(
            out,
            "{:02}:{:02}:{:02}",
            t.hour,
            t.minute,
            t.second.unwrap_or(0)
        );
        let nanos = t.nanosecond.unwrap_or(0);
        if nanos > 0 {
            let frac = format!("{nanos:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
    }
    match dt.offset {
        None => {}
        Some(toml::value::Offset::Z) | Some(toml::value::Offset::Custom { minutes: 0 }) => {
            out.push('Z')
        }
        Some(toml::value::Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", m / 60, m % 60);
        }
    }
    Ok(out)
}

// ---- serde Serializer into the value tree ------------------------------------------------------------

struct NodeSerializer;

fn int(v: impl fmt::Display) -> Result<Node, EncodeError> {
    Ok(Node::Int(v.to_string()))
}

impl ser::Serializer for NodeSerializer {
    type Ok = Node;
    type Error = EncodeError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantBuilder<SeqBuilder>;
    type SerializeMap = MapBuilder;
    type SerializeStruct = StructBuilder;
    type SerializeStructVariant = VariantBuilder<StructBuilder>;

    fn serialize_bool(self, v: bool) -> Result<Node, EncodeError> {
        Ok(Node::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_i16(self, v: i16) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_i32(self, v: i32) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_i64(self, v: i64) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_u8(self, v: u8) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_u16(self, v: u16) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_u32(self, v: u32) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_u64(self, v: u64) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_u128(self, v: u128) -> Result<Node, EncodeError> {
        int(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Node, EncodeError> {
        // Go formats a float32 with 32-bit precision: the shortest f32 text, not the f64 widening's.
        if v.is_finite() {
            let s = format!("{v}");
            return Ok(Node::Float(s.parse().unwrap_or(f64::from(v))));
        }
        Ok(Node::Float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Node, EncodeError> {
        Ok(Node::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Node, EncodeError> {
        Ok(Node::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Node, EncodeError> {
        Ok(Node::Str(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Node, EncodeError> {
        Ok(Node::Array(
            v.iter().map(|b| Node::Int(b.to_string())).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Node, EncodeError> {
        Ok(Node::Nil)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Node, EncodeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Node, EncodeError> {
        Ok(Node::Nil)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Node, EncodeError> {
        Ok(Node::Nil)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Node, EncodeError> {
        Ok(Node::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Node, EncodeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Node, EncodeError> {
        let v = value.serialize(NodeSerializer)?;
        Ok(Node::Table(Table {
            entries: vec![(variant.to_string(), v)],
            sorted: false,
        }))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, EncodeError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, EncodeError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<SeqBuilder>, EncodeError> {
        Ok(VariantBuilder {
            variant,
            inner: SeqBuilder(Vec::with_capacity(len)),
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, EncodeError> {
        Ok(MapBuilder {
            table: Table {
                entries: Vec::new(),
                sorted: true,
            },
            key: None,
        })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<StructBuilder, EncodeError> {
        Ok(StructBuilder {
            datetime: name == DATETIME_NAME,
            table: Table {
                entries: Vec::with_capacity(len),
                sorted: false,
            },
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<StructBuilder>, EncodeError> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_struct(name, len)?,
        })
    }
}

/// Builds an array.
struct SeqBuilder(Vec<Node>);

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.0.push(value.serialize(NodeSerializer)?);
        Ok(())
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.push(value)
    }
    fn end(self) -> Result<Node, EncodeError> {
        Ok(Node::Array(self.0))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.push(value)
    }
    fn end(self) -> Result<Node, EncodeError> {
        Ok(Node::Array(self.0))
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.push(value)
    }
    fn end(self) -> Result<Node, EncodeError> {
        Ok(Node::Array(self.0))
    }
}

/// Builds a map (a Go map: keys sorted on output). Keys must serialize as strings.
struct MapBuilder {
    table: Table,
    key: Option<String>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), EncodeError> {
        match key.serialize(NodeSerializer)? {
            Node::Str(s) => {
                self.key = Some(s);
                Ok(())
            }
            _ => Err(EncodeError(
                "toml: cannot encode a map with non-string key type".into(),
            )),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| EncodeError("toml: map value without a key".into()))?;
        let v = value.serialize(NodeSerializer)?;
        self.table.entries.push((key, v));
        Ok(())
    }
    fn end(self) -> Result<Node, EncodeError> {
        Ok(Node::Table(self.table))
    }
}

/// Builds a struct (a Go struct: fields in declaration order), or a datetime.
struct StructBuilder {
    datetime: bool,
    table: Table,
}

impl ser::SerializeStruct for StructBuilder {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        let v = value.serialize(NodeSerializer)?;
        self.table.entries.push((key.to_string(), v));
        Ok(())
    }
    fn end(self) -> Result<Node, EncodeError> {
        if self.datetime {
            return match self.table.entries.into_iter().next() {
                Some((_, Node::Str(s))) => Ok(Node::Datetime(go_datetime(&s)?)),
                _ => Err(EncodeError("toml: invalid datetime value".into())),
            };
        }
        Ok(Node::Table(self.table))
    }
}

/// Builds `{variant = inner}` for tuple and struct enum variants.
struct VariantBuilder<B> {
    variant: &'static str,
    inner: B,
}

impl<B> VariantBuilder<B> {
    fn wrap(variant: &str, v: Node) -> Node {
        Node::Table(Table {
            entries: vec![(variant.to_string(), v)],
            sorted: false,
        })
    }
}

impl ser::SerializeTupleVariant for VariantBuilder<SeqBuilder> {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), EncodeError> {
        self.inner.push(value)
    }
    fn end(self) -> Result<Node, EncodeError> {
        Ok(Self::wrap(self.variant, Node::Array(self.inner.0)))
    }
}

impl ser::SerializeStructVariant for VariantBuilder<StructBuilder> {
    type Ok = Node;
    type Error = EncodeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), EncodeError> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<Node, EncodeError> {
        let variant = self.variant;
        let inner = ser::SerializeStruct::end(self.inner)?;
        Ok(Self::wrap(variant, inner))
    }
}

#[cfg(test)]
#[path = "toml_encoder_tests.rs"]
mod tests;
