//! tree-sitter plumbing: parsing a file and small node helpers.

use std::path::PathBuf;

use tree_sitter::{Node, Parser, Tree};

use crate::schema::error::{SchemaError, SchemaErrorKind};

/// A parsed Python source file.
pub struct SourceFile {
    /// Path relative to the project directory (for messages).
    pub rel_path: PathBuf,
    pub src: String,
    pub tree: Tree,
}

impl SourceFile {
    /// Parses a file. Function bodies are blanked first (see `skim`), unless that leaves
    /// syntax errors, in which case the text is parsed as written.
    pub fn parse(rel_path: PathBuf, src: String) -> Result<SourceFile, SchemaError> {
        let mut parser = Parser::new();
        parser
            .set_language(&tree_sitter_python::LANGUAGE.into())
            .map_err(|e| {
                SchemaError::new(
                    SchemaErrorKind::Parse,
                    format!("failed to parse Python source: {e}"),
                )
            })?;
        let failed = || {
            SchemaError::new(
                SchemaErrorKind::Parse,
                "failed to parse Python source: tree-sitter parse failed",
            )
        };
        if let Some(skimmed) = super::skim::blank_function_bodies(&src) {
            let tree = parser.parse(&skimmed, None).ok_or_else(failed)?;
            if !tree.root_node().has_error() {
                return Ok(SourceFile {
                    rel_path,
                    src: skimmed,
                    tree,
                });
            }
        }
        let tree = parser.parse(&src, None).ok_or_else(failed)?;
        Ok(SourceFile {
            rel_path,
            src,
            tree,
        })
    }

    pub fn root(&self) -> Node<'_> {
        self.tree.root_node()
    }

    pub fn text(&self, node: Node<'_>) -> &str {
        text(node, &self.src)
    }

    /// Attaches this file and the node's line to an error.
    pub fn locate(&self, err: SchemaError, node: Node<'_>) -> SchemaError {
        err.at(&self.rel_path, line(node))
    }
}

pub fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// 1-based line of the node's start.
pub fn line(node: Node<'_>) -> usize {
    node.start_position().row + 1
}

pub fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).collect()
}

pub fn children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.children(&mut cursor).collect()
}

/// The statement inside an `expression_statement` wrapper, or the node itself.
pub fn unwrap_statement(node: Node<'_>) -> Node<'_> {
    if node.kind() == "expression_statement"
        && node.named_child_count() == 1
        && let Some(inner) = node.named_child(0)
    {
        return inner;
    }
    node
}

/// A class or function definition, looking through decorators. Returns the definition and
/// its decorators (the `decorator` nodes).
pub fn definition<'t>(node: Node<'t>, kind: &str) -> Option<(Node<'t>, Vec<Node<'t>>)> {
    if node.kind() == kind {
        return Some((node, Vec::new()));
    }
    if node.kind() == "decorated_definition" {
        let def = node.child_by_field_name("definition")?;
        if def.kind() == kind {
            let decorators = named_children(node)
                .into_iter()
                .filter(|c| c.kind() == "decorator")
                .collect();
            return Some((def, decorators));
        }
    }
    None
}

/// The name of a class or function definition.
pub fn def_name<'s>(def: Node<'_>, src: &'s str) -> Option<&'s str> {
    def.child_by_field_name("name").map(|n| text(n, src))
}
