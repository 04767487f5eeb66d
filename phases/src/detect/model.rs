//! The detector's working vocabulary: module references, orders, detect-time build plans and resolved plan
//! entries (buildpack spec "Detection", "Build Plan (TOML)"; checklist §12, §13).
//!
//! These are the shapes the resolution algorithm works on. They are deliberately independent of how the
//! files are spelled on disk: `order.toml`, `group.toml` and `plan.toml` are read and written through the
//! `cnb-spec` types and converted at the edge.

use std::fmt;

/// Whether a module is a buildpack or an image extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A buildpack (`buildpack.toml`, `bin/detect`, `bin/build`).
    Buildpack,
    /// An image extension (`extension.toml`, optional `bin/detect`, `bin/generate`).
    Extension,
}

impl Kind {
    /// `buildpack` or `extension`, as used in messages and memo keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Buildpack => "buildpack",
            Kind::Extension => "extension",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to a buildpack or extension as it appears in an order or a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    /// Buildpack or extension.
    pub kind: Kind,
    /// The module id.
    pub id: String,
    /// The module version.
    pub version: String,
    /// `optional = true` in the order (extensions are always optional).
    pub optional: bool,
}

impl ModuleRef {
    /// A non-optional buildpack reference.
    pub fn buildpack(id: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            kind: Kind::Buildpack,
            id: id.into(),
            version: version.into(),
            optional: false,
        }
    }

    /// An extension reference (always optional).
    pub fn extension(id: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            kind: Kind::Extension,
            id: id.into(),
            version: version.into(),
            optional: true,
        }
    }

    /// The same reference marked optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The memo key of a detect run: `<kind> <id>@<version>` (checklist DS-07).
    pub fn key(&self) -> String {
        format!("{} {}@{}", self.kind, self.id, self.version)
    }
}

impl fmt::Display for ModuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// One element of an order group: a module, or (only at the head of a group) the nested order of
/// extensions that precedes every buildpack group (checklist DS-01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderElement {
    /// A buildpack (possibly composite) or an extension.
    Module(ModuleRef),
    /// The `[[order-extensions]]` order, tried as an optional prefix.
    Extensions(Order),
}

/// A list of groups, tried in turn; the first that passes wins (checklist DS-02).
pub type Order = Vec<Vec<OrderElement>>;

/// Builds the effective order: every buildpack group prefixed with the extension order, whose members
/// are marked extension + optional (checklist DS-01).
pub fn prepend_extensions(
    buildpacks: Vec<Vec<ModuleRef>>,
    extensions: Vec<Vec<ModuleRef>>,
) -> Order {
    let ext_order: Order = extensions
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|m| {
                    OrderElement::Module(ModuleRef {
                        kind: Kind::Extension,
                        optional: true,
                        ..m
                    })
                })
                .collect()
        })
        .collect();
    buildpacks
        .into_iter()
        .map(|g| {
            let mut out = Vec::with_capacity(g.len() + 1);
            if !ext_order.is_empty() {
                out.push(OrderElement::Extensions(ext_order.clone()));
            }
            out.extend(g.into_iter().map(OrderElement::Module));
            out
        })
        .collect()
}

/// A module that took part in detection, with what group.toml records about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The reference (kind, id, version, optional).
    pub module: ModuleRef,
    /// The module's Buildpack API from its descriptor.
    pub api: String,
    /// The module's homepage from its descriptor.
    pub homepage: Option<String>,
}

/// A `[[requires]]` entry of a detect-time build plan (the cnb-spec type): a name and opaque metadata.
pub use cnb_spec::buildpack::Require;

/// One set of `provides` and `requires`, and the whole detect-time plan (`[[or]]` alternatives
/// included): the cnb-spec types (checklist BPL-01).
pub use cnb_spec::buildpack::{DetectPlan, PlanSections, Provide};

/// The outcome of running (or skipping) one module's `bin/detect` (checklist DS-09).
#[derive(Debug, Clone, PartialEq)]
pub enum DetectStatus {
    /// Exit 0 with a valid plan.
    Pass,
    /// Exit 100.
    Fail,
    /// Another exit code.
    ExitCode(i32),
    /// The lifecycle could not run it or its output was invalid (the message says why).
    Error(String),
}

/// Everything one detect run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectOutcome {
    /// Pass, fail or error.
    pub status: DetectStatus,
    /// The plan (empty unless passed).
    pub plan: DetectPlan,
    /// Combined stdout and stderr, in the order written.
    pub output: Vec<u8>,
}

impl DetectOutcome {
    /// A lifecycle-side error without output.
    pub fn error(msg: impl Into<String>) -> Self {
        Self {
            status: DetectStatus::Error(msg.into()),
            plan: DetectPlan::default(),
            output: Vec::new(),
        }
    }
}

/// A provider of a resolved plan entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Module id.
    pub id: String,
    /// Module version.
    pub version: String,
    /// Whether the provider is an extension.
    pub extension: bool,
}

/// One resolved dependency of the plan (`[[entries]]` of `plan.toml`, checklist BPL-07).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    /// Modules that provide it, in group order.
    pub providers: Vec<Provider>,
    /// Every requirement of it, in group order.
    pub requires: Vec<Require>,
}

impl PlanEntry {
    /// The dependency name (all requires share it).
    pub fn name(&self) -> &str {
        self.requires.first().map(|r| r.name.as_str()).unwrap_or("")
    }
}

/// The buildpack plan handed to one module: the requires of every entry it provides, in plan order
/// (checklist BPL-08).
pub fn plan_for(entries: &[PlanEntry], kind: Kind, id: &str) -> Vec<Require> {
    let want_ext = kind == Kind::Extension;
    entries
        .iter()
        .filter(|e| {
            e.providers
                .iter()
                .any(|p| p.id == id && p.extension == want_ext)
        })
        .flat_map(|e| e.requires.iter().cloned())
        .collect()
}

/// Drops every plan entry that has a requirement named in `met` (checklist BD-08, GN-08).
pub fn filter_met(entries: Vec<PlanEntry>, met: &[String]) -> Vec<PlanEntry> {
    entries
        .into_iter()
        .filter(|e| !e.requires.iter().any(|r| met.contains(&r.name)))
        .collect()
}
