//! Type annotations as data, parsed from their source text.
//!
//! Parsing the text (rather than tree-sitter's type nodes) gives one path for every spelling:
//! `list[str]`, `typing.List[str]`, `str | None`, quoted forward references (`"Output"`),
//! annotations spread over lines, and grammar versions that shape type nodes differently.

use crate::schema::model::Value;

/// Deepest nesting we follow; deeper input is rejected instead of risking the stack.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub enum Ann {
    /// A (possibly dotted) name: `str`, `cog.Path`, `None`.
    Simple(String),
    /// `Outer[args]`.
    Generic(String, Vec<Ann>),
    /// `A | B | ...` (flattened).
    Union(Vec<Ann>),
    /// `Literal[...]` with its values.
    Literal(String, Vec<Value>),
    /// Metadata we do not interpret (`Annotated[T, Field(...)]`).
    Opaque(String),
}

impl Ann {
    /// Source-like spelling, for messages.
    #[cfg(test)]
    pub fn display(&self) -> String {
        match self {
            Ann::Simple(n) | Ann::Opaque(n) => n.clone(),
            Ann::Generic(n, args) => {
                format!(
                    "{n}[{}]",
                    args.iter().map(Ann::display).collect::<Vec<_>>().join(", ")
                )
            }
            Ann::Union(members) => members
                .iter()
                .map(Ann::display)
                .collect::<Vec<_>>()
                .join(" | "),
            Ann::Literal(n, values) => format!(
                "{n}[{}]",
                values
                    .iter()
                    .map(|v| v.to_json().to_compact())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Ann::Simple(n) if n == "None")
    }
}

/// The last segment of a dotted name (`typing.List` -> `List`).
pub fn last_segment(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(String),
    Punct(char),
    Ellipsis,
}

/// Parses annotation text. `None` when the text is not a type expression we understand.
pub fn parse(text: &str) -> Option<Ann> {
    parse_depth(text, 0)
}

fn parse_depth(text: &str, depth: usize) -> Option<Ann> {
    if depth > MAX_DEPTH {
        return None;
    }
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth,
    };
    let ann = p.union()?;
    (p.pos == p.toks.len()).then_some(ann)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn union(&mut self) -> Option<Ann> {
        self.enter()?;
        let mut members = Vec::new();
        loop {
            match self.primary()? {
                Ann::Union(inner) => members.extend(inner),
                other => members.push(other),
            }
            if !self.eat('|') {
                break;
            }
        }
        self.depth -= 1;
        Some(if members.len() == 1 {
            members.pop()?
        } else {
            Ann::Union(members)
        })
    }

    fn primary(&mut self) -> Option<Ann> {
        match self.peek()?.clone() {
            Tok::Name(name) => {
                self.pos += 1;
                if !self.eat('[') {
                    return Some(Ann::Simple(name));
                }
                let last = last_segment(&name);
                let ann = if last == "Literal" {
                    Ann::Literal(name.clone(), self.literal_args()?)
                } else if last == "Annotated" {
                    Ann::Generic(name.clone(), self.annotated_args()?)
                } else {
                    let args = self.type_args()?;
                    if args.is_empty() {
                        Ann::Simple(name.clone())
                    } else {
                        Ann::Generic(name.clone(), args)
                    }
                };
                if !self.eat(']') {
                    return None;
                }
                Some(ann)
            }
            Tok::Str(inner) => {
                self.pos += 1;
                parse_depth(&inner, self.depth + 1)
            }
            Tok::Punct('(') => {
                self.pos += 1;
                let inner = self.union()?;
                self.eat(')').then_some(inner)
            }
            Tok::Punct('[') => {
                // `Callable[[...], T]`-style argument lists: keep as an opaque list.
                self.pos += 1;
                let args = self.type_args()?;
                self.eat(']').then(|| Ann::Generic("[]".to_owned(), args))
            }
            Tok::Ellipsis => {
                self.pos += 1;
                Some(Ann::Simple("...".to_owned()))
            }
            Tok::Num(_) | Tok::Punct(_) => None,
        }
    }

    fn type_args(&mut self) -> Option<Vec<Ann>> {
        let mut args = Vec::new();
        while self.peek() != Some(&Tok::Punct(']')) {
            args.push(self.union()?);
            if !self.eat(',') {
                break;
            }
        }
        Some(args)
    }

    fn literal_args(&mut self) -> Option<Vec<Value>> {
        let mut values = Vec::new();
        while self.peek() != Some(&Tok::Punct(']')) {
            let negative = self.eat('-');
            let value = match self.peek()?.clone() {
                Tok::Str(s) if !negative => Value::Str(s),
                Tok::Num(n) => {
                    super::literal::parse_number_text(&if negative { format!("-{n}") } else { n })?
                }
                Tok::Name(n) if !negative && n == "True" => Value::Bool(true),
                Tok::Name(n) if !negative && n == "False" => Value::Bool(false),
                Tok::Name(n) if !negative && n == "None" => Value::None,
                _ => return None,
            };
            self.pos += 1;
            values.push(value);
            if !self.eat(',') {
                break;
            }
        }
        Some(values)
    }

    /// `Annotated[T, meta...]`: the type, then metadata kept as names or opaque text.
    fn annotated_args(&mut self) -> Option<Vec<Ann>> {
        let mut args = vec![self.union()?];
        while self.eat(',') {
            if self.peek() == Some(&Tok::Punct(']')) {
                break;
            }
            let start = self.pos;
            let mut depth = 0usize;
            while let Some(tok) = self.peek() {
                match tok {
                    Tok::Punct('[' | '(' | '{') => depth += 1,
                    Tok::Punct(']' | ')' | '}' | ',') if depth == 0 => break,
                    Tok::Punct(']' | ')' | '}') => depth -= 1,
                    _ => {}
                }
                self.pos += 1;
            }
            match &self.toks[start..self.pos] {
                [Tok::Name(n)] => args.push(Ann::Simple(n.clone())),
                _ => args.push(Ann::Opaque("<metadata>".to_owned())),
            }
        }
        Some(args)
    }
}

fn tokenize(text: &str) -> Option<Vec<Tok>> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\\' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' | b']' | b',' | b'|' | b'(' | b')' | b'{' | b'}' | b'-' | b':' | b'=' | b'*' => {
                toks.push(Tok::Punct(char::from(c)));
                i += 1;
            }
            b'.' if text[i..].starts_with("...") => {
                toks.push(Tok::Ellipsis);
                i += 3;
            }
            b'"' | b'\'' => {
                let (content, end) = read_string(text, i)?;
                toks.push(Tok::Str(content));
                i = end;
            }
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'.'
                        || bytes[i] == b'_'
                        || ((bytes[i] == b'+' || bytes[i] == b'-')
                            && matches!(bytes[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                toks.push(Tok::Num(text[start..i].to_owned()));
            }
            _ if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric() || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                // String prefixes: r"...", u'...'.
                if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                    let prefix = text[start..i].to_ascii_lowercase();
                    if prefix == "r" || prefix == "u" {
                        let (content, end) = read_string(text, i)?;
                        toks.push(Tok::Str(content));
                        i = end;
                        continue;
                    }
                    return None;
                }
                // Dotted names, allowing spaces around the dots.
                let mut name = text[start..i].to_owned();
                loop {
                    let mut j = i;
                    while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                        j += 1;
                    }
                    if j < bytes.len() && bytes[j] == b'.' && !text[j..].starts_with("...") {
                        j += 1;
                        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                            j += 1;
                        }
                        let seg_start = j;
                        while j < bytes.len()
                            && (bytes[j] == b'_'
                                || bytes[j].is_ascii_alphanumeric()
                                || bytes[j] >= 0x80)
                        {
                            j += 1;
                        }
                        if seg_start == j {
                            return None;
                        }
                        name.push('.');
                        name.push_str(&text[seg_start..j]);
                        i = j;
                    } else {
                        break;
                    }
                }
                toks.push(Tok::Name(name));
            }
            _ => return None,
        }
    }
    Some(toks)
}

/// Reads a quoted string starting at `start` (the quote). Content is kept raw, as Cog does.
fn read_string(text: &str, start: usize) -> Option<(String, usize)> {
    let rest = &text[start..];
    let quote = rest.as_bytes()[0];
    let triple = rest.len() >= 3 && rest.as_bytes()[1] == quote && rest.as_bytes()[2] == quote;
    let open = if triple { 3 } else { 1 };
    let bytes = rest.as_bytes();
    let mut i = open;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == quote && (!triple || rest[i..].starts_with(&rest[..3])) {
            let content = rest[open..i].to_owned();
            return Some((content, start + i + open));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> Ann {
        Ann::Simple(n.to_owned())
    }

    #[test]
    fn parses_common_spellings() {
        assert_eq!(parse("str"), Some(s("str")));
        assert_eq!(
            parse("typing.List[str]"),
            Some(Ann::Generic("typing.List".into(), vec![s("str")]))
        );
        assert_eq!(
            parse("str | None"),
            Some(Ann::Union(vec![s("str"), s("None")]))
        );
        assert_eq!(parse("'Output'"), Some(s("Output")));
        assert_eq!(
            parse("Optional[\n  list[int]  # comment\n]"),
            Some(Ann::Generic(
                "Optional".into(),
                vec![Ann::Generic("list".into(), vec![s("int")])]
            ))
        );
        assert_eq!(
            parse("Literal['a', \"b\"]"),
            Some(Ann::Literal(
                "Literal".into(),
                vec![Value::Str("a".into()), Value::Str("b".into())]
            ))
        );
        assert_eq!(
            parse("Literal[-1, 2]").map(|a| a.display()),
            Some("Literal[-1, 2]".into())
        );
        assert_eq!(
            parse("Annotated[dict, Opaque, Field(x=1)]"),
            Some(Ann::Generic(
                "Annotated".into(),
                vec![s("dict"), s("Opaque"), Ann::Opaque("<metadata>".into())]
            ))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse("1 + 2"), None);
        assert_eq!(parse("list[str"), None);
        assert_eq!(parse("f'x'"), None);
        assert_eq!(parse(&"[".repeat(1000)), None);
    }
}
