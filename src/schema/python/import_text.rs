//! What of a runner's file can change what importing it gives: the whole text except the
//! bodies of the runner's own methods (or of the runner function). Importing a module runs
//! its top-level statements, class bodies, decorators and default expressions, never a
//! method's body, so an edit inside `predict`'s body cannot change the schema the runtime
//! path reads. The runtime path keys its cached answers by this text, so such an edit reuses
//! them.

use tree_sitter::{Node, Parser};

/// `src` with the bodies of the methods of the top-level class `runner` (or of the top-level
/// function `runner`) replaced by a marker; `None` when `src` does not parse cleanly or has no
/// such definition (the caller then keys by the whole text).
pub fn without_runner_bodies(src: &str, runner: &str) -> Option<String> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .ok()?;
    let tree = parser.parse(src, None)?;
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let mut bodies = Vec::new();
    let mut found = false;
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        let def = definition(child);
        if name(def, src) != Some(runner) {
            continue;
        }
        match def.kind() {
            "function_definition" => {
                found = true;
                bodies.extend(def.child_by_field_name("body"));
            }
            "class_definition" => {
                found = true;
                let Some(body) = def.child_by_field_name("body") else {
                    continue;
                };
                let mut inner = body.walk();
                for item in body.named_children(&mut inner) {
                    let method = definition(item);
                    if method.kind() == "function_definition" {
                        bodies.extend(method.child_by_field_name("body"));
                    }
                }
            }
            _ => {}
        }
    }
    if !found {
        return None;
    }
    // A later definition of the same name replaces an earlier one: every one is blanked, and
    // the module-level statements around them are kept.
    bodies.sort_by_key(Node::start_byte);
    let mut out = String::with_capacity(src.len());
    let mut copied = 0;
    for body in bodies {
        if body.start_byte() < copied {
            continue;
        }
        out.push_str(&src[copied..body.start_byte()]);
        out.push_str("...");
        copied = body.end_byte();
    }
    out.push_str(&src[copied..]);
    Some(out)
}

/// The function or class a `decorated_definition` wraps, or `node` itself.
fn definition(node: Node<'_>) -> Node<'_> {
    if node.kind() == "decorated_definition" {
        node.child_by_field_name("definition").unwrap_or(node)
    } else {
        node
    }
}

fn name<'s>(def: Node<'_>, src: &'s str) -> Option<&'s str> {
    def.child_by_field_name("name")
        .and_then(|n| src.get(n.byte_range()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREDICTOR: &str = r#"from cog import BasePredictor, Input
TABLE = {"a": 1}

class Predictor(BasePredictor):
    size = len(TABLE)

    def setup(self):
        self.model = load()

    @staticmethod
    def helper(x=TABLE):
        return x

    def predict(self, name: str = Input(choices=list(TABLE))) -> str:
        return name.upper()
"#;

    #[test]
    fn an_edit_inside_a_method_body_keeps_the_text() {
        let before = without_runner_bodies(PREDICTOR, "Predictor").unwrap();
        let edited = PREDICTOR.replace("name.upper()", "name.lower() + '!'");
        assert_eq!(without_runner_bodies(&edited, "Predictor").unwrap(), before);
        let edited = PREDICTOR.replace("self.model = load()", "self.model = None");
        assert_eq!(without_runner_bodies(&edited, "Predictor").unwrap(), before);
        assert!(!before.contains("upper"), "{before}");
    }

    #[test]
    fn edits_that_import_runs_change_the_text() {
        let before = without_runner_bodies(PREDICTOR, "Predictor").unwrap();
        for (from, to) in [
            ("list(TABLE)", "sorted(TABLE)"),
            (r#"{"a": 1}"#, r#"{"b": 1}"#),
            ("len(TABLE)", "0"),
            ("x=TABLE", "x=None"),
            ("-> str", "-> int"),
        ] {
            let edited = PREDICTOR.replace(from, to);
            assert_ne!(
                without_runner_bodies(&edited, "Predictor").unwrap(),
                before,
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn a_runner_function_and_unusable_files() {
        let src = "def predict(x: int = 1) -> int:\n    return x + 1\n";
        let text = without_runner_bodies(src, "predict").unwrap();
        assert_eq!(text, "def predict(x: int = 1) -> int:\n    ...\n");
        assert_eq!(without_runner_bodies(src, "Predictor"), None);
        assert_eq!(without_runner_bodies("def predict(:\n", "predict"), None);
    }
}
