//! Values of the static evaluator: what a module-level expression of the project evaluates to,
//! without running Python. Anything the evaluator cannot compute is [`PyVal::Unknown`] with
//! the reason, so a value is never dropped silently: it fails where it is used.

use crate::schema::model::Value;

/// One argument of an `Input(...)` call, evaluated where the call is written.
#[derive(Debug, Clone, PartialEq)]
pub struct InputArg {
    /// The keyword, or `None` for the positional default.
    pub key: Option<String>,
    pub value: PyVal,
    /// The argument's source text, for messages.
    pub text: String,
    /// The module (index into the project) and 1-based line of the argument.
    pub module: usize,
    pub line: usize,
}

/// A callable or class the evaluator can look into: (module index, name; for a method,
/// `Class.method`).
#[derive(Debug, Clone, PartialEq)]
pub struct DefRef {
    pub module: usize,
    pub name: String,
}

/// An enum member: `Class.NAME`, whose value is the member's value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumMember {
    pub class: String,
    pub name: String,
    pub value: Box<PyVal>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PyVal {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PyVal>),
    Tuple(Vec<PyVal>),
    /// Keys and values in insertion order.
    Dict(Vec<(PyVal, PyVal)>),
    /// An `Enum` subclass: its name and members in definition order.
    EnumClass(String, Vec<EnumMember>),
    Member(EnumMember),
    /// The result of `cog.Input(...)`.
    Input(Vec<InputArg>),
    /// A module-level function.
    Function(DefRef),
    /// A class that is not an enum (its attributes and methods can be read).
    Class(DefRef),
    /// A method looked up on a class: (class, method name).
    Method(DefRef, String),
    /// A builtin function (`list`, `sorted`, ...), not shadowed in the module.
    Builtin(&'static str),
    /// A method of a value (`"a,b".split`, `D.keys`), waiting for its call.
    BoundMethod(Box<PyVal>, String),
    /// Not computable statically; the reason names what stopped the evaluation.
    Unknown(String),
}

impl PyVal {
    pub fn unknown(reason: impl Into<String>) -> PyVal {
        PyVal::Unknown(reason.into())
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, PyVal::Unknown(_))
    }

    /// Whether this is plain data (what a constant, default or choice can be).
    pub fn is_data(&self) -> bool {
        self.to_value().is_ok()
    }

    /// Python's type name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyVal::None => "NoneType",
            PyVal::Bool(_) => "bool",
            PyVal::Int(_) => "int",
            PyVal::Float(_) => "float",
            PyVal::Str(_) => "str",
            PyVal::List(_) => "list",
            PyVal::Tuple(_) => "tuple",
            PyVal::Dict(_) => "dict",
            PyVal::EnumClass(..) => "enum class",
            PyVal::Member(_) => "enum member",
            PyVal::Input(_) => "Input",
            PyVal::Function(_) | PyVal::Method(..) | PyVal::Builtin(_) | PyVal::BoundMethod(..) => {
                "function"
            }
            PyVal::Class(_) => "class",
            PyVal::Unknown(_) => "unknown",
        }
    }

    /// The schema value: tuples become lists, enum members their values.
    pub fn to_value(&self) -> Result<Value, String> {
        Ok(match self {
            PyVal::None => Value::None,
            PyVal::Bool(b) => Value::Bool(*b),
            PyVal::Int(i) => Value::Int(*i),
            PyVal::Float(f) => Value::Float(*f),
            PyVal::Str(s) => Value::Str(s.clone()),
            PyVal::List(items) | PyVal::Tuple(items) => Value::List(
                items
                    .iter()
                    .map(PyVal::to_value)
                    .collect::<Result<_, _>>()?,
            ),
            PyVal::Dict(pairs) => Value::Dict(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((k.to_value()?, v.to_value()?)))
                    .collect::<Result<_, String>>()?,
            ),
            PyVal::Member(m) => m.value.to_value()?,
            PyVal::Unknown(reason) => return Err(reason.clone()),
            other => return Err(format!("a {} is not a value", other.type_name())),
        })
    }

    /// The items of an iteration over the value (`for x in v`), when Python's order is
    /// deterministic.
    pub fn iterate(&self) -> Result<Vec<PyVal>, String> {
        match self {
            PyVal::List(items) | PyVal::Tuple(items) => Ok(items.clone()),
            PyVal::Dict(pairs) => Ok(pairs.iter().map(|(k, _)| k.clone()).collect()),
            PyVal::Str(s) => Ok(s.chars().map(|c| PyVal::Str(c.to_string())).collect()),
            PyVal::EnumClass(_, members) => {
                Ok(members.iter().cloned().map(PyVal::Member).collect())
            }
            PyVal::Unknown(reason) => Err(reason.clone()),
            other => Err(format!("a {} is not iterable", other.type_name())),
        }
    }

    /// Python truthiness.
    pub fn truthy(&self) -> Result<bool, String> {
        Ok(match self {
            PyVal::None => false,
            PyVal::Bool(b) => *b,
            PyVal::Int(i) => *i != 0,
            PyVal::Float(f) => *f != 0.0,
            PyVal::Str(s) => !s.is_empty(),
            PyVal::List(v) | PyVal::Tuple(v) => !v.is_empty(),
            PyVal::Dict(v) => !v.is_empty(),
            PyVal::Unknown(reason) => return Err(reason.clone()),
            _ => true,
        })
    }

    /// A number as f64 (bools count, as in Python).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyVal::Int(i) => Some(*i as f64),
            PyVal::Float(f) => Some(*f),
            PyVal::Bool(b) => Some(f64::from(u8::from(*b))),
            PyVal::Member(m) => m.value.as_f64(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            PyVal::Int(i) => Some(*i),
            PyVal::Bool(b) => Some(i64::from(*b)),
            PyVal::Member(m) => m.value.as_int(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyVal::Str(s) => Some(s),
            PyVal::Member(m) => m.value.as_str(),
            _ => None,
        }
    }

    /// Python `==` (numbers compare across int, float and bool).
    pub fn py_eq(&self, other: &PyVal) -> bool {
        match (self, other) {
            (PyVal::List(a), PyVal::List(b)) | (PyVal::Tuple(a), PyVal::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (PyVal::Member(a), PyVal::Member(b)) => a == b,
            (a, b) if a.is_number() && b.is_number() => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, PyVal::Int(_) | PyVal::Float(_) | PyVal::Bool(_))
    }

    /// Python `str()`.
    pub fn py_str(&self) -> Result<String, String> {
        Ok(match self {
            PyVal::Str(s) => s.clone(),
            PyVal::Member(m) => format!("{}.{}", m.class, m.name),
            other => other.py_repr()?,
        })
    }

    /// Python `repr()` of data.
    pub fn py_repr(&self) -> Result<String, String> {
        let join = |items: &[PyVal]| -> Result<String, String> {
            Ok(items
                .iter()
                .map(PyVal::py_repr)
                .collect::<Result<Vec<_>, _>>()?
                .join(", "))
        };
        Ok(match self {
            PyVal::None => "None".to_owned(),
            PyVal::Bool(true) => "True".to_owned(),
            PyVal::Bool(false) => "False".to_owned(),
            PyVal::Int(i) => i.to_string(),
            PyVal::Float(f) => float_repr(*f),
            PyVal::Str(s) => format!("'{s}'"),
            PyVal::List(items) => format!("[{}]", join(items)?),
            PyVal::Tuple(items) if items.len() == 1 => format!("({},)", join(items)?),
            PyVal::Tuple(items) => format!("({})", join(items)?),
            PyVal::Dict(pairs) => format!(
                "{{{}}}",
                pairs
                    .iter()
                    .map(|(k, v)| Ok(format!("{}: {}", k.py_repr()?, v.py_repr()?)))
                    .collect::<Result<Vec<_>, String>>()?
                    .join(", ")
            ),
            PyVal::Member(m) => format!("<{}.{}: {}>", m.class, m.name, m.value.py_repr()?),
            PyVal::Unknown(reason) => return Err(reason.clone()),
            other => return Err(format!("cannot format a {}", other.type_name())),
        })
    }
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` on integral values, exponent
/// form outside 1e-4..1e16.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(1e-5), "1e-05");
        assert_eq!(float_repr(2.5e20), "2.5e+20");
        assert_eq!(float_repr(-3.0), "-3.0");
    }

    #[test]
    fn unknown_values_fail_where_used() {
        let v = PyVal::List(vec![PyVal::Int(1), PyVal::unknown("`x()` is a call")]);
        assert_eq!(v.to_value(), Err("`x()` is a call".to_owned()));
        assert!(!v.is_data());
    }

    #[test]
    fn numbers_compare_across_types() {
        assert!(PyVal::Int(1).py_eq(&PyVal::Float(1.0)));
        assert!(PyVal::Bool(true).py_eq(&PyVal::Int(1)));
        assert!(!PyVal::Str("1".into()).py_eq(&PyVal::Int(1)));
    }
}
