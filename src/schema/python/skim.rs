//! Blanks function bodies before parsing: the schema never needs them (signatures,
//! decorators, classes and module-level statements are kept), and they are most of a real
//! predictor's text, so tree-sitter has far less to parse. A body becomes `0` (a valid
//! statement) followed by the body's line breaks, so line numbers are unchanged; every other
//! byte is kept as written. A body that mentions
//! `Input(` is kept (helpers that return `Input(...)` are reused as defaults), and so is the
//! short body of a top-level function (helpers whose return value is a default or choices).
//! The caller falls back to the original text if the skimmed text does not parse cleanly.

/// One logical line (physical lines joined by brackets, strings or backslashes).
struct LogicalLine {
    start: usize,
    end: usize,
    indent: usize,
    blank: bool,
    /// A `def`/`async def` header whose body starts on the next line.
    def_header: bool,
}

/// Bodies of top-level functions of at most this many logical lines are kept: small helpers
/// the evaluator may call for a default or choices. Methods are blanked (most of a predictor).
const SHORT_BODY: usize = 12;

/// The skimmed text, or `None` when there is nothing to blank.
pub fn blank_function_bodies(src: &str) -> Option<String> {
    blank_bodies(src, SHORT_BODY)
}

/// Blanks bodies that do not mention `Input(`, except those of top-level functions of at most
/// `keep_up_to` logical lines.
fn blank_bodies(src: &str, keep_up_to: usize) -> Option<String> {
    let bytes = src.as_bytes();
    let lines = logical_lines(bytes);
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < lines.len() {
        let header = &lines[i];
        if !header.def_header {
            i += 1;
            continue;
        }
        // The body: following lines indented deeper than the header (blank lines included).
        let mut last = None;
        let mut j = i + 1;
        while j < lines.len() {
            let line = &lines[j];
            if !line.blank {
                if line.indent <= header.indent {
                    break;
                }
                last = Some(j);
            }
            j += 1;
        }
        let Some(last) = last else {
            i += 1;
            continue;
        };
        let first = (i + 1..=last).find(|k| !lines[*k].blank).unwrap_or(last);
        let (start, end) = (lines[first].start, lines[last].end);
        let statements = (i + 1..=last).filter(|k| !lines[*k].blank).count();
        let small_helper = header.indent == 0 && statements <= keep_up_to;
        if !small_helper && !contains(&bytes[start..end], b"Input(") {
            let buf = out.get_or_insert_with(|| String::with_capacity(src.len() / 2));
            let statement_at = start + lines[first].indent;
            buf.push_str(&src[copied..statement_at]);
            buf.push('0');
            let breaks = bytes[statement_at..end].split(|b| *b == b'\n').count() - 1;
            buf.extend(std::iter::repeat_n('\n', breaks));
            copied = end;
        }
        i = last + 1;
    }
    let mut buf = out?;
    buf.push_str(&src[copied..]);
    Some(buf)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn logical_lines(s: &[u8]) -> Vec<LogicalLine> {
    let mut lines = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let start = i;
        let mut indent = 0;
        while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
            indent += 1;
            i += 1;
        }
        let content_start = i;
        let mut depth: usize = 0;
        let mut last_significant: Option<u8> = None;
        while i < s.len() {
            match s[i] {
                b'#' => {
                    while i < s.len() && s[i] != b'\n' {
                        i += 1;
                    }
                    continue;
                }
                b'\'' | b'"' => {
                    i = skip_string(s, i);
                    last_significant = Some(b'"');
                    continue;
                }
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    last_significant = Some(s[i]);
                }
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    last_significant = Some(s[i]);
                }
                b'\\' if s.get(i + 1) == Some(&b'\n') => {
                    i += 2;
                    continue;
                }
                b'\\' if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') => {
                    i += 3;
                    continue;
                }
                b'\n' if depth == 0 => break,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                other => last_significant = Some(other),
            }
            i += 1;
        }
        let end = i;
        let content = &s[content_start..end];
        let blank = last_significant.is_none();
        let def_header = !blank
            && last_significant == Some(b':')
            && (content.starts_with(b"def ") || content.starts_with(b"async def "));
        lines.push(LogicalLine {
            start,
            end,
            indent,
            blank,
            def_header,
        });
        i = end + 1;
    }
    lines
}

/// Index just past the string literal that opens at `i`.
fn skip_string(s: &[u8], i: usize) -> usize {
    let quote = s[i];
    let triple = s.get(i + 1) == Some(&quote) && s.get(i + 2) == Some(&quote);
    let mut j = if triple { i + 3 } else { i + 1 };
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'\n' if !triple => return j,
            c if c == quote => {
                if !triple {
                    return j + 1;
                }
                if s.get(j + 1) == Some(&quote) && s.get(j + 2) == Some(&quote) {
                    return j + 3;
                }
                j += 1;
            }
            _ => j += 1,
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::{SHORT_BODY, blank_bodies, blank_function_bodies};

    #[test]
    fn blanks_bodies_keeping_lines() {
        let src = "def f(x: int) -> int:\n    y = x + 1\n    return y\n\nclass A:\n    def g(self) -> str:\n        \"\"\"doc\ndef not_a_def():\n\"\"\"\n        return 'x'\n\nZ = 1\n";
        let out = blank_bodies(src, 0).expect("changed");
        assert_eq!(out.lines().count(), src.lines().count());
        assert!(out.starts_with("def f(x: int) -> int:\n    0\n"));
        assert!(out.contains("class A:\n    def g(self) -> str:\n        0"));
        assert!(!out.contains("not_a_def"));
        assert!(out.ends_with("Z = 1\n"));
    }

    #[test]
    fn comments_end_lines() {
        let src = "def f():  # trailing\n    x = 1\n# column zero\n    y = 2\n# at end";
        let out = blank_bodies(src, 0).expect("changed");
        assert_eq!(out, "def f():  # trailing\n    0\n\n\n# at end");
    }

    #[test]
    fn keeps_input_helpers_and_one_liners() {
        let src = "class I:\n    def steps(default=1):\n        return Input(default=default)\n\ndef f(): return 1\n";
        assert_eq!(blank_bodies(src, 0), None);
    }

    #[test]
    fn multiline_signatures() {
        let src = "def predict(\n    self,\n    x: str = Input(description=\"a:b\"),\n) -> str:\n    return x\n";
        let out = blank_bodies(src, 0).expect("changed");
        assert!(out.starts_with(
            "def predict(\n    self,\n    x: str = Input(description=\"a:b\"),\n) -> str:\n    0"
        ));
    }

    #[test]
    fn short_bodies_are_kept_for_the_evaluator() {
        let short = "def fmt():\n    return \"webp\"\n";
        assert_eq!(blank_function_bodies(short), None);
        let long = format!(
            "def f():\n{}    return 1\n",
            "    x = 1\n".repeat(SHORT_BODY)
        );
        assert_eq!(
            blank_function_bodies(&long).as_deref(),
            Some(format!("def f():\n    0{}", "\n".repeat(SHORT_BODY + 1)).as_str())
        );
    }
}
