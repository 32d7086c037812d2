//! deb822 control data: `Packages`, `Release`, `status` and a `.deb`'s `control` file.
//!
//! Parsing borrows from the input: a paragraph is a list of (field, raw value) slices, so a
//! 50 MB `Packages` file is scanned without copying it.

/// One field of a paragraph. `value` is the raw text after `Name:`, trimmed, continuation lines
/// included (with their leading space), as deb822 stores multi-line fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// A paragraph: fields in file order. Field names compare case-insensitively (deb822).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    pub fields: Vec<Field<'a>>,
    /// The paragraph's text exactly as in the input (without the separating blank line).
    pub raw: &'a str,
}

impl<'a> Paragraph<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// Splits deb822 text into paragraphs. Comment lines (`#`) are skipped; lines that are neither
/// fields nor continuations are ignored, as apt does for robustness.
pub fn paragraphs(text: &str) -> Paragraphs<'_> {
    Paragraphs { rest: text }
}

pub struct Paragraphs<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Paragraph<'a>;

    fn next(&mut self) -> Option<Paragraph<'a>> {
        // Skip blank lines between paragraphs.
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (line, after) = split_line(self.rest);
            if line.trim().is_empty() {
                self.rest = after;
            } else {
                break;
            }
        }
        let start = self.rest;
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(16);
        // Byte offset (in `start`) where the current field's value begins and ends.
        let mut current: Option<(&'a str, usize, usize)> = None;
        let mut offset = 0;
        while offset < start.len() {
            let (line, _) = split_line(&start[offset..]);
            let line_start = offset;
            offset += line.len() + 1;
            let offset_end = offset.min(start.len());
            if line.trim().is_empty() {
                offset = offset_end;
                self.rest = &start[offset..];
                if let Some(f) = current.take() {
                    fields.push(field(start, f));
                }
                return Some(Paragraph {
                    fields,
                    raw: start[..line_start].trim_end_matches('\n'),
                });
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(f) = current.as_mut() {
                    f.2 = line_start + line.len();
                }
                continue;
            }
            if let Some(colon) = line.find(':') {
                if let Some(f) = current.take() {
                    fields.push(field(start, f));
                }
                current = Some((
                    &start[line_start..line_start + colon],
                    line_start + colon + 1,
                    line_start + line.len(),
                ));
            }
        }
        if let Some(f) = current.take() {
            fields.push(field(start, f));
        }
        self.rest = "";
        Some(Paragraph {
            fields,
            raw: start.trim_end_matches('\n'),
        })
    }
}

fn field<'a>(text: &'a str, (name, from, to): (&'a str, usize, usize)) -> Field<'a> {
    Field {
        name: name.trim(),
        value: text[from..to].trim(),
    }
}

fn split_line(text: &str) -> (&str, &str) {
    match text.find('\n') {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    }
}

/// The non-empty lines of a multi-line field whose first line is empty (e.g. the `SHA256:`
/// list of a `Release` file), each trimmed.
pub fn value_lines(value: &str) -> impl Iterator<Item = &str> {
    value.lines().map(str::trim).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_continuations() {
        let text = "Package: hello\nVersion: 2.10-3\nDescription: greets\n the world\n .\n twice\n\n\n# comment\nPackage: b\nDepends: a,\n c\n";
        let all: Vec<_> = paragraphs(text).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].get("package"), Some("hello"));
        assert_eq!(
            all[0].get("Description"),
            Some("greets\n the world\n .\n twice")
        );
        assert_eq!(
            all[0].raw,
            "Package: hello\nVersion: 2.10-3\nDescription: greets\n the world\n .\n twice"
        );
        assert_eq!(all[1].get("Depends"), Some("a,\n c"));
        assert_eq!(all[1].get("Version"), None);
    }

    #[test]
    fn empty_and_blank_inputs_have_no_paragraphs() {
        assert_eq!(paragraphs("").count(), 0);
        assert_eq!(paragraphs("\n \n\n").count(), 0);
    }

    #[test]
    fn value_lines_are_trimmed() {
        let p = paragraphs("SHA256:\n abc 12 main/x\n def 34 main/y\n")
            .next()
            .unwrap();
        let lines: Vec<_> = value_lines(p.get("SHA256").unwrap()).collect();
        assert_eq!(lines, ["abc 12 main/x", "def 34 main/y"]);
    }
}
