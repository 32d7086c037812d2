//! Python operators, builtins and methods of data values, as the static evaluator applies
//! them. Each returns `Err(reason)` for what it cannot compute exactly.

use super::pyval::PyVal;

/// The builtins the evaluator knows (pure functions of their arguments).
pub const BUILTINS: &[&str] = &[
    "list",
    "tuple",
    "sorted",
    "reversed",
    "len",
    "range",
    "str",
    "int",
    "float",
    "bool",
    "min",
    "max",
    "sum",
    "dict",
    "enumerate",
    "zip",
    "abs",
    "any",
    "all",
    "round",
];

pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS.iter().copied().find(|b| *b == name)
}

type Res = Result<PyVal, String>;

fn one(name: &str, args: &[PyVal]) -> Result<PyVal, String> {
    match args {
        [a] => Ok(a.clone()),
        _ => Err(format!("{name}() takes one argument here")),
    }
}

fn kwarg<'a>(kwargs: &'a [(String, PyVal)], key: &str) -> Option<&'a PyVal> {
    kwargs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn no_kwargs(name: &str, kwargs: &[(String, PyVal)], allowed: &[&str]) -> Result<(), String> {
    match kwargs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(format!("{name}({k}=...) is not evaluated statically")),
        None => Ok(()),
    }
}

/// Calls a builtin.
pub fn call_builtin(name: &str, args: &[PyVal], kwargs: &[(String, PyVal)]) -> Res {
    if let Some(PyVal::Unknown(r)) = args
        .iter()
        .chain(kwargs.iter().map(|(_, v)| v))
        .find(|a| a.is_unknown())
    {
        return Err(r.clone());
    }
    let allowed: &[&str] = match name {
        "sorted" => &["reverse"],
        "enumerate" => &["start"],
        _ => &[],
    };
    if name != "dict" {
        no_kwargs(name, kwargs, allowed)?;
    }
    match name {
        "list" if args.is_empty() => Ok(PyVal::List(Vec::new())),
        "tuple" if args.is_empty() => Ok(PyVal::Tuple(Vec::new())),
        "list" => Ok(PyVal::List(one(name, args)?.iterate()?)),
        "tuple" => Ok(PyVal::Tuple(one(name, args)?.iterate()?)),
        "sorted" => {
            let mut items = one(name, args)?.iterate()?;
            sort(&mut items)?;
            if kwarg(kwargs, "reverse").map(PyVal::truthy).transpose()? == Some(true) {
                items.reverse();
            }
            Ok(PyVal::List(items))
        }
        "reversed" => {
            let mut items = one(name, args)?.iterate()?;
            items.reverse();
            Ok(PyVal::List(items))
        }
        "len" => {
            let n = match one(name, args)? {
                PyVal::Str(s) => s.chars().count(),
                other => other.iterate()?.len(),
            };
            Ok(PyVal::Int(n as i64))
        }
        "range" => range(args),
        "str" => Ok(PyVal::Str(match args {
            [] => String::new(),
            [a] => a.py_str()?,
            _ => return Err("str() takes one argument here".into()),
        })),
        "int" => match one(name, args)? {
            PyVal::Str(s) => s
                .trim()
                .replace('_', "")
                .parse::<i64>()
                .map(PyVal::Int)
                .map_err(|_| format!("int('{s}') is not an integer")),
            PyVal::Float(f) if f.is_finite() => Ok(PyVal::Int(f.trunc() as i64)),
            other => other
                .as_int()
                .map(PyVal::Int)
                .ok_or_else(|| format!("int() of a {}", other.type_name())),
        },
        "float" => match one(name, args)? {
            PyVal::Str(s) => s
                .trim()
                .parse::<f64>()
                .map(PyVal::Float)
                .map_err(|_| format!("float('{s}') is not a number")),
            other => other
                .as_f64()
                .map(PyVal::Float)
                .ok_or_else(|| format!("float() of a {}", other.type_name())),
        },
        "bool" => Ok(PyVal::Bool(one(name, args)?.truthy()?)),
        "min" | "max" => {
            let mut items = if args.len() == 1 {
                args[0].iterate()?
            } else {
                args.to_vec()
            };
            sort(&mut items)?;
            let pick = if name == "min" {
                items.first()
            } else {
                items.last()
            };
            pick.cloned()
                .ok_or_else(|| format!("{name}() of an empty sequence"))
        }
        "sum" => {
            let items = one(name, args)?.iterate()?;
            items
                .into_iter()
                .try_fold(PyVal::Int(0), |acc, x| binary("+", &acc, &x))
        }
        "dict" => {
            let mut pairs = match args {
                [] => Vec::new(),
                [a] => to_pairs(a)?,
                _ => return Err("dict() takes one argument here".into()),
            };
            for (k, v) in kwargs {
                dict_set(&mut pairs, PyVal::Str(k.clone()), v.clone());
            }
            Ok(PyVal::Dict(pairs))
        }
        "enumerate" => {
            let start = kwarg(kwargs, "start")
                .or(args.get(1))
                .map_or(Some(0), PyVal::as_int)
                .ok_or("enumerate(start=) must be an int")?;
            let items = args
                .first()
                .ok_or("enumerate() needs an argument")?
                .iterate()?;
            Ok(PyVal::List(
                items
                    .into_iter()
                    .zip(start..)
                    .map(|(x, i)| PyVal::Tuple(vec![PyVal::Int(i), x]))
                    .collect(),
            ))
        }
        "zip" => {
            let lists = args
                .iter()
                .map(PyVal::iterate)
                .collect::<Result<Vec<_>, _>>()?;
            let n = lists.iter().map(Vec::len).min().unwrap_or(0);
            Ok(PyVal::List(
                (0..n)
                    .map(|i| PyVal::Tuple(lists.iter().map(|l| l[i].clone()).collect()))
                    .collect(),
            ))
        }
        "abs" => match one(name, args)? {
            PyVal::Int(i) => Ok(PyVal::Int(i.abs())),
            PyVal::Float(f) => Ok(PyVal::Float(f.abs())),
            other => Err(format!("abs() of a {}", other.type_name())),
        },
        "any" | "all" => {
            let truths = one(name, args)?
                .iterate()?
                .iter()
                .map(PyVal::truthy)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(PyVal::Bool(if name == "any" {
                truths.into_iter().any(|t| t)
            } else {
                truths.into_iter().all(|t| t)
            }))
        }
        "round" => match args {
            [PyVal::Float(f)] => Ok(PyVal::Int(round_half_even(*f) as i64)),
            [PyVal::Int(i)] => Ok(PyVal::Int(*i)),
            _ => Err("round() is evaluated only with one number".into()),
        },
        _ => Err(format!("{name}() is not evaluated statically")),
    }
}

fn round_half_even(f: f64) -> f64 {
    let r = f.round();
    let halfway = ((f - f.trunc()).abs() - 0.5).abs() < f64::EPSILON;
    if halfway && r % 2.0 != 0.0 {
        r - f.signum()
    } else {
        r
    }
}

fn range(args: &[PyVal]) -> Res {
    let ints = args
        .iter()
        .map(|a| a.as_int().ok_or("range() arguments must be ints"))
        .collect::<Result<Vec<_>, _>>()?;
    let (start, stop, step) = match ints.as_slice() {
        [stop] => (0, *stop, 1),
        [start, stop] => (*start, *stop, 1),
        [start, stop, step] if *step != 0 => (*start, *stop, *step),
        _ => return Err("range() takes 1 to 3 arguments (step not 0)".into()),
    };
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        if out.len() >= 100_000 {
            return Err("range() is too long to evaluate statically".into());
        }
        out.push(PyVal::Int(i));
        i += step;
    }
    Ok(PyVal::List(out))
}

fn to_pairs(v: &PyVal) -> Result<Vec<(PyVal, PyVal)>, String> {
    if let PyVal::Dict(pairs) = v {
        return Ok(pairs.clone());
    }
    let mut pairs = Vec::new();
    for item in v.iterate()? {
        match item.iterate()?.as_slice() {
            [k, v] => dict_set(&mut pairs, k.clone(), v.clone()),
            _ => return Err("dict() items must be pairs".into()),
        }
    }
    Ok(pairs)
}

pub fn dict_set(pairs: &mut Vec<(PyVal, PyVal)>, key: PyVal, value: PyVal) {
    match pairs.iter_mut().find(|(k, _)| k.py_eq(&key)) {
        Some(slot) => slot.1 = value,
        None => pairs.push((key, value)),
    }
}

/// Python's ordering for `sorted`, `min`, `max`: numbers with numbers, strings with strings.
fn compare(a: &PyVal, b: &PyVal) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (PyVal::Str(x), PyVal::Str(y)) => Ok(x.cmp(y)),
        (PyVal::List(left), PyVal::List(right)) | (PyVal::Tuple(left), PyVal::Tuple(right)) => {
            for (l, r) in left.iter().zip(right) {
                let order = compare(l, r)?;
                if order.is_ne() {
                    return Ok(order);
                }
            }
            Ok(left.len().cmp(&right.len()))
        }
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| "cannot order NaN".to_owned()),
            _ => Err(format!(
                "cannot order a {} and a {}",
                a.type_name(),
                b.type_name()
            )),
        },
    }
}

fn sort(items: &mut [PyVal]) -> Result<(), String> {
    let mut failure = None;
    items.sort_by(|a, b| {
        compare(a, b).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            std::cmp::Ordering::Equal
        })
    });
    failure.map_or(Ok(()), Err)
}

/// `a <op> b` for the arithmetic and sequence operators.
pub fn binary(op: &str, a: &PyVal, b: &PyVal) -> Res {
    use PyVal::{Float, List, Str, Tuple};
    if let PyVal::Unknown(r) = a {
        return Err(r.clone());
    }
    if let PyVal::Unknown(r) = b {
        return Err(r.clone());
    }
    let a = unwrap_member(a);
    let b = unwrap_member(b);
    match (op, &a, &b) {
        ("+", Str(x), Str(y)) => Ok(Str(format!("{x}{y}"))),
        ("+", List(x), List(y)) => Ok(List([x.clone(), y.clone()].concat())),
        ("+", Tuple(x), Tuple(y)) => Ok(Tuple([x.clone(), y.clone()].concat())),
        ("*", Str(s), n) | ("*", n, Str(s)) if n.as_int().is_some() => {
            Ok(Str(s.repeat(n.as_int().unwrap_or(0).max(0) as usize)))
        }
        ("*", List(s), n) | ("*", n, List(s)) if n.as_int().is_some() => {
            let times = n.as_int().unwrap_or(0).max(0) as usize;
            Ok(List(
                s.iter().cloned().cycle().take(s.len() * times).collect(),
            ))
        }
        ("|", PyVal::Dict(x), PyVal::Dict(y)) => {
            let mut pairs = x.clone();
            for (k, v) in y {
                dict_set(&mut pairs, k.clone(), v.clone());
            }
            Ok(PyVal::Dict(pairs))
        }
        ("%", Str(_), _) => Err("%-formatting is not evaluated statically".into()),
        _ => match (a.as_int(), b.as_int()) {
            (Some(x), Some(y)) if !matches!(a, Float(_)) && !matches!(b, Float(_)) => {
                int_op(op, x, y)
            }
            _ => match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => float_op(op, x, y),
                _ => Err(format!(
                    "`{op}` between a {} and a {} is not evaluated statically",
                    a.type_name(),
                    b.type_name()
                )),
            },
        },
    }
}

fn unwrap_member(v: &PyVal) -> PyVal {
    match v {
        PyVal::Member(m) => (*m.value).clone(),
        other => other.clone(),
    }
}

fn int_op(op: &str, x: i64, y: i64) -> Res {
    let overflow = || "integer overflow".to_owned();
    let zero = || "division by zero".to_owned();
    Ok(PyVal::Int(match op {
        "+" => x.checked_add(y).ok_or_else(overflow)?,
        "-" => x.checked_sub(y).ok_or_else(overflow)?,
        "*" => x.checked_mul(y).ok_or_else(overflow)?,
        "//" | "%" | "/" if y == 0 => return Err(zero()),
        "//" => x.div_euclid(y) - i64::from(y < 0 && x.rem_euclid(y) != 0),
        "%" => {
            let r = x.rem_euclid(y);
            if y < 0 && r != 0 { r + y } else { r }
        }
        "**" if y >= 0 => x
            .checked_pow(u32::try_from(y).map_err(|_| overflow())?)
            .ok_or_else(overflow)?,
        "**" => return Ok(PyVal::Float((x as f64).powf(y as f64))),
        "/" => return Ok(PyVal::Float(x as f64 / y as f64)),
        "<<" => x
            .checked_shl(u32::try_from(y).map_err(|_| overflow())?)
            .ok_or_else(overflow)?,
        ">>" => x >> y.clamp(0, 63),
        "&" => x & y,
        "|" => x | y,
        "^" => x ^ y,
        _ => return Err(format!("`{op}` is not evaluated statically")),
    }))
}

fn float_op(op: &str, x: f64, y: f64) -> Res {
    let v = match op {
        "+" => x + y,
        "-" => x - y,
        "*" => x * y,
        "/" | "//" | "%" if y == 0.0 => return Err("division by zero".into()),
        "/" => x / y,
        "//" => (x / y).floor(),
        "%" => x - y * (x / y).floor(),
        "**" => x.powf(y),
        _ => return Err(format!("`{op}` on floats is not evaluated statically")),
    };
    if v.is_finite() {
        Ok(PyVal::Float(v))
    } else {
        Err("the result is not a finite number".into())
    }
}

/// One comparison `a <op> b`.
pub fn compare_op(op: &str, a: &PyVal, b: &PyVal) -> Result<bool, String> {
    if let PyVal::Unknown(r) = a {
        return Err(r.clone());
    }
    if let PyVal::Unknown(r) = b {
        return Err(r.clone());
    }
    Ok(match op {
        "==" => a.py_eq(b),
        "!=" => !a.py_eq(b),
        "is" => a == b && matches!(a, PyVal::None | PyVal::Bool(_)),
        "is not" => !(a == b && matches!(a, PyVal::None | PyVal::Bool(_))),
        "in" | "not in" => {
            let found = match (a, b) {
                (PyVal::Str(x), PyVal::Str(y)) => y.contains(x.as_str()),
                _ => b.iterate()?.iter().any(|x| x.py_eq(a)),
            };
            found == (op == "in")
        }
        "<" => compare(a, b)?.is_lt(),
        "<=" => compare(a, b)?.is_le(),
        ">" => compare(a, b)?.is_gt(),
        ">=" => compare(a, b)?.is_ge(),
        _ => return Err(format!("`{op}` is not evaluated statically")),
    })
}

/// `value[index]`.
pub fn index(value: &PyVal, key: &PyVal) -> Res {
    match value {
        PyVal::Dict(pairs) => pairs
            .iter()
            .find(|(k, _)| k.py_eq(key))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format!(
                    "key {} is not in the dict",
                    key.py_repr().unwrap_or_default()
                )
            }),
        PyVal::List(items) | PyVal::Tuple(items) => {
            let i = key.as_int().ok_or("list indices must be ints")?;
            let at = if i < 0 { items.len() as i64 + i } else { i };
            usize::try_from(at)
                .ok()
                .and_then(|at| items.get(at))
                .cloned()
                .ok_or_else(|| "list index out of range".into())
        }
        PyVal::Str(s) => {
            let chars: Vec<char> = s.chars().collect();
            let i = key.as_int().ok_or("string indices must be ints")?;
            let at = if i < 0 { chars.len() as i64 + i } else { i };
            usize::try_from(at)
                .ok()
                .and_then(|at| chars.get(at))
                .map(|c| PyVal::Str(c.to_string()))
                .ok_or_else(|| "string index out of range".into())
        }
        PyVal::Unknown(r) => Err(r.clone()),
        other => Err(format!(
            "a {} cannot be indexed statically",
            other.type_name()
        )),
    }
}

/// `value[start:stop]` (no step).
pub fn slice(value: &PyVal, start: Option<i64>, stop: Option<i64>) -> Res {
    let bounds = |len: usize| {
        let len = len as i64;
        let fix = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
        let s = start.map_or(0, fix);
        let e = stop.map_or(len, fix);
        (s as usize, (e.max(s)) as usize)
    };
    match value {
        PyVal::List(items) => {
            let (s, e) = bounds(items.len());
            Ok(PyVal::List(items[s..e].to_vec()))
        }
        PyVal::Tuple(items) => {
            let (s, e) = bounds(items.len());
            Ok(PyVal::Tuple(items[s..e].to_vec()))
        }
        PyVal::Str(text) => {
            let chars: Vec<char> = text.chars().collect();
            let (s, e) = bounds(chars.len());
            Ok(PyVal::Str(chars[s..e].iter().collect()))
        }
        PyVal::Unknown(r) => Err(r.clone()),
        other => Err(format!(
            "a {} cannot be sliced statically",
            other.type_name()
        )),
    }
}

/// `value.attr` for data values (enum members' `value` and `name`).
pub fn attribute(value: &PyVal, attr: &str) -> Res {
    match (value, attr) {
        (PyVal::Member(m), "value") => Ok((*m.value).clone()),
        (PyVal::Member(m), "name") => Ok(PyVal::Str(m.name.clone())),
        (PyVal::Unknown(r), _) => Err(r.clone()),
        (PyVal::Str(_) | PyVal::Dict(_) | PyVal::List(_) | PyVal::Tuple(_), _) => {
            Ok(PyVal::BoundMethod(Box::new(value.clone()), attr.to_owned()))
        }
        (PyVal::Member(m), _) if m.value.as_str().is_some() => Ok(PyVal::BoundMethod(
            Box::new((*m.value).clone()),
            attr.to_owned(),
        )),
        _ => Err(format!(
            "attribute `{attr}` of a {} is not evaluated statically",
            value.type_name()
        )),
    }
}

/// `value.method(args)` for strings, dicts and lists.
pub fn call_method(value: &PyVal, method: &str, args: &[PyVal], kwargs: &[(String, PyVal)]) -> Res {
    if let Some(PyVal::Unknown(r)) = args.iter().find(|a| a.is_unknown()) {
        return Err(r.clone());
    }
    if method != "format" {
        no_kwargs(method, kwargs, &["sep", "maxsplit"])?;
    }
    match value {
        PyVal::Str(s) => str_method(s, method, args, kwargs),
        PyVal::Dict(pairs) => match (method, args) {
            ("keys", []) => Ok(PyVal::List(pairs.iter().map(|(k, _)| k.clone()).collect())),
            ("values", []) => Ok(PyVal::List(pairs.iter().map(|(_, v)| v.clone()).collect())),
            ("items", []) => Ok(PyVal::List(
                pairs
                    .iter()
                    .map(|(k, v)| PyVal::Tuple(vec![k.clone(), v.clone()]))
                    .collect(),
            )),
            ("get", [k]) => Ok(index(value, k).unwrap_or(PyVal::None)),
            ("get", [k, default]) => Ok(index(value, k).unwrap_or_else(|_| default.clone())),
            ("copy", []) => Ok(value.clone()),
            _ => Err(format!("dict.{method}() is not evaluated statically")),
        },
        PyVal::List(items) | PyVal::Tuple(items) => match (method, args) {
            ("copy", []) => Ok(value.clone()),
            ("index", [x]) => items
                .iter()
                .position(|i| i.py_eq(x))
                .map(|i| PyVal::Int(i as i64))
                .ok_or_else(|| "value is not in the list".into()),
            ("count", [x]) => Ok(PyVal::Int(
                items.iter().filter(|i| i.py_eq(x)).count() as i64
            )),
            _ => Err(format!("list.{method}() is not evaluated statically")),
        },
        PyVal::Unknown(r) => Err(r.clone()),
        other => Err(format!(
            "{}.{method}() is not evaluated statically",
            other.type_name()
        )),
    }
}

fn str_arg(args: &[PyVal], i: usize) -> Result<Option<&str>, String> {
    match args.get(i) {
        None | Some(PyVal::None) => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| "expected a str argument".into()),
    }
}

fn str_method(s: &str, method: &str, args: &[PyVal], kwargs: &[(String, PyVal)]) -> Res {
    let text = |v: String| Ok(PyVal::Str(v));
    let strip_set = |i| -> Result<Vec<char>, String> {
        Ok(str_arg(args, i)?.map_or_else(
            || vec![' ', '\t', '\n', '\r', '\x0b', '\x0c'],
            |c| c.chars().collect(),
        ))
    };
    match method {
        "upper" => text(s.to_uppercase()),
        "lower" | "casefold" => text(s.to_lowercase()),
        "strip" => text(s.trim_matches(strip_set(0)?.as_slice()).to_owned()),
        "lstrip" => text(s.trim_start_matches(strip_set(0)?.as_slice()).to_owned()),
        "rstrip" => text(s.trim_end_matches(strip_set(0)?.as_slice()).to_owned()),
        "title" => text(title(s)),
        "capitalize" => {
            let mut chars = s.chars();
            text(chars.next().map_or_else(String::new, |c| {
                c.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase()
            }))
        }
        "replace" => match (str_arg(args, 0)?, str_arg(args, 1)?) {
            (Some(a), Some(b)) if args.len() == 2 => text(s.replace(a, b)),
            _ => Err("str.replace() takes two strings here".into()),
        },
        "removeprefix" => text(
            s.strip_prefix(str_arg(args, 0)?.unwrap_or(""))
                .unwrap_or(s)
                .to_owned(),
        ),
        "removesuffix" => text(
            s.strip_suffix(str_arg(args, 0)?.unwrap_or(""))
                .unwrap_or(s)
                .to_owned(),
        ),
        "startswith" => Ok(PyVal::Bool(s.starts_with(str_arg(args, 0)?.unwrap_or("")))),
        "endswith" => Ok(PyVal::Bool(s.ends_with(str_arg(args, 0)?.unwrap_or("")))),
        "split" => {
            let sep = match kwarg(kwargs, "sep") {
                Some(v) => v.as_str().map(str::to_owned),
                None => str_arg(args, 0)?.map(str::to_owned),
            };
            if args.len() > 1 || kwarg(kwargs, "maxsplit").is_some() {
                return Err("str.split(maxsplit) is not evaluated statically".into());
            }
            let parts: Vec<PyVal> = match sep {
                Some(sep) if sep.is_empty() => return Err("empty separator".into()),
                Some(sep) => s
                    .split(sep.as_str())
                    .map(|p| PyVal::Str(p.to_owned()))
                    .collect(),
                None => s
                    .split_whitespace()
                    .map(|p| PyVal::Str(p.to_owned()))
                    .collect(),
            };
            Ok(PyVal::List(parts))
        }
        "join" => {
            let items = args
                .first()
                .ok_or("str.join() needs an argument")?
                .iterate()?;
            let parts = items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or("str.join() items must be str")
                })
                .collect::<Result<Vec<_>, _>>()?;
            text(parts.join(s))
        }
        "format" => format(s, args, kwargs),
        _ => Err(format!("str.{method}() is not evaluated statically")),
    }
}

/// Python's `str.title()`: a letter after a non-letter is upper-cased, others lower-cased.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if c.is_alphabetic() {
            if prev_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(c);
            prev_letter = false;
        }
    }
    out
}

/// `"...".format(...)` with `{}`, `{0}` and `{name}` fields (no format specs).
fn format(template: &str, args: &[PyVal], kwargs: &[(String, PyVal)]) -> Res {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let field: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let value = if field.is_empty() {
                    next += 1;
                    args.get(next - 1)
                } else if let Ok(i) = field.parse::<usize>() {
                    args.get(i)
                } else if field.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    kwarg(kwargs, &field)
                } else {
                    return Err(format!(
                        "format field {{{field}}} is not evaluated statically"
                    ));
                };
                out.push_str(&value.ok_or("format() is missing an argument")?.py_str()?);
            }
            c => out.push(c),
        }
    }
    Ok(PyVal::Str(out))
}

/// Applies a mutating method call on a module-level constant (`X.append(v)`), returning
/// `Err` for methods whose effect is not modelled.
pub fn mutate(target: &mut PyVal, method: &str, args: &[PyVal]) -> Result<(), String> {
    if let Some(PyVal::Unknown(r)) = args.iter().find(|a| a.is_unknown()) {
        return Err(r.clone());
    }
    match (target, method, args) {
        (PyVal::List(items), "append", [x]) => items.push(x.clone()),
        (PyVal::List(items), "extend", [x]) => items.extend(x.iterate()?),
        (PyVal::List(items), "insert", [i, x]) => {
            let i = i.as_int().ok_or("insert() index must be an int")?;
            let len = items.len() as i64;
            let at = if i < 0 { (len + i).max(0) } else { i.min(len) };
            items.insert(at as usize, x.clone());
        }
        (PyVal::List(items), "sort", []) => sort(items)?,
        (PyVal::List(items), "reverse", []) => items.reverse(),
        (PyVal::List(items), "clear", []) => items.clear(),
        (PyVal::Dict(pairs), "update", [other]) => {
            for (k, v) in to_pairs(other)? {
                dict_set(pairs, k, v);
            }
        }
        (PyVal::Dict(pairs), "clear", []) => pairs.clear(),
        (PyVal::Dict(pairs), "setdefault", [k, v]) => {
            if !pairs.iter().any(|(x, _)| x.py_eq(k)) {
                pairs.push((k.clone(), v.clone()));
            }
        }
        (_, method, _) => {
            return Err(format!(
                "`.{method}(...)` changes it in a way not evaluated statically"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> PyVal {
        PyVal::Str(x.to_owned())
    }

    #[test]
    fn sorted_and_keys() {
        let d = PyVal::Dict(vec![
            (s("b"), PyVal::Int(1)),
            (s("a"), PyVal::unknown("class")),
        ]);
        let keys = call_method(&d, "keys", &[], &[]).unwrap();
        let sorted = call_builtin("sorted", &[keys], &[]).unwrap();
        assert_eq!(sorted, PyVal::List(vec![s("a"), s("b")]));
        let values = call_method(&d, "values", &[], &[]).unwrap();
        assert!(
            values.to_value().is_err(),
            "an unknown value is not dropped"
        );
    }

    #[test]
    fn python_integer_division() {
        assert_eq!(
            binary("//", &PyVal::Int(-7), &PyVal::Int(2)),
            Ok(PyVal::Int(-4))
        );
        assert_eq!(
            binary("%", &PyVal::Int(-7), &PyVal::Int(2)),
            Ok(PyVal::Int(1))
        );
        assert_eq!(
            binary("%", &PyVal::Int(7), &PyVal::Int(-2)),
            Ok(PyVal::Int(-1))
        );
        assert_eq!(
            binary("/", &PyVal::Int(1), &PyVal::Int(4)),
            Ok(PyVal::Float(0.25))
        );
    }

    #[test]
    fn string_methods() {
        assert_eq!(
            str_method("hello world", "title", &[], &[]),
            Ok(s("Hello World"))
        );
        assert_eq!(
            str_method("a,b", "split", &[s(",")], &[]),
            Ok(PyVal::List(vec![s("a"), s("b")]))
        );
        assert_eq!(
            str_method(
                "{}-{x}",
                "format",
                &[PyVal::Int(1)],
                &[("x".into(), s("y"))]
            ),
            Ok(s("1-y"))
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(
            range(&[PyVal::Int(0), PyVal::Int(10), PyVal::Int(4)]),
            Ok(PyVal::List(vec![
                PyVal::Int(0),
                PyVal::Int(4),
                PyVal::Int(8)
            ]))
        );
        assert_eq!(
            range(&[PyVal::Int(3), PyVal::Int(0), PyVal::Int(-1)])
                .unwrap()
                .iterate()
                .unwrap()
                .len(),
            3
        );
    }
}
