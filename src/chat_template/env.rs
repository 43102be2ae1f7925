//! The Jinja environment `transformers` renders chat templates in
//! (`transformers.utils.chat_template_utils._cached_compile_jinja_template`, 5.x), rebuilt in
//! minijinja: the same whitespace settings, the helpers it adds (`raise_exception`,
//! `strftime_now`, its own `tojson`) and the Python behaviours templates lean on (`trim` with
//! Python's whitespace, `None`/`True` printed as Python prints them, Python's string methods).
//!
//! What `transformers` sets, and where each lives here:
//! - `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)` and Jinja's defaults
//!   otherwise: `keep_trailing_newline=False` (one trailing newline of the template is dropped),
//!   no autoescape (`from_string`): [`environment`].
//! - `jinja2.ext.loopcontrols` (`{% break %}`, `{% continue %}`): minijinja's `loop_controls`.
//! - `raise_exception(message)` raises `TemplateError(message)`: [`raise_exception`].
//! - `strftime_now(format)` is `datetime.now().strftime(format)`: [`strftime`] on [`Clock`].
//! - `tojson` is `json.dumps(..., ensure_ascii=False)`: `super::json::tojson`.
//! - `dict` and `namespace`: minijinja's builtins.
//! - Python's string, list and dict methods (jinja2 calls the Python object's own): minijinja-
//!   contrib's `pycompat`, with `strip`/`lstrip`/`rstrip` on Python's whitespace
//!   ([`python_methods`]).

use minijinja::syntax::SyntaxConfig;
use minijinja::value::ValueKind;
use minijinja::{escape_formatter, AutoEscape, Environment, Error, ErrorKind, Value};
use time::{OffsetDateTime, PrimitiveDateTime};

/// What `strftime_now` reads: the time now (UTC; `transformers` reads the local time, which is
/// UTC on the machines this runs on), or a fixed time for reproducible renderings and tests.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// `OffsetDateTime::now_utc()` at each call.
    Now,
    /// Always this date and time.
    Fixed(PrimitiveDateTime),
}

impl Clock {
    fn now(self) -> PrimitiveDateTime {
        match self {
            Clock::Now => {
                let t = OffsetDateTime::now_utc();
                PrimitiveDateTime::new(t.date(), t.time())
            }
            Clock::Fixed(t) => t,
        }
    }
}

/// The environment with `transformers`' settings and helpers; the template is added by the
/// caller.
pub fn environment(clock: Clock) -> Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()?,
    );
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(python_formatter);
    env.set_unknown_method_callback(python_methods);
    env.add_function("raise_exception", raise_exception);
    set_clock(&mut env, clock);
    env.add_filter("tojson", super::json::tojson);
    env.add_filter("trim", python_trim);
    Ok(env)
}

/// (Re)defines `strftime_now` to read `clock`.
pub fn set_clock(env: &mut Environment<'static>, clock: Clock) {
    env.add_function("strftime_now", move |format: &str| {
        strftime(clock.now(), format)
    });
}

/// `raise_exception(message)`: fails the render with `message`.
fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// `{{ none }}`, `{{ true }}` print `None`, `True`, `False` as Python's `str` does (minijinja
/// prints `none`, `true`); everything else as minijinja prints it.
fn python_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.write_str("None")?,
        ValueKind::Bool if value.is_true() => out.write_str("True")?,
        ValueKind::Bool => out.write_str("False")?,
        _ => escape_formatter(out, state, value)?,
    }
    Ok(())
}

/// Python's `str.isspace`: Unicode's White_Space (Rust's `char::is_whitespace`) plus the
/// information separators U+001C..U+001F, which Python counts and Rust does not.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip(chars)` (`left` and `right`), `str.lstrip` (`left`), `str.rstrip`
/// (`right`): `chars`, or Python's whitespace when `None`.
fn python_strip<'a>(s: &'a str, chars: Option<&str>, left: bool, right: bool) -> &'a str {
    let stripped = |c: char| chars.map_or(is_python_space(c), |chars| chars.contains(c));
    let s = if left {
        s.trim_start_matches(stripped)
    } else {
        s
    };
    if right {
        s.trim_end_matches(stripped)
    } else {
        s
    }
}

/// Jinja's `trim(value, chars=None)`: Python's `str.strip(chars)`.
fn python_trim(value: &str, chars: Option<&str>) -> String {
    python_strip(value, chars, true, true).to_string()
}

/// Python's methods on strings, lists and dicts (`.strip()`, `.startswith()`, `.split()`,
/// `.items()`, ...: minijinja-contrib's `pycompat`), except that `strip`, `lstrip` and
/// `rstrip` strip Python's whitespace (`pycompat` strips Rust's, which lacks U+001C..U+001F).
fn python_methods(
    state: &mut minijinja::State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let sides = match method {
        "strip" => Some((true, true)),
        "lstrip" => Some((true, false)),
        "rstrip" => Some((false, true)),
        _ => None,
    };
    if let (Some(s), Some((left, right))) = (value.as_str(), sides) {
        let (chars,): (Option<&str>,) = minijinja::value::from_args(args)?;
        return Ok(Value::from(python_strip(s, chars, left, right)));
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Python's `datetime.strftime(format)` in the C locale, for the directives chat templates use:
/// `%a %A %b %B %d %e %m %y %Y %H %I %M %S %p %j %%`. Any other directive is an error rather
/// than a silently different date.
pub fn strftime(t: PrimitiveDateTime, format: &str) -> Result<String, Error> {
    let weekday = WEEKDAYS[t.weekday().number_days_from_monday() as usize];
    let month = MONTHS[t.month() as usize - 1];
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let piece = match chars.next() {
            Some('a') => weekday[..3].to_string(),
            Some('A') => weekday.to_string(),
            Some('b') => month[..3].to_string(),
            Some('B') => month.to_string(),
            Some('d') => format!("{:02}", t.day()),
            Some('e') => format!("{:>2}", t.day()),
            Some('m') => format!("{:02}", t.month() as u8),
            Some('y') => format!("{:02}", t.year().rem_euclid(100)),
            Some('Y') => t.year().to_string(),
            Some('H') => format!("{:02}", t.hour()),
            Some('I') => format!("{hour12:02}"),
            Some('M') => format!("{:02}", t.minute()),
            Some('S') => format!("{:02}", t.second()),
            Some('p') => (if t.hour() < 12 { "AM" } else { "PM" }).to_string(),
            Some('j') => format!("{:03}", t.ordinal()),
            Some('%') => "%".to_string(),
            other => {
                let d = other
                    .map(|c| format!("%{c}"))
                    .unwrap_or_else(|| "a trailing %".into());
                let msg = format!("strftime_now: {d} is not a supported directive in {format:?}");
                return Err(Error::new(ErrorKind::InvalidOperation, msg));
            }
        };
        out.push_str(&piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::{Date, Month};

    #[test]
    fn strftime_matches_python() {
        // from Python 3.11: datetime(2023, 1, 1, 0, 5, 9).strftime(
        //     "%a %A %b %B %d %e %m %y %Y %H %I %M %S %p %j %%")
        let t = Date::from_calendar_date(2023, Month::January, 1).unwrap();
        let t = t.with_hms(0, 5, 9).unwrap();
        let got = strftime(t, "%a %A %b %B %d %e %m %y %Y %H %I %M %S %p %j %%").unwrap();
        assert_eq!(
            got,
            "Sun Sunday Jan January 01  1 01 23 2023 00 12 05 09 AM 001 %"
        );
        let err = strftime(t, "%d %Z").unwrap_err().to_string();
        assert!(err.contains("%Z is not a supported directive"), "{err}");
    }

    #[test]
    fn trim_uses_python_whitespace() {
        // Python: "\x1f\u3000 a b\x0b\x1c".strip() == "a b"; "xxaxx".strip("x") == "a"
        assert_eq!(python_trim("\u{1f}\u{3000} a b\u{b}\u{1c}", None), "a b");
        assert_eq!(python_trim("xxaxx", Some("x")), "a");
    }
}
