//! The `tojson` filter as `transformers` defines it for chat templates: Python's
//! `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`, with
//! those four keyword arguments, instead of Jinja's own `tojson` (HTML-escaped, compact).
//!
//! Written over minijinja values rather than through serde_json so that the bytes are Python's:
//! `", "` and `": "` between items, floats as Python's `repr` writes them (`1e+16`, `1e-05`,
//! `2.0`), keys in insertion order unless `sort_keys`, and `\u00e9`-style escapes.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// How `json.dumps` lays out its output: the four keyword arguments `transformers` exposes.
struct Style {
    /// `ensure_ascii`: escape every character outside ASCII (default false in `transformers`).
    ensure_ascii: bool,
    /// `indent`: `None` for one line, else the string put once per nesting level on new lines.
    indent: Option<String>,
    /// `separators`: between items, and between a key and its value.
    item_sep: String,
    key_sep: String,
    /// `sort_keys`: write object keys in sorted order instead of insertion order.
    sort_keys: bool,
}

/// The `tojson` filter: `value | tojson(ensure_ascii=false, indent=none, separators=none,
/// sort_keys=false)`.
pub fn tojson(value: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or_default().into()),
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| bad("indent must be an integer or a string"))?;
            Some(" ".repeat(n.max(0) as usize))
        }
    };
    // Python's defaults: (', ', ': ') on one line, (',', ': ') when indented
    let (item_sep, key_sep) = match kwargs.get::<Option<Vec<String>>>("separators")? {
        Some(seps) if seps.len() == 2 => (seps[0].clone(), seps[1].clone()),
        Some(_) => return Err(bad("separators must be a pair of strings")),
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let style = Style {
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_value(&mut out, &value, &style, 0)?;
    Ok(out)
}

fn bad(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("tojson: {msg}"))
}

fn write_value(out: &mut String, value: &Value, style: &Style, level: usize) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => out.push_str(&value.to_string()),
        ValueKind::Number => out.push_str(&python_float(f64::try_from(value.clone())?)),
        ValueKind::String => write_string(out, value.as_str().unwrap_or_default(), style),
        ValueKind::Seq => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, ('[', ']'), &items, style, level, |out, item, level| {
                write_value(out, item, style, level)
            })?;
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((key_string(&key)?, item));
            }
            if style.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(
                out,
                ('{', '}'),
                &entries,
                style,
                level,
                |out, (k, v), level| {
                    write_string(out, k, style);
                    out.push_str(&style.key_sep);
                    write_value(out, v, style, level)
                },
            )?;
        }
        kind => {
            let msg = format!("Object of type {kind} is not JSON serializable");
            return Err(bad(&msg));
        }
    }
    Ok(())
}

/// `[a, b]` or `{"k": v}`, one item per line when indented; empty containers stay `[]`/`{}`.
fn write_container<T>(
    out: &mut String,
    (open, close): (char, char),
    items: &[T],
    style: &Style,
    level: usize,
    mut write_item: impl FnMut(&mut String, &T, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return Ok(());
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&style.item_sep);
        }
        newline(out, style, level + 1);
        write_item(out, item, level + 1)?;
    }
    newline(out, style, level);
    out.push(close);
    Ok(())
}

fn newline(out: &mut String, style: &Style, level: usize) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        out.push_str(&indent.repeat(level));
    }
}

/// Python turns non-string keys into strings: `1` -> `"1"`, `True` -> `"true"`, `None` ->
/// `"null"`.
fn key_string(key: &Value) -> Result<String, Error> {
    Ok(match key.kind() {
        ValueKind::String => key.as_str().unwrap_or_default().to_string(),
        ValueKind::None => "null".into(),
        ValueKind::Bool => (if key.is_true() { "true" } else { "false" }).into(),
        ValueKind::Number if key.is_integer() => key.to_string(),
        ValueKind::Number => python_float(f64::try_from(key.clone())?),
        kind => {
            return Err(bad(&format!(
                "keys must be str, int, float, bool or None, not {kind}"
            )))
        }
    })
}

/// A JSON string as Python's `json` escapes it.
fn write_string(out: &mut String, s: &str, style: &Style) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (style.ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr` (and so `json.dumps`) writes it: the shortest digits that read
/// back the same, in positional notation for exponents -4..16 (with at least one decimal,
/// `2.0`), else scientific with a signed two-digit exponent (`1e+16`, `2.5e-07`).
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return (if x > 0.0 { "Infinity" } else { "-Infinity" }).into();
    }
    let sci = format!("{x:e}"); // shortest round-trip digits, e.g. "1.5e16", "-2e-7"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let fixed = format!("{x}");
        if fixed.contains('.') {
            fixed
        } else {
            fixed + ".0"
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        // from Python 3.11: [repr(x) for x in (2.0, 0.1, 1e16, 1.5e16, 1e15, 1e-05, 0.0001,
        // -2.5e-07, 123456789.125, 1e100, 5e-324)]
        let cases = [
            (2.0, "2.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (-2.5e-7, "-2.5e-07"),
            (123456789.125, "123456789.125"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float(x), want, "{x:e}");
        }
    }
}
