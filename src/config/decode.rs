//! Decodes the YAML node tree into [`ConfigFile`] with the rules of Cog's Go YAML decoder:
//! any scalar fills a string field with its raw text, YAML 1.1 booleans (`yes`, `on`, ...) fill
//! bool fields, unknown keys are dropped, and type mismatches are collected as
//! `line N: cannot construct !!tag `value` into type` while decoding goes on (go-yaml v4).

use super::file::{
    BuildFile, ConcurrencyFile, ConfigFile, Mount, RunItem, WeightFile, WeightSource,
};
use super::yaml::{Node, NodeKind, Style};
use crate::go::quote as go_quote;

/// Why decoding failed, in the words go-yaml uses after `invalid YAML: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// A plain scalar resolved as YAML 1.2 core (go-yaml's `resolve`).
#[derive(Debug, Clone, PartialEq)]
enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str,
}

impl Resolved {
    fn tag(&self) -> &'static str {
        match self {
            Resolved::Null => "!!null",
            Resolved::Bool(_) => "!!bool",
            Resolved::Int(_) => "!!int",
            Resolved::Float(_) => "!!float",
            Resolved::Str => "!!str",
        }
    }

    /// The Go dynamic type name, as `%T` prints it for a value decoded into `any`.
    fn go_type(&self) -> &'static str {
        match self {
            Resolved::Null => "<nil>",
            Resolved::Bool(_) => "bool",
            Resolved::Int(_) => "int",
            Resolved::Float(_) => "float64",
            Resolved::Str => "string",
        }
    }
}

fn resolve(value: &str, style: Style, tag: Option<&str>) -> Resolved {
    match tag {
        Some("!!str" | "!!binary") => return Resolved::Str,
        Some("!!null") => return Resolved::Null,
        Some("!!bool") => {
            return resolve_plain(value).filter_tag(|r| matches!(r, Resolved::Bool(_)));
        }
        Some("!!int") => return resolve_plain(value).filter_tag(|r| matches!(r, Resolved::Int(_))),
        Some("!!float") => {
            return match resolve_plain(value) {
                Resolved::Int(i) => Resolved::Float(i as f64),
                other => other.filter_tag(|r| matches!(r, Resolved::Float(_))),
            };
        }
        _ => {}
    }
    if style == Style::Quoted {
        return Resolved::Str;
    }
    resolve_plain(value)
}

trait FilterTag {
    fn filter_tag(self, keep: impl Fn(&Resolved) -> bool) -> Resolved;
}

impl FilterTag for Resolved {
    fn filter_tag(self, keep: impl Fn(&Resolved) -> bool) -> Resolved {
        if keep(&self) { self } else { Resolved::Str }
    }
}

fn resolve_plain(value: &str) -> Resolved {
    match value {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let first = value.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Resolved::Str;
    }
    let plain = value.replace('_', "");
    // go-yaml drops `_` before `strconv.ParseInt(plain, 0, 64)`.
    if let Some(int) = crate::go::parse_int(&plain) {
        return Resolved::Int(int);
    }
    if is_yaml_float(&plain)
        && let Ok(float) = plain.parse::<f64>()
    {
        return Resolved::Float(float);
    }
    Resolved::Str
}

/// go-yaml's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

// Cog decodes `run:` mounts through an anonymous struct; type errors name it as Go prints it.
const MOUNT_TYPE: &str = r#"struct { Type string "yaml:\"type\""; ID string "yaml:\"id\""; Target string "yaml:\"target\"" }"#;
const MOUNT_LIST_TYPE: &str = r#"[]struct { Type string "yaml:\"type\""; ID string "yaml:\"id\""; Target string "yaml:\"target\"" }"#;

struct Decoder {
    errors: Vec<String>,
    /// Keys Go's decoder drops (not in its struct), as `build.fast` paths with their line.
    ignored: Vec<(String, usize)>,
}

/// Decodes a whole document. `None` (empty file) gives an empty config.
pub fn decode(root: Option<&Node>) -> Result<ConfigFile, DecodeError> {
    let mut decoder = Decoder {
        errors: Vec::new(),
        ignored: Vec::new(),
    };
    let mut config = match root {
        Some(node) => decoder.config(node),
        None => ConfigFile::default(),
    };
    if decoder.errors.is_empty() {
        config.ignored = decoder.ignored;
        Ok(config)
    } else {
        Err(DecodeError(format!(
            "yaml: construct errors:\n  {}",
            decoder.errors.join("\n  ")
        )))
    }
}

impl Decoder {
    fn type_error(&mut self, node: &Node, into: &str) {
        let message = match &node.kind {
            NodeKind::Scalar { value, style, tag } => {
                let tag = resolve(value, *style, tag.as_deref()).tag();
                let shown = if value.len() > 10 {
                    let cut = (0..=7)
                        .rev()
                        .find(|&i| value.is_char_boundary(i))
                        .unwrap_or(0);
                    format!("{}...", &value[..cut])
                } else {
                    value.clone()
                };
                format!(
                    "line {}: cannot construct {tag} `{shown}` into {into}",
                    node.line
                )
            }
            NodeKind::Sequence(_) => {
                format!("line {}: cannot construct !!seq into {into}", node.line)
            }
            NodeKind::Mapping(_) => {
                format!("line {}: cannot construct !!map into {into}", node.line)
            }
        };
        self.errors.push(message);
    }

    /// go-yaml v4 rejects a mapping that repeats a key (every repeated pair is an error) and
    /// leaves it unconstructed.
    fn duplicate_keys(&mut self, entries: &[(Node, Node)]) -> bool {
        let before = self.errors.len();
        for (i, (first, _)) in entries.iter().enumerate() {
            let NodeKind::Scalar { value: a, .. } = &first.kind else {
                continue;
            };
            for (later, _) in &entries[i + 1..] {
                if matches!(&later.kind, NodeKind::Scalar { value: b, .. } if b == a) {
                    self.errors.push(format!(
                        "line {}: mapping key {} already defined at line {}",
                        later.line,
                        go_quote(a),
                        first.line
                    ));
                }
            }
        }
        self.errors.len() > before
    }

    /// Iterates a mapping's known keys, reporting keys set twice as go-yaml does.
    /// The known fields of a mapping, in order; unknown keys are dropped, as Go's decoder drops
    /// them, and remembered under `path` (`build`, `build.run[]`) so that nothing is dropped
    /// silently.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&'static str],
    ) -> Vec<(&'static str, &'n Node)> {
        let NodeKind::Mapping(entries) = &node.kind else {
            return Vec::new();
        };
        if self.duplicate_keys(entries) {
            return Vec::new();
        }
        let mut seen: Vec<&'static str> = Vec::new();
        let mut fields = Vec::new();
        let mut merged: Vec<&'n (Node, Node)> = Vec::new();
        for entry in entries {
            let (key, value) = entry;
            let NodeKind::Scalar {
                value: name, style, ..
            } = &key.kind
            else {
                continue;
            };
            // `<<: *anchor` merge keys: the merged keys apply unless set explicitly.
            if name == "<<" && *style == Style::Plain {
                match &value.kind {
                    NodeKind::Mapping(more) => merged.extend(more.iter()),
                    NodeKind::Sequence(items) => {
                        for item in items {
                            if let NodeKind::Mapping(more) = &item.kind {
                                merged.extend(more.iter());
                            }
                        }
                    }
                    NodeKind::Scalar { .. } => {}
                }
                continue;
            }
            let Some(&field) = known.iter().find(|k| **k == name.as_str()) else {
                let full = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                self.ignored.push((full, key.line));
                continue;
            };
            seen.push(field);
            fields.push((field, value));
        }
        for (key, value) in merged {
            let NodeKind::Scalar { value: name, .. } = &key.kind else {
                continue;
            };
            if let Some(&field) = known.iter().find(|k| **k == name.as_str())
                && !seen.contains(&field)
            {
                seen.push(field);
                fields.push((field, value));
            }
        }
        fields
    }

    /// A mapping for a struct: `None` for null, a type error for anything else.
    fn struct_node<'n>(&mut self, node: &'n Node, type_name: &str) -> Option<&'n Node> {
        match &node.kind {
            NodeKind::Mapping(_) => Some(node),
            NodeKind::Scalar { value, style, tag }
                if resolve(value, *style, tag.as_deref()) == Resolved::Null =>
            {
                None
            }
            _ => {
                self.type_error(node, type_name);
                None
            }
        }
    }

    fn config(&mut self, node: &Node) -> ConfigFile {
        let mut config = ConfigFile::default();
        let Some(node) = self.struct_node(node, "config.configFile") else {
            return config;
        };
        let known = [
            "build",
            "image",
            "model",
            "run",
            "predict",
            "train",
            "concurrency",
            "environment",
            "weights",
        ];
        for (field, value) in self.fields(node, "", &known) {
            match field {
                "build" => config.build = self.build(value),
                "image" => config.image = self.opt_string(value),
                "model" => config.model = self.opt_string(value),
                "run" => config.run = self.opt_string(value),
                "predict" => config.predict = self.opt_string(value),
                "train" => config.train = self.opt_string(value),
                "concurrency" => config.concurrency = self.concurrency(value),
                "environment" => config.environment = self.string_list(value),
                "weights" => config.weights = self.weights(value),
                _ => {}
            }
        }
        config
    }

    fn build(&mut self, node: &Node) -> Option<BuildFile> {
        let node = self.struct_node(node, "config.buildFile")?;
        let mut build = BuildFile::default();
        let known = [
            "gpu",
            "python_version",
            "python_requirements",
            "run",
            "system_packages",
            "cuda",
            "cudnn",
            "sdk_version",
            "python_packages",
            "pre_install",
        ];
        for (field, value) in self.fields(node, "build", &known) {
            match field {
                "gpu" => build.gpu = self.opt_bool(value),
                "python_version" => build.python_version = self.opt_string(value),
                "python_requirements" => build.python_requirements = self.opt_string(value),
                "run" => build.run = self.run_items(value),
                "system_packages" => build.system_packages = self.string_list(value),
                "cuda" => build.cuda = self.opt_string(value),
                "cudnn" => build.cudnn = self.opt_string(value),
                "sdk_version" => build.sdk_version = self.opt_string(value),
                "python_packages" => build.python_packages = self.string_list(value),
                "pre_install" => build.pre_install = self.string_list(value),
                _ => {}
            }
        }
        Some(build)
    }

    fn concurrency(&mut self, node: &Node) -> Option<ConcurrencyFile> {
        let node = self.struct_node(node, "config.concurrencyFile")?;
        let mut concurrency = ConcurrencyFile::default();
        for (field, value) in self.fields(node, "concurrency", &["max"]) {
            if field == "max" {
                concurrency.max = self.opt_int(value);
            }
        }
        Some(concurrency)
    }

    /// A `*string` field: null leaves it unset, any other scalar gives its raw text.
    fn opt_string(&mut self, node: &Node) -> Option<String> {
        if let NodeKind::Scalar { value, style, tag } = &node.kind {
            return (resolve(value, *style, tag.as_deref()) != Resolved::Null)
                .then(|| value.clone());
        }
        self.type_error(node, "string");
        None
    }

    /// A `string` inside a list: null becomes "".
    fn string(&mut self, node: &Node) -> String {
        self.opt_string(node).unwrap_or_default()
    }

    fn opt_bool(&mut self, node: &Node) -> Option<bool> {
        if let NodeKind::Scalar { value, style, tag } = &node.kind {
            match resolve(value, *style, tag.as_deref()) {
                Resolved::Null => return None,
                Resolved::Bool(b) => return Some(b),
                // YAML 1.1 booleans, accepted only when decoding into a bool.
                Resolved::Str => match value.as_str() {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => return Some(true),
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => return Some(false),
                    _ => {}
                },
                _ => {}
            }
        }
        self.type_error(node, "bool");
        None
    }

    fn opt_int(&mut self, node: &Node) -> Option<i64> {
        if let NodeKind::Scalar { value, style, tag } = &node.kind {
            match resolve(value, *style, tag.as_deref()) {
                Resolved::Null => return None,
                Resolved::Int(i) => return Some(i),
                // go-yaml truncates a float that fits in an int.
                Resolved::Float(f) if f.is_finite() && f.abs() < 9.2e18 => return Some(f as i64),
                _ => {}
            }
        }
        self.type_error(node, "int");
        None
    }

    fn string_list(&mut self, node: &Node) -> Option<Vec<String>> {
        match &node.kind {
            NodeKind::Sequence(items) => Some(items.iter().map(|item| self.string(item)).collect()),
            NodeKind::Scalar { value, style, tag }
                if resolve(value, *style, tag.as_deref()) == Resolved::Null =>
            {
                None
            }
            _ => {
                self.type_error(node, "[]string");
                None
            }
        }
    }

    fn run_items(&mut self, node: &Node) -> Option<Vec<RunItem>> {
        match &node.kind {
            NodeKind::Sequence(items) => {
                Some(items.iter().map(|item| self.run_item(item)).collect())
            }
            NodeKind::Scalar { value, style, tag }
                if resolve(value, *style, tag.as_deref()) == Resolved::Null =>
            {
                None
            }
            _ => {
                self.type_error(node, "[]config.runItemFile");
                None
            }
        }
    }

    /// Cog's custom unmarshaler: a string or a mapping; anything else is an error for this
    /// item, reported with its line, and decoding goes on.
    fn run_item(&mut self, node: &Node) -> RunItem {
        match &node.kind {
            NodeKind::Scalar { value, style, tag } => {
                match resolve(value, *style, tag.as_deref()) {
                    Resolved::Str => RunItem {
                        command: value.clone(),
                        mounts: Vec::new(),
                    },
                    other => {
                        self.errors.push(format!(
                            "line {}: unexpected type {} for runItemFile",
                            node.line,
                            other.go_type()
                        ));
                        RunItem::default()
                    }
                }
            }
            NodeKind::Sequence(_) => {
                self.errors.push(format!(
                    "line {}: unexpected type []interface {{}} for runItemFile",
                    node.line
                ));
                RunItem::default()
            }
            NodeKind::Mapping(_) => {
                let mut item = RunItem::default();
                for (field, value) in self.fields(node, "build.run[]", &["command", "mounts"]) {
                    match field {
                        "command" => item.command = self.string(value),
                        "mounts" => item.mounts = self.mounts(value),
                        _ => {}
                    }
                }
                item
            }
        }
    }

    fn mounts(&mut self, node: &Node) -> Vec<Mount> {
        let NodeKind::Sequence(items) = &node.kind else {
            if !matches!(&node.kind, NodeKind::Scalar { value, style, tag } if resolve(value, *style, tag.as_deref()) == Resolved::Null)
            {
                self.type_error(node, MOUNT_LIST_TYPE);
            }
            return Vec::new();
        };
        let mut mounts = Vec::new();
        for item in items {
            let mut mount = Mount::default();
            if let Some(item) = self.struct_node(item, MOUNT_TYPE) {
                for (field, value) in
                    self.fields(item, "build.run[].mounts[]", &["type", "id", "target"])
                {
                    let text = self.string(value);
                    match field {
                        "type" => mount.kind = text,
                        "id" => mount.id = text,
                        "target" => mount.target = text,
                        _ => {}
                    }
                }
            }
            mounts.push(mount);
        }
        mounts
    }

    fn weights(&mut self, node: &Node) -> Option<Vec<WeightFile>> {
        match &node.kind {
            NodeKind::Sequence(items) => Some(items.iter().map(|item| self.weight(item)).collect()),
            NodeKind::Scalar { value, style, tag }
                if resolve(value, *style, tag.as_deref()) == Resolved::Null =>
            {
                None
            }
            _ => {
                self.type_error(node, "[]config.weightFile");
                None
            }
        }
    }

    fn weight(&mut self, node: &Node) -> WeightFile {
        let mut weight = WeightFile::default();
        let Some(node) = self.struct_node(node, "config.weightFile") else {
            return weight;
        };
        for (field, value) in self.fields(node, "weights[]", &["name", "target", "source"]) {
            match field {
                "name" => weight.name = self.string(value),
                "target" => weight.target = self.string(value),
                "source" => {
                    let (sources, is_list) = self.weight_sources(value);
                    weight.source = sources;
                    weight.source_is_list = is_list;
                }
                _ => {}
            }
        }
        weight
    }

    /// Cog's `WeightSourceList`: a list of source objects, else a single one, else an error
    /// for this field.
    fn weight_sources(&mut self, node: &Node) -> (Vec<WeightSource>, bool) {
        if let NodeKind::Sequence(items) = &node.kind {
            let mut inner = Decoder {
                errors: Vec::new(),
                ignored: Vec::new(),
            };
            let sources: Vec<WeightSource> =
                items.iter().map(|item| inner.weight_source(item)).collect();
            if inner.errors.is_empty() {
                self.ignored.extend(inner.ignored);
                return (sources, true);
            }
        }
        if let NodeKind::Scalar { value, style, tag } = &node.kind
            && resolve(value, *style, tag.as_deref()) == Resolved::Null
        {
            return (Vec::new(), false);
        }
        let mut inner = Decoder {
            errors: Vec::new(),
            ignored: Vec::new(),
        };
        let source = inner.weight_source(node);
        if inner.errors.is_empty() {
            self.ignored.extend(inner.ignored);
            return (vec![source], false);
        }
        self.errors.push(format!(
            "line {}: source must be an object or array of objects: yaml: construct errors:\n  {}",
            node.line,
            inner.errors.join("\n  ")
        ));
        (Vec::new(), false)
    }

    fn weight_source(&mut self, node: &Node) -> WeightSource {
        let mut source = WeightSource::default();
        let Some(node) = self.struct_node(node, "config.WeightSourceConfig") else {
            return source;
        };
        for (field, value) in self.fields(node, "weights[].source", &["uri", "include", "exclude"])
        {
            match field {
                "uri" => source.uri = self.string(value),
                "include" => source.include = self.string_list(value).unwrap_or_default(),
                "exclude" => source.exclude = self.string_list(value).unwrap_or_default(),
                _ => {}
            }
        }
        source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml;

    fn decode_str(text: &str) -> Result<ConfigFile, DecodeError> {
        let node = yaml::parse(text).expect("valid YAML");
        decode(node.as_ref())
    }

    #[test]
    fn numbers_fill_string_fields_with_their_raw_text() {
        let config =
            decode_str("build:\n  python_version: 3.10\n  cuda: 11.8\nimage: 123\n").unwrap();
        let build = config.build.unwrap();
        assert_eq!(build.python_version.as_deref(), Some("3.10"));
        assert_eq!(build.cuda.as_deref(), Some("11.8"));
        assert_eq!(config.image.as_deref(), Some("123"));
    }

    #[test]
    fn yaml_1_1_booleans_fill_bool_fields() {
        for (text, want) in [
            ("yes", true),
            ("On", true),
            ("n", false),
            ("'off'", false),
            ("true", true),
        ] {
            let config = decode_str(&format!("build:\n  gpu: {text}\n")).unwrap();
            assert_eq!(config.build.unwrap().gpu, Some(want), "{text}");
        }
    }

    #[test]
    fn type_errors_are_collected_with_lines() {
        let err = decode_str(
            "build:\n  gpu: \"true\"\n  system_packages: curl\nconcurrency:\n  max: lots\n",
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            "yaml: construct errors:\n  line 2: cannot construct !!str `true` into bool\n  line 3: cannot construct !!str `curl` into []string\n  line 5: cannot construct !!str `lots` into int"
        );
    }

    #[test]
    fn long_values_are_shortened_in_type_errors() {
        let err = decode_str("build: a-very-long-value\n").unwrap_err();
        assert_eq!(
            err.0,
            "yaml: construct errors:\n  line 1: cannot construct !!str `a-very-...` into config.buildFile"
        );
    }

    #[test]
    fn unknown_keys_and_nulls_are_ignored() {
        let config =
            decode_str("build:\n  fast: false\n  python_version:\ntests: []\nimage: ~\n").unwrap();
        assert_eq!(config.build, Some(BuildFile::default()));
        assert_eq!(config.image, None);
    }

    #[test]
    fn merge_keys_fill_unset_fields() {
        let config = decode_str(
            "x-base: &base\n  python_version: '3.11'\n  gpu: true\nbuild:\n  <<: *base\n  gpu: false\n",
        )
        .unwrap();
        let build = config.build.unwrap();
        assert_eq!(build.python_version.as_deref(), Some("3.11"));
        assert_eq!(build.gpu, Some(false));
    }

    #[test]
    fn duplicate_fields_are_errors() {
        let err = decode_str("image: a\nimage: b\n").unwrap_err();
        assert_eq!(
            err.0,
            "yaml: construct errors:\n  line 2: mapping key \"image\" already defined at line 1"
        );
        // Every repeated pair, and the mapping is left unconstructed.
        let err = decode_str("build:\n  gpu: yes\n  cuda: a\n  cuda: b\n  cuda: c\n").unwrap_err();
        assert_eq!(
            err.0,
            "yaml: construct errors:\n  line 4: mapping key \"cuda\" already defined at line 3\n  line 5: mapping key \"cuda\" already defined at line 3\n  line 5: mapping key \"cuda\" already defined at line 4"
        );
    }

    #[test]
    fn run_items_take_strings_and_mappings() {
        let config = decode_str(
            "build:\n  run:\n    - echo hi\n    - command: pip install x\n      mounts:\n        - type: secret\n          id: tok\n          target: /run/tok\n",
        )
        .unwrap();
        let run = config.build.unwrap().run.unwrap();
        assert_eq!(run[0].command, "echo hi");
        assert_eq!(
            run[1].mounts[0],
            Mount {
                kind: "secret".into(),
                id: "tok".into(),
                target: "/run/tok".into()
            }
        );
    }

    #[test]
    fn run_item_of_another_type_is_an_error() {
        assert_eq!(
            decode_str("build:\n  run:\n    - 42\n").unwrap_err().0,
            "yaml: construct errors:\n  line 3: unexpected type int for runItemFile"
        );
    }

    #[test]
    fn mount_type_errors_name_the_go_type() {
        assert_eq!(
            decode_str("build:\n  run:\n    - command: x\n      mounts: nope\n")
                .unwrap_err()
                .0,
            format!(
                "yaml: construct errors:\n  line 4: cannot construct !!str `nope` into {MOUNT_LIST_TYPE}"
            )
        );
        assert!(MOUNT_TYPE.starts_with("struct { Type string \"yaml:\\\"type\\\"\";"));
    }

    #[test]
    fn weight_source_is_an_object_or_a_list() {
        let config = decode_str(
            "weights:\n  - name: a\n    target: /w\n    source: {uri: hf://x/y}\n  - name: b\n    target: /v\n    source:\n      - uri: hf://x/z\n        include: ['*.bin']\n",
        )
        .unwrap();
        let weights = config.weights.unwrap();
        assert!(!weights[0].source_is_list);
        assert_eq!(weights[1].source[0].include, vec!["*.bin".to_owned()]);
        assert!(weights[1].source_is_list);
    }

    #[test]
    fn resolves_plain_scalars_like_go_yaml() {
        assert_eq!(resolve_plain("0x1F"), Resolved::Int(31));
        assert_eq!(resolve_plain("1_000"), Resolved::Int(1000));
        assert_eq!(resolve_plain("3.10"), Resolved::Float(3.1));
        assert_eq!(resolve_plain("1e3"), Resolved::Float(1000.0));
        assert_eq!(resolve_plain("3.10.1"), Resolved::Str);
        assert_eq!(resolve_plain("~"), Resolved::Null);
    }
}
