//! From a requirements file's bytes to logical lines, as pip reads them: byte-order marks,
//! `\` continuations, comments, `${VAR}` expansion, and the split of a line into its
//! requirement and its options.

/// Decodes a requirements file as pip's `auto_decode` does: a UTF-8, UTF-16 or UTF-32 byte-order
/// mark chooses the encoding (and is dropped); otherwise UTF-8.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|_| "not valid UTF-8".to_string());
    }
    let units = |rest: &[u8], width: usize, big: bool| -> Result<String, String> {
        if !rest.len().is_multiple_of(width) {
            return Err(format!("truncated UTF-{} text", width * 8));
        }
        let chunks = rest.chunks_exact(width);
        if width == 2 {
            let u16s: Vec<u16> = chunks
                .map(|c| {
                    let b = [c[0], c[1]];
                    if big {
                        u16::from_be_bytes(b)
                    } else {
                        u16::from_le_bytes(b)
                    }
                })
                .collect();
            String::from_utf16(&u16s).map_err(|_| "not valid UTF-16".to_string())
        } else {
            chunks
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    let v = if big {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    };
                    char::from_u32(v).ok_or_else(|| "not valid UTF-32".to_string())
                })
                .collect()
        }
    };
    // UTF-32 first: its little-endian mark starts with UTF-16's.
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE\x00\x00") {
        return units(rest, 4, false);
    }
    if let Some(rest) = bytes.strip_prefix(b"\x00\x00\xFE\xFF") {
        return units(rest, 4, true);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return units(rest, 2, false);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return units(rest, 2, true);
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        format!(
            "not valid UTF-8 (byte {} of the file); pip reads requirement files as UTF-8 unless a byte-order mark says otherwise",
            e.utf8_error().valid_up_to()
        )
    })
}

/// `(first line number, text)` of each logical line, as pip's `join_lines`, `ignore_comments`
/// and `expand_env_variables` give them: a line ending in `\` continues on the next, a
/// comment (`#` at the start or after whitespace) runs to the end of its line, empty lines are
/// dropped.
pub(crate) fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut joined: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let is_comment = line.trim_start().starts_with('#');
        if !line.ends_with('\\') || is_comment {
            // pip: a comment line ends a continuation (and is dropped with the comments).
            let line = if is_comment {
                format!(" {line}")
            } else {
                line.to_string()
            };
            match pending.take() {
                Some((start, mut text)) => {
                    text.push_str(&line);
                    joined.push((start, text));
                }
                None => joined.push((number, line)),
            }
        } else {
            let part = line.trim_matches('\\');
            match &mut pending {
                Some((_, text)) => text.push_str(part),
                None => pending = Some((number, part.to_string())),
            }
        }
    }
    joined.extend(pending);
    joined
        .into_iter()
        .filter_map(|(n, line)| {
            let line = match comment_start(&line) {
                Some(pos) => &line[..pos],
                None => &line[..],
            };
            let line = expand_env(line.trim());
            (!line.is_empty()).then_some((n, line))
        })
        .collect()
}

/// Where a comment starts: `#` at the start of the line or after whitespace (a URL's `#egg=`
/// fragment is not a comment).
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let pos = bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
        .map(|(i, _)| i)?;
    // pip's pattern `(^|\s+)#.*$` also takes the whitespace before the `#`.
    Some(line[..pos].trim_end().len())
}

/// pip's `${VAR}` expansion: upper-case names, digits and `_`; an unset variable stays as it is.
fn expand_env(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            let name = &after[..name_len];
            match std::env::var(name) {
                Ok(value) => out.push_str(&value),
                Err(_) => out.push_str(&rest[start..start + 3 + name_len]),
            }
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// pip's `break_args_options`: the words before the first one starting with `-` are the
/// requirement, the rest are options.
pub(crate) fn split_args_options(line: &str) -> (String, String) {
    let words: Vec<&str> = line.split(' ').collect();
    let first_option = words
        .iter()
        .position(|w| w.starts_with('-'))
        .unwrap_or(words.len());
    (
        words[..first_option].join(" ").trim().to_string(),
        words[first_option..].join(" "),
    )
}

/// POSIX shell-like word splitting (pip runs `shlex.split` on the options part).
pub(crate) fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    current.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_marks_choose_the_encoding() {
        assert_eq!(decode(b"\xEF\xBB\xBFnumpy\n").unwrap(), "numpy\n");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("six\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16).unwrap(), "six\n");
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("six\n".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&utf16be).unwrap(), "six\n");
        assert!(decode(b"caf\xE9\n").unwrap_err().contains("byte 3"));
    }

    #[test]
    fn continuations_and_comments_as_pip_joins_them() {
        let text = "a==1 \\\n  --hash=sha256:x \\\n  --hash=sha256:y\n# c \\\nb # trailing\n\
                    c \\\n# comment ends it\nhttps://x/y.whl#egg=y\n\n  \nlast\\";
        assert_eq!(
            logical_lines(text),
            [
                (1, "a==1   --hash=sha256:x   --hash=sha256:y".to_string()),
                (5, "b".to_string()),
                (6, "c".to_string()),
                (8, "https://x/y.whl#egg=y".to_string()),
                (11, "last".to_string()),
            ]
        );
    }

    #[test]
    fn environment_variables_expand_as_in_pip() {
        // SAFETY: tests in this module read only this variable.
        unsafe { std::env::set_var("COG_RS_TEST_TOKEN", "s3cret") };
        assert_eq!(
            expand_env("https://u:${COG_RS_TEST_TOKEN}@h/${UNSET_COG_RS_VAR}/${lower}/$X"),
            "https://u:s3cret@h/${UNSET_COG_RS_VAR}/${lower}/$X"
        );
    }

    #[test]
    fn splits_requirement_from_options() {
        assert_eq!(
            split_args_options("foo ; python_version < '3.9' --hash=sha256:x"),
            (
                "foo ; python_version < '3.9'".to_string(),
                "--hash=sha256:x".to_string()
            )
        );
        assert_eq!(
            split_args_options("--pre -f https://x/wheels"),
            (String::new(), "--pre -f https://x/wheels".to_string())
        );
        assert_eq!(
            shell_words(r#"--pre -f 'a b' "c\"d" e\ f"#).unwrap(),
            ["--pre", "-f", "a b", "c\"d", "e f"]
        );
        assert!(shell_words("'open").is_err());
    }
}
