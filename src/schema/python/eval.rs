//! The static evaluator: module-level expressions of the project computed from the syntax
//! tree, without running Python. It covers what real predictors write for defaults, choices
//! and constraints: literals and module constants (also from local modules), dict
//! keys/values/items, `list()`, `sorted()`, `range()` and other pure builtins, comprehensions,
//! arithmetic, string methods and f-strings, conditional expressions, enum members, class
//! attributes, and calls of the project's own small functions (`return <expression>`,
//! possibly after `if`s and assignments) and of helpers that return `Input(...)`.
//! What it cannot compute is a [`PyVal::Unknown`] naming why.

use tree_sitter::Node;

use super::annotation::{MAX_DEPTH, last_segment};
use super::literal;
use super::module::{Module, Symbol, top_level_definitions};
use super::ops;
use super::pyval::{DefRef, EnumMember, InputArg, PyVal};
use super::syntax::{children, def_name, definition, line, named_children, text, unwrap_statement};

/// Local names (comprehension variables, function parameters), innermost last.
pub type Locals = Vec<(String, PyVal)>;

/// Most values a comprehension may produce.
const MAX_ITEMS: usize = 100_000;

/// Most evaluation steps for one evaluator (a module's constants, or one entry point): a bound
/// on what self-calling helpers could otherwise cost.
const MAX_STEPS: usize = 1_000_000;

/// Evaluates expressions written in the project's modules.
pub struct Eval<'p> {
    pub modules: &'p [Module],
    steps: std::cell::Cell<usize>,
}

/// Positional and keyword arguments of a call.
struct Args {
    positional: Vec<PyVal>,
    keywords: Vec<(String, PyVal)>,
}

fn unknown(reason: impl Into<String>) -> PyVal {
    PyVal::unknown(reason)
}

fn lift(result: Result<PyVal, String>) -> PyVal {
    result.unwrap_or_else(PyVal::Unknown)
}

impl<'p> Eval<'p> {
    pub fn new(modules: &'p [Module]) -> Eval<'p> {
        Eval {
            modules,
            steps: std::cell::Cell::new(0),
        }
    }

    fn src(&self, m: usize) -> &'p str {
        &self.modules[m].file.src
    }

    fn text(&self, m: usize, node: Node<'_>) -> &'p str {
        text(node, self.src(m))
    }

    /// Evaluates `node`, written in module `m`, with no local names.
    pub fn expr(&self, m: usize, node: Node<'_>) -> PyVal {
        self.eval(m, node, &Vec::new(), 0)
    }

    /// Evaluates `node` with local names bound.
    pub fn eval(&self, m: usize, node: Node<'_>, locals: &Locals, depth: usize) -> PyVal {
        if depth > MAX_DEPTH {
            return unknown("the expression is nested too deeply");
        }
        self.steps.set(self.steps.get() + 1);
        if self.steps.get() > MAX_STEPS {
            return unknown("the expression takes too long to evaluate statically");
        }
        let d = depth + 1;
        match node.kind() {
            "none" => PyVal::None,
            "true" => PyVal::Bool(true),
            "false" => PyVal::Bool(false),
            "integer" => literal::parse_int(self.text(m, node)).map_or_else(
                || unknown(format!("`{}` is not a 64-bit integer", self.text(m, node))),
                PyVal::Int,
            ),
            "float" => literal::parse_float(self.text(m, node)).map_or_else(
                || unknown(format!("`{}` is not a finite float", self.text(m, node))),
                PyVal::Float,
            ),
            "string" | "concatenated_string" => self.string(m, node, locals, d),
            "parenthesized_expression" => match first_expression(node) {
                Some(inner) => self.eval(m, inner, locals, d),
                None => unknown("empty parentheses"),
            },
            "unary_operator" => self.unary(m, node, locals, d),
            "not_operator" => match node.child_by_field_name("argument") {
                Some(arg) => lift(
                    self.eval(m, arg, locals, d)
                        .truthy()
                        .map(|t| PyVal::Bool(!t)),
                ),
                None => unknown("`not` without an operand"),
            },
            "list" | "set" => self
                .sequence(m, node, locals, d)
                .map_or_else(PyVal::Unknown, PyVal::List),
            "tuple" | "expression_list" => self
                .sequence(m, node, locals, d)
                .map_or_else(PyVal::Unknown, PyVal::Tuple),
            "dictionary" => self.dictionary(m, node, locals, d),
            "identifier" => self.name(m, self.text(m, node), locals),
            "attribute" => self.attribute(m, node, locals, d),
            "subscript" => self.subscript(m, node, locals, d),
            "call" => self.call(m, node, locals, d),
            "binary_operator" => self.binary(m, node, locals, d),
            "comparison_operator" => self.comparison(m, node, locals, d),
            "boolean_operator" => self.boolean(m, node, locals, d),
            "conditional_expression" => self.conditional(m, node, locals, d),
            "list_comprehension" | "set_comprehension" | "generator_expression" => {
                self.comprehension(m, node, locals, d)
            }
            "dictionary_comprehension" => self.dict_comprehension(m, node, locals, d),
            _ => unknown(format!(
                "`{}` is not evaluated statically",
                squeeze(self.text(m, node))
            )),
        }
    }

    // ------------------------------------------------------------------ names

    /// A name in module `m`: locals, then module symbols, then builtins.
    pub fn name(&self, m: usize, name: &str, locals: &Locals) -> PyVal {
        if let Some((_, v)) = locals.iter().rev().find(|(n, _)| n == name) {
            return v.clone();
        }
        let module = &self.modules[m];
        match module.symbols.get(name) {
            Some(Symbol::Constant(v)) => return v.clone(),
            Some(Symbol::Alias(..) | Symbol::Model(..)) => {
                return unknown(format!("`{name}` is a type, not a value"));
            }
            None => {}
        }
        if let Some(b) = ops::builtin(name) {
            return PyVal::Builtin(b);
        }
        let root = name.split('.').next().unwrap_or(name);
        match module.imports.get(root) {
            Some(entry) if entry.original == entry.module => unknown(format!(
                "`{name}` is the module `{}`, outside the project: it is not evaluated statically",
                entry.module
            )),
            Some(entry) => unknown(format!(
                "`{name}` is imported from `{}`, outside the project: it is not evaluated statically",
                entry.module
            )),
            None => unknown(format!(
                "`{name}` is not defined at module level in {}",
                module.file.rel_path.display()
            )),
        }
    }

    fn attribute(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let dotted = self.text(m, node);
        if let Some(Symbol::Constant(v)) = self.modules[m].symbols.get(dotted) {
            return v.clone();
        }
        let (Some(object), Some(attr)) = (
            node.child_by_field_name("object"),
            node.child_by_field_name("attribute"),
        ) else {
            return unknown("malformed attribute");
        };
        let attr = self.text(m, attr);
        match self.eval(m, object, locals, d) {
            PyVal::EnumClass(class, members) => members
                .into_iter()
                .find(|member| member.name == attr)
                .map_or_else(
                    || unknown(format!("enum `{class}` has no member `{attr}`")),
                    PyVal::Member,
                ),
            PyVal::Class(class) => self.class_attribute(&class, attr, d),
            object => lift(ops::attribute(&object, attr)),
        }
    }

    /// `Class.attr`: a class-level assignment, or a method.
    fn class_attribute(&self, class: &DefRef, attr: &str, d: usize) -> PyVal {
        let Some(body) = self.class_body(class) else {
            return unknown(format!("class `{}` not found", class.name));
        };
        let mut found = None;
        for stmt in named_children(body) {
            let inner = unwrap_statement(stmt);
            if inner.kind() == "assignment"
                && let (Some(left), Some(right)) = (
                    inner.child_by_field_name("left"),
                    inner.child_by_field_name("right"),
                )
                && self.text(class.module, left) == attr
            {
                found = Some(self.eval(class.module, right, &Vec::new(), d));
            }
            if let Some((func, _)) = definition(stmt, "function_definition")
                && def_name(func, self.src(class.module)) == Some(attr)
            {
                found = Some(PyVal::Method(class.clone(), attr.to_owned()));
            }
        }
        found
            .unwrap_or_else(|| unknown(format!("class `{}` has no attribute `{attr}`", class.name)))
    }

    fn class_body(&self, class: &DefRef) -> Option<Node<'p>> {
        let file = &self.modules.get(class.module)?.file;
        top_level_definitions(file, "class_definition")
            .into_iter()
            .find(|(c, _)| def_name(*c, &file.src) == Some(class.name.as_str()))
            .and_then(|(c, _)| c.child_by_field_name("body"))
    }

    fn function_node(&self, func: &DefRef) -> Option<Node<'p>> {
        let file = &self.modules.get(func.module)?.file;
        top_level_definitions(file, "function_definition")
            .into_iter()
            .rev()
            .find(|(f, _)| def_name(*f, &file.src) == Some(func.name.as_str()))
            .map(|(f, _)| f)
    }

    fn method_node(&self, class: &DefRef, method: &str) -> Option<Node<'p>> {
        let src = self.src(class.module);
        named_children(self.class_body(class)?)
            .into_iter()
            .filter_map(|s| definition(s, "function_definition").map(|(f, _)| f))
            .rev()
            .find(|f| def_name(*f, src) == Some(method))
    }

    // ------------------------------------------------------------------ literals

    fn string(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        if let Some(s) = literal::string(node, self.src(m)) {
            return PyVal::Str(s);
        }
        let parts = if node.kind() == "concatenated_string" {
            named_children(node)
        } else {
            vec![node]
        };
        let mut out = String::new();
        for part in parts {
            if part.kind() != "string" {
                continue;
            }
            let raw = self.text(m, part);
            let prefix: String = raw
                .chars()
                .take_while(|c| *c != '"' && *c != '\'')
                .collect::<String>()
                .to_ascii_lowercase();
            if !prefix.contains('f') || prefix.contains('b') {
                match literal::string(part, self.src(m)) {
                    Some(s) => out.push_str(&s),
                    None => return unknown(format!("`{}` is a bytes literal", squeeze(raw))),
                }
                continue;
            }
            for child in children(part) {
                match child.kind() {
                    "string_content" => out.push_str(self.text(m, child)),
                    "interpolation" => {
                        if child.child_by_field_name("format_specifier").is_some()
                            || child.child_by_field_name("type_conversion").is_some()
                        {
                            return unknown(format!(
                                "the f-string field `{}` has a format spec",
                                self.text(m, child)
                            ));
                        }
                        let Some(expr) = child.child_by_field_name("expression") else {
                            return unknown("empty f-string field");
                        };
                        match self.eval(m, expr, locals, d).py_str() {
                            Ok(s) => out.push_str(&s),
                            Err(e) => return unknown(e),
                        }
                    }
                    _ => {}
                }
            }
        }
        PyVal::Str(out)
    }

    fn unary(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let (Some(op), Some(arg)) = (
            node.child_by_field_name("operator"),
            node.child_by_field_name("argument"),
        ) else {
            return unknown("malformed unary operator");
        };
        let value = self.eval(m, arg, locals, d);
        match (self.text(m, op), value) {
            ("-", PyVal::Int(i)) => i
                .checked_neg()
                .map_or_else(|| unknown("integer overflow"), PyVal::Int),
            ("-", PyVal::Float(f)) => PyVal::Float(-f),
            ("+", v @ (PyVal::Int(_) | PyVal::Float(_))) => v,
            ("~", PyVal::Int(i)) => PyVal::Int(!i),
            (_, PyVal::Unknown(r)) => PyVal::Unknown(r),
            (op, v) => unknown(format!("`{op}` on a {}", v.type_name())),
        }
    }

    /// Items of a list, set, tuple or argument list, with `*x` spread.
    fn sequence(
        &self,
        m: usize,
        node: Node<'_>,
        locals: &Locals,
        d: usize,
    ) -> Result<Vec<PyVal>, String> {
        let mut items = Vec::new();
        for child in named_children(node) {
            match child.kind() {
                "comment" => {}
                "list_splat" => {
                    let inner = first_expression(child).ok_or("empty `*`")?;
                    items.extend(self.eval(m, inner, locals, d).iterate()?);
                }
                _ => items.push(self.eval(m, child, locals, d)),
            }
        }
        Ok(items)
    }

    fn dictionary(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let mut pairs = Vec::new();
        for child in named_children(node) {
            match child.kind() {
                "pair" => {
                    let (Some(k), Some(v)) = (
                        child.child_by_field_name("key"),
                        child.child_by_field_name("value"),
                    ) else {
                        continue;
                    };
                    let key = self.eval(m, k, locals, d);
                    if let PyVal::Unknown(r) = key {
                        return PyVal::Unknown(r);
                    }
                    ops::dict_set(&mut pairs, key, self.eval(m, v, locals, d));
                }
                "dictionary_splat" => {
                    let Some(inner) = first_expression(child) else {
                        continue;
                    };
                    match self.eval(m, inner, locals, d) {
                        PyVal::Dict(more) => {
                            for (k, v) in more {
                                ops::dict_set(&mut pairs, k, v);
                            }
                        }
                        other => return unknown(format!("`**` of a {}", other.type_name())),
                    }
                }
                _ => {}
            }
        }
        PyVal::Dict(pairs)
    }

    // ------------------------------------------------------------------ operators

    fn binary(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let (Some(left), Some(op), Some(right)) = (
            node.child_by_field_name("left"),
            node.child_by_field_name("operator"),
            node.child_by_field_name("right"),
        ) else {
            return unknown("malformed operator");
        };
        let a = self.eval(m, left, locals, d);
        let b = self.eval(m, right, locals, d);
        lift(ops::binary(self.text(m, op), &a, &b))
    }

    fn comparison(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let operands: Vec<Node<'_>> = named_children(node);
        let mut cursor = node.walk();
        let operators: Vec<String> = node
            .children_by_field_name("operators", &mut cursor)
            .map(|o| squeeze(self.text(m, o)))
            .collect();
        if operands.len() != operators.len() + 1 {
            return unknown("malformed comparison");
        }
        let values: Vec<PyVal> = operands
            .iter()
            .map(|o| self.eval(m, *o, locals, d))
            .collect();
        for (i, op) in operators.iter().enumerate() {
            match ops::compare_op(op, &values[i], &values[i + 1]) {
                Ok(true) => {}
                Ok(false) => return PyVal::Bool(false),
                Err(e) => return unknown(e),
            }
        }
        PyVal::Bool(true)
    }

    fn boolean(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let (Some(left), Some(op), Some(right)) = (
            node.child_by_field_name("left"),
            node.child_by_field_name("operator"),
            node.child_by_field_name("right"),
        ) else {
            return unknown("malformed boolean operator");
        };
        let a = self.eval(m, left, locals, d);
        match (a.truthy(), self.text(m, op)) {
            (Err(e), _) => unknown(e),
            (Ok(true), "and") | (Ok(false), "or") => self.eval(m, right, locals, d),
            (Ok(_), _) => a,
        }
    }

    fn conditional(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let parts = named_children(node);
        let [body, condition, alternative] = parts.as_slice() else {
            return unknown("malformed conditional expression");
        };
        match self.eval(m, *condition, locals, d).truthy() {
            Ok(true) => self.eval(m, *body, locals, d),
            Ok(false) => self.eval(m, *alternative, locals, d),
            Err(e) => unknown(e),
        }
    }

    fn subscript(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let Some(value) = node.child_by_field_name("value") else {
            return unknown("malformed subscript");
        };
        let mut cursor = node.walk();
        let keys: Vec<Node<'_>> = node
            .children_by_field_name("subscript", &mut cursor)
            .collect();
        let [key] = keys.as_slice() else {
            return unknown(format!(
                "`{}` is not evaluated statically",
                squeeze(self.text(m, node))
            ));
        };
        let target = self.eval(m, value, locals, d);
        if key.kind() != "slice" {
            let k = self.eval(m, *key, locals, d);
            return lift(ops::index(&target, &k));
        }
        let mut bounds: [Option<i64>; 3] = [None; 3];
        let mut slot = 0;
        for child in children(*key) {
            if child.kind() == ":" {
                slot += 1;
            } else if child.is_named() && slot < 3 {
                match self.eval(m, child, locals, d) {
                    PyVal::None => {}
                    v => match v.as_int() {
                        Some(i) => bounds[slot] = Some(i),
                        None => return unknown("slice bounds must be ints"),
                    },
                }
            }
        }
        if bounds[2].is_some_and(|s| s != 1) {
            return unknown("slices with a step are not evaluated statically");
        }
        lift(ops::slice(&target, bounds[0], bounds[1]))
    }

    // ------------------------------------------------------------------ comprehensions

    /// The local scopes a comprehension's `for`/`if` clauses produce, in Python's order.
    fn comprehension_scopes(
        &self,
        m: usize,
        node: Node<'_>,
        locals: &Locals,
        d: usize,
    ) -> Result<Vec<Locals>, String> {
        let mut scopes = vec![locals.clone()];
        for clause in named_children(node) {
            match clause.kind() {
                "for_in_clause" => {
                    let (Some(left), Some(right)) = (
                        clause.child_by_field_name("left"),
                        clause.child_by_field_name("right"),
                    ) else {
                        return Err("malformed `for` clause".into());
                    };
                    let mut next = Vec::new();
                    for scope in &scopes {
                        for item in self.eval(m, right, scope, d).iterate()? {
                            let mut inner = scope.clone();
                            self.bind(m, left, item, &mut inner)?;
                            next.push(inner);
                            if next.len() > MAX_ITEMS {
                                return Err(
                                    "the comprehension is too long to evaluate statically".into()
                                );
                            }
                        }
                    }
                    scopes = next;
                }
                "if_clause" => {
                    let cond = first_expression(clause).ok_or("empty `if` clause")?;
                    let mut kept = Vec::new();
                    for scope in scopes {
                        if self.eval(m, cond, &scope, d).truthy()? {
                            kept.push(scope);
                        }
                    }
                    scopes = kept;
                }
                _ => {}
            }
        }
        Ok(scopes)
    }

    fn comprehension(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let Some(body) = node.child_by_field_name("body") else {
            return unknown("malformed comprehension");
        };
        match self.comprehension_scopes(m, node, locals, d) {
            Ok(scopes) => PyVal::List(scopes.iter().map(|s| self.eval(m, body, s, d)).collect()),
            Err(e) => unknown(e),
        }
    }

    fn dict_comprehension(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let Some((key, value)) = node.child_by_field_name("body").and_then(|p| {
            Some((
                p.child_by_field_name("key")?,
                p.child_by_field_name("value")?,
            ))
        }) else {
            return unknown("malformed dict comprehension");
        };
        let scopes = match self.comprehension_scopes(m, node, locals, d) {
            Ok(s) => s,
            Err(e) => return unknown(e),
        };
        let mut pairs = Vec::new();
        for scope in &scopes {
            let k = self.eval(m, key, scope, d);
            if let PyVal::Unknown(r) = k {
                return PyVal::Unknown(r);
            }
            ops::dict_set(&mut pairs, k, self.eval(m, value, scope, d));
        }
        PyVal::Dict(pairs)
    }

    /// Binds a target (`x`, `k, v`, `(a, b)`) to a value.
    fn bind(
        &self,
        m: usize,
        target: Node<'_>,
        value: PyVal,
        locals: &mut Locals,
    ) -> Result<(), String> {
        match target.kind() {
            "identifier" => {
                locals.push((self.text(m, target).to_owned(), value));
                Ok(())
            }
            "pattern_list" | "tuple_pattern" | "list_pattern" | "tuple" | "list" => {
                let parts: Vec<Node<'_>> = named_children(target);
                let items = value.iterate()?;
                if parts.len() != items.len() {
                    return Err(format!(
                        "cannot unpack {} values into {}",
                        items.len(),
                        parts.len()
                    ));
                }
                for (part, item) in parts.into_iter().zip(items) {
                    self.bind(m, part, item, locals)?;
                }
                Ok(())
            }
            "parenthesized_expression" => match first_expression(target) {
                Some(inner) => self.bind(m, inner, value, locals),
                None => Err("empty target".into()),
            },
            _ => Err(format!(
                "assigning to `{}` is not evaluated statically",
                self.text(m, target)
            )),
        }
    }

    // ------------------------------------------------------------------ calls

    fn call(&self, m: usize, node: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let (Some(func), Some(arguments)) = (
            node.child_by_field_name("function"),
            node.child_by_field_name("arguments"),
        ) else {
            return unknown("malformed call");
        };
        let func_text = self.text(m, func);
        if self.is_input(m, func_text, locals) {
            return self.input_call(m, arguments, locals, d);
        }
        let args = match self.arguments(m, arguments, locals, d) {
            Ok(a) => a,
            Err(e) => return unknown(e),
        };
        let called = |reason: String| unknown(format!("`{}(...)`: {reason}", squeeze(func_text)));
        match self.eval(m, func, locals, d) {
            PyVal::Builtin(name) => {
                lift(ops::call_builtin(name, &args.positional, &args.keywords)).map_reason(called)
            }
            PyVal::BoundMethod(value, method) => lift(ops::call_method(
                &value,
                &method,
                &args.positional,
                &args.keywords,
            ))
            .map_reason(called),
            PyVal::Function(f) => match self.function_node(&f) {
                Some(def) => self.call_function(f.module, def, &f.name, args, false, d),
                None => called("function not found".into()),
            },
            PyVal::Method(class, method) => match self.method_node(&class, &method) {
                Some(def) => self.call_function(
                    class.module,
                    def,
                    &format!("{}.{method}", class.name),
                    args,
                    true,
                    d,
                ),
                None => called("method not found".into()),
            },
            PyVal::EnumClass(class, members) => match args.positional.as_slice() {
                [v] => members
                    .into_iter()
                    .find(|mb| mb.value.py_eq(v))
                    .map_or_else(
                        || unknown(format!("no member of `{class}` has that value")),
                        PyVal::Member,
                    ),
                _ => called("enum lookup takes one value".into()),
            },
            PyVal::Unknown(r) => PyVal::Unknown(r),
            other => called(format!(
                "calling a {} is not evaluated statically",
                other.type_name()
            )),
        }
    }

    fn is_input(&self, m: usize, func_text: &str, locals: &Locals) -> bool {
        let module = &self.modules[m];
        !locals.iter().any(|(n, _)| n == func_text)
            && !matches!(module.symbols.get(func_text), Some(Symbol::Constant(_)))
            && module.is_cog_name(func_text, "Input")
    }

    fn arguments(
        &self,
        m: usize,
        node: Node<'_>,
        locals: &Locals,
        d: usize,
    ) -> Result<Args, String> {
        let mut args = Args {
            positional: Vec::new(),
            keywords: Vec::new(),
        };
        if node.kind() == "generator_expression" {
            args.positional.push(self.eval(m, node, locals, d));
            return Ok(args);
        }
        for arg in named_children(node) {
            match arg.kind() {
                "comment" => {}
                "keyword_argument" => {
                    let (Some(k), Some(v)) = (
                        arg.child_by_field_name("name"),
                        arg.child_by_field_name("value"),
                    ) else {
                        continue;
                    };
                    args.keywords
                        .push((self.text(m, k).to_owned(), self.eval(m, v, locals, d)));
                }
                "list_splat" => {
                    let inner = first_expression(arg).ok_or("empty `*`")?;
                    args.positional
                        .extend(self.eval(m, inner, locals, d).iterate()?);
                }
                "dictionary_splat" => {
                    let inner = first_expression(arg).ok_or("empty `**`")?;
                    match self.eval(m, inner, locals, d) {
                        PyVal::Dict(pairs) => {
                            for (k, v) in pairs {
                                let k = k.as_str().ok_or("`**` keys must be str")?.to_owned();
                                args.keywords.push((k, v));
                            }
                        }
                        other => return Err(format!("`**` of a {}", other.type_name())),
                    }
                }
                _ => args.positional.push(self.eval(m, arg, locals, d)),
            }
        }
        Ok(args)
    }

    /// `Input(...)`: its arguments, each evaluated (unknown ones keep their reason).
    fn input_call(&self, m: usize, arguments: Node<'_>, locals: &Locals, d: usize) -> PyVal {
        let mut out = Vec::new();
        let mut positional = 0;
        for arg in named_children(arguments) {
            let (key, value_node) = match arg.kind() {
                "comment" => continue,
                "keyword_argument" => match (
                    arg.child_by_field_name("name"),
                    arg.child_by_field_name("value"),
                ) {
                    (Some(k), Some(v)) => (Some(self.text(m, k).to_owned()), v),
                    _ => continue,
                },
                "list_splat" | "dictionary_splat" => {
                    return unknown(format!(
                        "`Input({})` spreads its arguments",
                        squeeze(self.text(m, arg))
                    ));
                }
                _ => {
                    positional += 1;
                    if positional > 1 {
                        return unknown("Input() takes one positional argument (the default)");
                    }
                    (None, arg)
                }
            };
            out.push(InputArg {
                key,
                value: self.eval(m, value_node, locals, d),
                text: squeeze(self.text(m, value_node)),
                module: m,
                line: line(value_node),
            });
        }
        PyVal::Input(out)
    }

    /// Calls a function of the project: parameters bound, then its body run as far as
    /// assignments, `if`s and `return` go.
    fn call_function(
        &self,
        m: usize,
        def: Node<'_>,
        name: &str,
        args: Args,
        is_method: bool,
        d: usize,
    ) -> PyVal {
        let Some(params) = def.child_by_field_name("parameters") else {
            return unknown(format!("`{name}` has no parameters node"));
        };
        let mut locals = match self.bind_parameters(m, params, args, is_method, d) {
            Ok(l) => l,
            Err(e) => return unknown(format!("calling `{name}`: {e}")),
        };
        let Some(body) = def.child_by_field_name("body") else {
            return unknown(format!("`{name}` has no body"));
        };
        match self.run_block(m, body, &mut locals, d) {
            Ok(Some(v)) => v,
            Ok(None) => PyVal::None,
            Err(e) => unknown(format!("`{name}` (line {}): {e}", line(def))),
        }
    }

    fn bind_parameters(
        &self,
        m: usize,
        params: Node<'_>,
        args: Args,
        is_method: bool,
        d: usize,
    ) -> Result<Locals, String> {
        let mut locals = Locals::new();
        let mut positional = args.positional.into_iter();
        let mut keywords = args.keywords;
        let mut keyword_only = false;
        for (i, param) in named_children(params).into_iter().enumerate() {
            let (name, default) = match param.kind() {
                "identifier" => (self.text(m, param), None),
                "typed_parameter" => match named_children(param)
                    .into_iter()
                    .find(|c| c.kind() == "identifier")
                {
                    Some(n) => (self.text(m, n), None),
                    None => {
                        return Err(
                            "`*args`/`**kwargs` parameters are not evaluated statically".into()
                        );
                    }
                },
                "default_parameter" | "typed_default_parameter" => (
                    param
                        .child_by_field_name("name")
                        .map_or("", |n| self.text(m, n)),
                    param.child_by_field_name("value"),
                ),
                "keyword_separator" => {
                    keyword_only = true;
                    continue;
                }
                "positional_separator" | "comment" => continue,
                _ => {
                    return Err("`*args`/`**kwargs` parameters are not evaluated statically".into());
                }
            };
            if i == 0 && is_method && matches!(name, "self" | "cls") {
                locals.push((
                    name.to_owned(),
                    PyVal::unknown(format!("`{name}` is not evaluated statically")),
                ));
                continue;
            }
            let value = if let Some(pos) = keywords.iter().position(|(k, _)| k == name) {
                keywords.remove(pos).1
            } else if let Some(v) = (!keyword_only).then(|| positional.next()).flatten() {
                v
            } else if let Some(default) = default {
                self.eval(m, default, &Vec::new(), d)
            } else {
                return Err(format!("missing argument `{name}`"));
            };
            locals.push((name.to_owned(), value));
        }
        if positional.next().is_some() || !keywords.is_empty() {
            return Err("too many arguments".into());
        }
        Ok(locals)
    }

    /// Runs a block: `Ok(Some(v))` when it returns `v`.
    fn run_block(
        &self,
        m: usize,
        block: Node<'_>,
        locals: &mut Locals,
        d: usize,
    ) -> Result<Option<PyVal>, String> {
        if d > MAX_DEPTH {
            return Err("calls are nested too deeply".into());
        }
        for stmt in named_children(block) {
            let inner = unwrap_statement(stmt);
            match inner.kind() {
                "comment" | "pass_statement" | "string" => {}
                "return_statement" => {
                    return Ok(Some(match first_expression(inner) {
                        Some(e) => self.eval(m, e, locals, d + 1),
                        None => PyVal::None,
                    }));
                }
                "assignment"
                    if inner.child_by_field_name("type").is_none()
                        || inner.child_by_field_name("right").is_some() =>
                {
                    let (Some(left), Some(right)) = (
                        inner.child_by_field_name("left"),
                        inner.child_by_field_name("right"),
                    ) else {
                        continue;
                    };
                    let value = self.eval(m, right, locals, d + 1);
                    self.bind(m, left, value, locals)?;
                }
                "if_statement" => {
                    if let Some(v) = self.run_if(m, inner, locals, d)? {
                        return Ok(Some(v));
                    }
                }
                "integer" if self.text(m, inner) == "0" && named_children(block).len() == 1 => {
                    return Err(
                        "its body was not read (only the bodies of short top-level functions are)"
                            .into(),
                    );
                }
                _ => {
                    return Err(format!(
                        "line {}: `{}` is not evaluated statically",
                        line(inner),
                        squeeze(self.text(m, inner))
                    ));
                }
            }
        }
        Ok(None)
    }

    fn run_if(
        &self,
        m: usize,
        node: Node<'_>,
        locals: &mut Locals,
        d: usize,
    ) -> Result<Option<PyVal>, String> {
        let (Some(cond), Some(body)) = (
            node.child_by_field_name("condition"),
            node.child_by_field_name("consequence"),
        ) else {
            return Err("malformed `if`".into());
        };
        if self.eval(m, cond, locals, d + 1).truthy()? {
            return self.run_block(m, body, locals, d + 1);
        }
        let mut cursor = node.walk();
        let alternatives: Vec<Node<'_>> = node
            .children_by_field_name("alternative", &mut cursor)
            .collect();
        for alt in alternatives {
            match alt.kind() {
                "elif_clause" => {
                    let (Some(c), Some(b)) = (
                        alt.child_by_field_name("condition"),
                        alt.child_by_field_name("consequence"),
                    ) else {
                        return Err("malformed `elif`".into());
                    };
                    if self.eval(m, c, locals, d + 1).truthy()? {
                        return self.run_block(m, b, locals, d + 1);
                    }
                }
                "else_clause" => {
                    let Some(b) = alt.child_by_field_name("body") else {
                        return Err("malformed `else`".into());
                    };
                    return self.run_block(m, b, locals, d + 1);
                }
                _ => {}
            }
        }
        Ok(None)
    }

    // ------------------------------------------------------------------ classes

    /// The members of an `Enum` subclass, or `None` when `class` is not one.
    pub fn enum_class(&self, m: usize, class: Node<'_>) -> Option<PyVal> {
        let src = self.src(m);
        let name = def_name(class, src)?;
        let supers = class.child_by_field_name("superclasses")?;
        let kinds: Vec<&str> = named_children(supers)
            .into_iter()
            .map(|s| last_segment(text(s, src)))
            .collect();
        let enum_kind = kinds
            .iter()
            .copied()
            .find(|k| matches!(*k, "Enum" | "IntEnum" | "StrEnum"))?;
        let mut members: Vec<EnumMember> = Vec::new();
        for stmt in named_children(class.child_by_field_name("body")?) {
            let inner = unwrap_statement(stmt);
            if inner.kind() != "assignment" {
                continue;
            }
            let (Some(left), Some(right)) = (
                inner.child_by_field_name("left"),
                inner.child_by_field_name("right"),
            ) else {
                continue;
            };
            let member = text(left, src);
            if left.kind() != "identifier" || member.starts_with('_') {
                continue;
            }
            let is_auto = right.kind() == "call"
                && right
                    .child_by_field_name("function")
                    .is_some_and(|f| last_segment(text(f, src)) == "auto");
            let value = if is_auto {
                if enum_kind == "StrEnum" {
                    PyVal::Str(member.to_lowercase())
                } else {
                    let last = members
                        .iter()
                        .filter_map(|mb| mb.value.as_int())
                        .max()
                        .unwrap_or(0);
                    PyVal::Int(last + 1)
                }
            } else {
                let v = self.expr(m, right);
                match (v, kinds.contains(&"str") || enum_kind == "StrEnum") {
                    (PyVal::Tuple(_), _) => {
                        PyVal::unknown(format!("enum member `{name}.{member}` has a tuple value"))
                    }
                    (v, _) => v,
                }
            };
            members.push(EnumMember {
                class: name.to_owned(),
                name: member.to_owned(),
                value: Box::new(value),
            });
        }
        Some(PyVal::EnumClass(name.to_owned(), members))
    }
}

trait MapReason {
    fn map_reason(self, f: impl FnOnce(String) -> PyVal) -> PyVal;
}

impl MapReason for PyVal {
    fn map_reason(self, f: impl FnOnce(String) -> PyVal) -> PyVal {
        match self {
            PyVal::Unknown(r) => f(r),
            v => v,
        }
    }
}

/// The first named child that is not a comment.
fn first_expression(node: Node<'_>) -> Option<Node<'_>> {
    named_children(node)
        .into_iter()
        .find(|c| c.kind() != "comment")
}

/// Source text on one line, for messages.
pub fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Keeps `DefRef` constructible from the module walker.
pub fn def_ref(module: usize, name: &str) -> DefRef {
    DefRef {
        module,
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::module::Symbol;
    use super::super::project::Project;
    use super::super::pyval::PyVal;
    use crate::schema::model::Value;

    /// The module-level constant `name` after loading `src` as the runner file.
    fn constant(src: &str, name: &str) -> PyVal {
        let mut project = Project::new(Path::new("/nonexistent"));
        project
            .load_source(Path::new("predict.py"), src.to_owned())
            .expect("parses");
        match project.modules[0].symbols.get(name) {
            Some(Symbol::Constant(v)) => v.clone(),
            other => panic!("{name} is not a constant: {other:?}"),
        }
    }

    fn value(src: &str, name: &str) -> Value {
        constant(src, name)
            .to_value()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn strs(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::Str((*s).to_owned())).collect())
    }

    fn ints(items: &[i64]) -> Value {
        Value::List(items.iter().map(|i| Value::Int(*i)).collect())
    }

    #[test]
    fn dict_keys_values_items_sorted_and_list() {
        let src = "D = {'b': 1, 'a': 2}\nK = list(D.keys())\nV = sorted(D.values())\nS = sorted(D)\nI = [k + str(v) for k, v in D.items()]\nR = sorted(D, reverse=True)\n";
        assert_eq!(value(src, "K"), strs(&["b", "a"]));
        assert_eq!(value(src, "V"), ints(&[1, 2]));
        assert_eq!(value(src, "S"), strs(&["a", "b"]));
        assert_eq!(value(src, "I"), strs(&["b1", "a2"]));
        assert_eq!(value(src, "R"), strs(&["b", "a"]));
    }

    #[test]
    fn dict_values_that_are_classes_keep_their_keys() {
        let src = "class A: pass\nclass B: pass\nS = {'a': A, 'b': B}\nK = list(S.keys())\nV = list(S.values())\n";
        assert_eq!(value(src, "K"), strs(&["a", "b"]));
        assert!(
            constant(src, "V").to_value().is_err(),
            "classes are not values"
        );
    }

    #[test]
    fn ranges_comprehensions_and_arithmetic() {
        let src = "R = list(range(0, 10, 3))\nC = [x * x for x in range(4) if x % 2 == 0]\nN = 2 ** 10 // 3 - 1\nT = tuple(i for i in [3, 1])\nM = max(R) + min(R)\nL = len('héllo')\nF = 1 / 4\n";
        assert_eq!(value(src, "R"), ints(&[0, 3, 6, 9]));
        assert_eq!(value(src, "C"), ints(&[0, 4]));
        assert_eq!(value(src, "N"), Value::Int(340));
        assert_eq!(value(src, "T"), ints(&[3, 1]));
        assert_eq!(value(src, "M"), Value::Int(9));
        assert_eq!(value(src, "L"), Value::Int(5));
        assert_eq!(value(src, "F"), Value::Float(0.25));
    }

    #[test]
    fn string_methods_and_fstrings() {
        let src = "NAME = 'sdxl'\nU = NAME.upper()\nJ = ', '.join(['a', 'b'])\nP = f'model {NAME} v{1 + 1}'\nS = 'a,b, c'.split(',')\nR = ' x '.strip().replace('x', 'y')\nT = 'hello world'.title()\nFMT = '{} and {name}'.format(1, name='n')\n";
        assert_eq!(value(src, "U"), Value::Str("SDXL".into()));
        assert_eq!(value(src, "J"), Value::Str("a, b".into()));
        assert_eq!(value(src, "P"), Value::Str("model sdxl v2".into()));
        assert_eq!(value(src, "S"), strs(&["a", "b", " c"]));
        assert_eq!(value(src, "R"), Value::Str("y".into()));
        assert_eq!(value(src, "T"), Value::Str("Hello World".into()));
        assert_eq!(value(src, "FMT"), Value::Str("1 and n".into()));
    }

    #[test]
    fn enums_and_conditionals() {
        let src = "from enum import Enum, auto\nclass Mode(str, Enum):\n    FAST = 'fast'\n    SLOW = 'slow'\nclass N(Enum):\n    ONE = auto()\n    TWO = auto()\nV = [m.value for m in Mode]\nD = Mode.FAST.value\nNAMES = [m.name.lower() for m in Mode]\nA = [n.value for n in N]\nDEBUG = False\nC = 'fp32' if DEBUG else 'fp16'\nL = Mode('slow').name\n";
        assert_eq!(value(src, "V"), strs(&["fast", "slow"]));
        assert_eq!(value(src, "D"), Value::Str("fast".into()));
        assert_eq!(value(src, "NAMES"), strs(&["fast", "slow"]));
        assert_eq!(value(src, "A"), ints(&[1, 2]));
        assert_eq!(value(src, "C"), Value::Str("fp16".into()));
        assert_eq!(value(src, "L"), Value::Str("SLOW".into()));
    }

    #[test]
    fn module_level_changes_are_followed() {
        let src = "X = ['a']\nX.append('b')\nX += ['c']\nX.extend(('d',))\nD = {}\nD['k'] = 1\nD.update({'j': 2})\n";
        assert_eq!(value(src, "X"), strs(&["a", "b", "c", "d"]));
        assert_eq!(
            value(src, "D"),
            Value::Dict(vec![
                (Value::Str("k".into()), Value::Int(1)),
                (Value::Str("j".into()), Value::Int(2)),
            ])
        );
    }

    #[test]
    fn names_assigned_in_blocks_are_unknown_not_stale() {
        let src = "import os\nX = ['a']\nif os.environ.get('BIG'):\n    X = ['a', 'b']\nY = [1]\nfor i in range(3):\n    Y.append(i)\nZ = 1\nif __name__ == '__main__':\n    Z = 2\n";
        let PyVal::Unknown(reason) = constant(src, "X") else {
            panic!("X should be unknown");
        };
        assert!(
            reason.contains("inside the `if` at predict.py:3"),
            "{reason}"
        );
        assert!(constant(src, "Y").is_unknown());
        assert_eq!(value(src, "Z"), Value::Int(1));
    }

    #[test]
    fn small_functions_are_called() {
        let src = "FP16 = True\ndef precision(default='x'):\n    if FP16:\n        return 'fp16'\n    return default\ndef choices(n):\n    base = ['a', 'b']\n    return base[:n]\nP = precision()\nC = choices(1)\nD = {'a': precision, 'b': 2}\n";
        assert_eq!(value(src, "P"), Value::Str("fp16".into()));
        assert_eq!(value(src, "C"), strs(&["a"]));
    }

    #[test]
    fn self_calling_helpers_stop() {
        let src = "def f(n):\n    return f(n) + f(n)\nX = f(1)\n";
        assert!(constant(src, "X").is_unknown());
    }

    #[test]
    fn unknown_names_say_where_they_come_from() {
        let src = "import torch\nfrom helpers import names\nA = torch.cuda.device_count()\nB = sorted(names())\nC = [undefined_name]\n";
        let reason = |n: &str| constant(src, n).to_value().expect_err(n);
        assert!(
            reason("A").contains("the module `torch`"),
            "{}",
            reason("A")
        );
        assert!(
            reason("B").contains("imported from `helpers`"),
            "{}",
            reason("B")
        );
        assert!(reason("C").contains("not defined"), "{}", reason("C"));
    }
}
