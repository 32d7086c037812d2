//! A YAML node tree built from libyaml events, so that cog.yaml is read the way Cog's Go YAML
//! library (a libyaml port) reads it: same syntax errors with the same line numbers, raw scalar
//! text kept (so `python_version: 3.10` stays "3.10"), and the line of every node for type errors.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_yaml;

/// How a scalar was written: plain scalars are resolved (null, bool, int, float), quoted and
/// block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar {
        value: String,
        style: Style,
        tag: Option<String>,
    },
    Sequence(Vec<Node>),
    /// Keys in document order, duplicates kept (the decoder reports them).
    Mapping(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// 1-based line of the node's first character.
    pub line: usize,
}

/// A syntax error, already in go-yaml's words: `yaml: line N: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// Parses the first document of `input`. `Ok(None)` for an empty stream (or comments only).
pub fn parse(input: &str) -> Result<Option<Node>, SyntaxError> {
    parse_bytes(input.as_bytes())
}

/// [`parse`] on raw bytes: invalid UTF-8 is reported by libyaml's reader, as Cog does.
pub fn parse_bytes(input: &[u8]) -> Result<Option<Node>, SyntaxError> {
    let events = EventReader::new(input).read_all()?;
    let mut builder = TreeBuilder {
        events: events.into_iter(),
        anchors: HashMap::new(),
    };
    builder.document()
}

enum Event {
    DocumentStart,
    DocumentEnd,
    StreamEnd,
    Alias(String),
    Scalar {
        anchor: Option<String>,
        tag: Option<String>,
        value: String,
        style: Style,
    },
    SequenceStart {
        anchor: Option<String>,
    },
    SequenceEnd,
    MappingStart {
        anchor: Option<String>,
    },
    MappingEnd,
    Other,
}

struct EventReader<'a> {
    parser: Box<MaybeUninit<unsafe_yaml::yaml_parser_t>>,
    // The parser reads from this buffer; it must outlive the parser.
    _input: &'a [u8],
}

impl<'a> EventReader<'a> {
    fn new(input: &'a [u8]) -> Self {
        let mut parser = Box::new(MaybeUninit::<unsafe_yaml::yaml_parser_t>::uninit());
        // SAFETY: `parser` points to writable memory for a yaml_parser_t; libyaml initializes
        // it (initialization only fails on allocation failure, which aborts in this port). The
        // input slice outlives the parser because both live in `Self` with lifetime 'a.
        unsafe {
            let ptr = parser.as_mut_ptr();
            let _ = unsafe_yaml::yaml_parser_initialize(ptr);
            unsafe_yaml::yaml_parser_set_encoding(ptr, unsafe_yaml::YAML_UTF8_ENCODING);
            unsafe_yaml::yaml_parser_set_input_string(ptr, input.as_ptr(), input.len() as u64);
        }
        Self {
            parser,
            _input: input,
        }
    }

    fn read_all(mut self) -> Result<Vec<(Event, usize)>, SyntaxError> {
        let mut events = Vec::new();
        loop {
            let (event, line) = self.next()?;
            let end = matches!(event, Event::StreamEnd);
            events.push((event, line));
            if end {
                return Ok(events);
            }
        }
    }

    fn next(&mut self) -> Result<(Event, usize), SyntaxError> {
        let mut raw = MaybeUninit::<unsafe_yaml::yaml_event_t>::uninit();
        // SAFETY: the parser was initialized in `new`; the event is only read after a successful
        // parse and deleted right after conversion.
        unsafe {
            let parser = self.parser.as_mut_ptr();
            let failed_before = (&*parser).error != unsafe_yaml::YAML_NO_ERROR;
            if failed_before || unsafe_yaml::yaml_parser_parse(parser, raw.as_mut_ptr()).fail {
                return Err(syntax_error(parser));
            }
            let event = raw.as_mut_ptr();
            let converted = convert(&*event);
            let line = (*event).start_mark.line as usize + 1;
            unsafe_yaml::yaml_event_delete(event);
            Ok((converted, line))
        }
    }
}

impl Drop for EventReader<'_> {
    fn drop(&mut self) {
        // SAFETY: initialized in `new`, deleted exactly once here.
        unsafe { unsafe_yaml::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

/// A libyaml position as go-yaml v4 prints it: 1-based line, column shown (1-based) only when
/// not at the start of the line.
#[derive(PartialEq, Eq)]
struct Mark {
    index: u64,
    line: u64,
    column: u64,
}

impl Mark {
    fn from_sys(mark: unsafe_yaml::yaml_mark_t) -> Self {
        Mark {
            index: mark.index,
            line: mark.line + 1,
            column: mark.column,
        }
    }
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}", self.line)?;
        if self.column != 0 {
            write!(f, ", column {}", self.column + 1)?;
        }
        Ok(())
    }
}

/// go-yaml v4's `MarkedYAMLError`: `yaml: [<context> at <mark>: ][<mark>: ]<problem>`.
unsafe fn syntax_error(parser: *mut unsafe_yaml::yaml_parser_t) -> SyntaxError {
    // SAFETY: the caller passes an initialized parser in an error state.
    unsafe {
        let state: &unsafe_yaml::yaml_parser_t = &*parser;
        let problem = c_string(state.problem.cast())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "unknown problem parsing YAML content".to_owned());
        // Encoding errors have no position, only a byte offset (go-yaml's `ReaderError`).
        if state.error == unsafe_yaml::YAML_READER_ERROR {
            return SyntaxError(format!("yaml: offset {}: {problem}", state.problem_offset));
        }
        let context = c_string(state.context.cast()).unwrap_or_default();
        let mark = Mark::from_sys(state.problem_mark);
        let context_mark = Mark::from_sys(state.context_mark);
        let mut message = String::from("yaml: ");
        if !context.is_empty() {
            let _ = write!(message, "{context} at {context_mark}: ");
        }
        if context.is_empty() || context_mark != mark {
            let _ = write!(message, "{mark}: ");
        }
        message.push_str(&problem);
        SyntaxError(message)
    }
}

unsafe fn c_string(ptr: *const std::ffi::c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: libyaml strings are NUL-terminated and live as long as the parser/event.
    Some(
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned(),
    )
}

unsafe fn bytes_string(ptr: *const u8) -> Option<String> {
    // SAFETY: forwarded from the caller: a NUL-terminated libyaml string or null.
    unsafe { c_string(ptr.cast()) }
}

unsafe fn convert(event: &unsafe_yaml::yaml_event_t) -> Event {
    // SAFETY: the union field read matches the event type.
    unsafe {
        match event.type_ {
            unsafe_yaml::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
            unsafe_yaml::YAML_DOCUMENT_END_EVENT => Event::DocumentEnd,
            unsafe_yaml::YAML_STREAM_END_EVENT => Event::StreamEnd,
            unsafe_yaml::YAML_ALIAS_EVENT => {
                Event::Alias(bytes_string(event.data.alias.anchor).unwrap_or_default())
            }
            unsafe_yaml::YAML_SCALAR_EVENT => {
                let data = &event.data.scalar;
                let bytes = std::slice::from_raw_parts(data.value, data.length as usize);
                Event::Scalar {
                    anchor: bytes_string(data.anchor),
                    tag: bytes_string(data.tag),
                    value: String::from_utf8_lossy(bytes).into_owned(),
                    style: if data.style == unsafe_yaml::YAML_PLAIN_SCALAR_STYLE {
                        Style::Plain
                    } else {
                        Style::Quoted
                    },
                }
            }
            unsafe_yaml::YAML_SEQUENCE_START_EVENT => Event::SequenceStart {
                anchor: bytes_string(event.data.sequence_start.anchor),
            },
            unsafe_yaml::YAML_SEQUENCE_END_EVENT => Event::SequenceEnd,
            unsafe_yaml::YAML_MAPPING_START_EVENT => Event::MappingStart {
                anchor: bytes_string(event.data.mapping_start.anchor),
            },
            unsafe_yaml::YAML_MAPPING_END_EVENT => Event::MappingEnd,
            _ => Event::Other,
        }
    }
}

struct TreeBuilder {
    events: std::vec::IntoIter<(Event, usize)>,
    anchors: HashMap<String, Node>,
}

impl TreeBuilder {
    fn document(&mut self) -> Result<Option<Node>, SyntaxError> {
        loop {
            match self.events.next() {
                Some((Event::DocumentStart, _)) => break,
                Some((Event::StreamEnd, _)) | None => return Ok(None),
                Some(_) => {}
            }
        }
        match self.events.next() {
            Some((Event::DocumentEnd, _)) | None => Ok(None),
            Some((event, line)) => self.node(event, line).map(Some),
        }
    }

    fn node(&mut self, event: Event, line: usize) -> Result<Node, SyntaxError> {
        let (node, anchor) = match event {
            Event::Alias(name) => {
                let node = self.anchors.get(&name).cloned().ok_or_else(|| {
                    SyntaxError(format!("yaml: unknown anchor '{name}' referenced"))
                })?;
                return Ok(Node { line, ..node });
            }
            Event::Scalar {
                anchor,
                tag,
                value,
                style,
            } => (
                Node {
                    kind: NodeKind::Scalar {
                        value,
                        style,
                        tag: tag.map(|t| short_tag(&t)),
                    },
                    line,
                },
                anchor,
            ),
            Event::SequenceStart { anchor } => {
                let mut items = Vec::new();
                loop {
                    match self.events.next() {
                        Some((Event::SequenceEnd, _)) | None => break,
                        Some((event, line)) => items.push(self.node(event, line)?),
                    }
                }
                (
                    Node {
                        kind: NodeKind::Sequence(items),
                        line,
                    },
                    anchor,
                )
            }
            Event::MappingStart { anchor } => {
                let mut entries = Vec::new();
                loop {
                    let key = match self.events.next() {
                        Some((Event::MappingEnd, _)) | None => break,
                        Some((event, line)) => self.node(event, line)?,
                    };
                    let value = match self.events.next() {
                        Some((event, line)) => self.node(event, line)?,
                        None => break,
                    };
                    entries.push((key, value));
                }
                (
                    Node {
                        kind: NodeKind::Mapping(entries),
                        line,
                    },
                    anchor,
                )
            }
            _ => (
                Node {
                    kind: NodeKind::Scalar {
                        value: String::new(),
                        style: Style::Plain,
                        tag: None,
                    },
                    line,
                },
                None,
            ),
        };
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

/// `tag:yaml.org,2002:str` -> `!!str`, as go-yaml prints tags.
fn short_tag(tag: &str) -> String {
    match tag.strip_prefix("tag:yaml.org,2002:") {
        Some(rest) => format!("!!{rest}"),
        None => tag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_raw_scalar_text() {
        let node = parse("python_version: 3.10\n").unwrap().unwrap();
        let NodeKind::Mapping(entries) = node.kind else {
            panic!("not a mapping")
        };
        assert_eq!(
            entries[0].1.kind,
            NodeKind::Scalar {
                value: "3.10".into(),
                style: Style::Plain,
                tag: None
            }
        );
        assert_eq!(entries[0].1.line, 1);
    }

    #[test]
    fn empty_and_comment_only_documents_are_none() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# just a comment\n").unwrap(), None);
    }

    #[test]
    fn syntax_errors_use_go_yaml_wording() {
        assert_eq!(
            parse("build:\n  gpu: true\n python_version: 3.11\n")
                .unwrap_err()
                .0,
            "yaml: while parsing a block mapping at line 1: line 3, column 2: did not find expected key"
        );
        assert_eq!(
            parse("a: b: c\n").unwrap_err().0,
            "yaml: line 1, column 5: mapping values are not allowed in this context"
        );
        assert_eq!(
            parse("a: \"unterminated\n").unwrap_err().0,
            "yaml: while scanning a quoted scalar at line 1, column 4: line 2: found unexpected end of stream"
        );
    }

    #[test]
    fn invalid_utf8_is_a_reader_error() {
        assert_eq!(
            parse_bytes(b"image: \xff\n").unwrap_err().0,
            "yaml: offset 7: invalid leading UTF-8 octet"
        );
    }

    #[test]
    fn aliases_resolve_to_anchored_nodes() {
        let node = parse("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let NodeKind::Mapping(entries) = node.kind else {
            panic!("not a mapping")
        };
        assert!(matches!(&entries[1].1.kind, NodeKind::Sequence(items) if items.len() == 2));
        assert_eq!(entries[1].1.line, 2);
    }
}
