//! Textual unrolling of constant-bound loops in our WGSL kernels, done before compilation.
//!
//! The attention kernels keep per-row vectors in private arrays indexed by loops over the head
//! size (`HS4`) and the rows per invocation (`R`). Not every shader compiler unrolls those loops:
//! Mesa lavapipe keeps them and the arrays stay in memory, indexed lane by lane, which measured
//! 1.5× slower there. Unrolled, every index is a constant and the arrays become registers.
//!
//! Only this loop shape is expanded, each iteration wrapped in `{ }` so `let`s do not clash:
//! `for (var X = 0u; X < NAME; X++) { body }` on one line, or with the body on the following
//! lines up to a `}` at the loop's own indentation. Nested loops are expanded outermost first.

/// Expands every loop `for (var X = 0u; X < NAME; X++)` whose `NAME` is in `bounds` into
/// `bounds[NAME]` copies of its body with the single-letter variable `X` replaced by `0u`, `1u`, …
pub fn unroll(src: &str, bounds: &[(&str, usize)]) -> String {
    let mut text = src.to_string();
    while let Some(next) = unroll_once(&text, bounds) {
        text = next;
    }
    text
}

/// (indentation, loop variable, iteration count, rest of the line after `{`) for a loop header.
fn header<'a>(line: &'a str, bounds: &[(&str, usize)]) -> Option<(&'a str, char, usize, &'a str)> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let rest = trimmed.strip_prefix("for (var ")?;
    let var = rest.chars().next().filter(|c| c.is_ascii_alphabetic())?;
    let rest = rest[1..].strip_prefix(" = 0u; ")?;
    let rest = rest.strip_prefix(var)?.strip_prefix(" < ")?;
    let (name, rest) = rest.split_once(';')?;
    let n = bounds.iter().find(|(b, _)| *b == name)?.1;
    let tail = rest.strip_prefix(&format!(" {var}++) {{"))?;
    Some((indent, var, n, tail.trim()))
}

/// Replaces the identifier `var` (not a part of a longer identifier) by `{i}u`.
fn substitute(line: &str, var: char, i: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(line.len() + 8);
    for (k, &c) in chars.iter().enumerate() {
        let before = k > 0 && ident(chars[k - 1]);
        let after = k + 1 < chars.len() && ident(chars[k + 1]);
        if c == var && !before && !after {
            out.push_str(&format!("{i}u"));
        } else {
            out.push(c);
        }
    }
    out
}

fn unroll_once(text: &str, bounds: &[(&str, usize)]) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut changed = false;
    let mut i = 0;
    while i < lines.len() {
        let Some((indent, var, n, tail)) = header(lines[i], bounds) else {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        };
        changed = true;
        let mut body: Vec<String> = Vec::new();
        if let Some(one) = tail.strip_suffix('}') {
            body.push(one.trim().to_string());
            i += 1;
        } else {
            i += 1;
            let close = format!("{indent}}}");
            while i < lines.len() && lines[i].trim_end() != close {
                let l = lines[i];
                body.push(l.strip_prefix(indent).unwrap_or(l).to_string());
                i += 1;
            }
            i += 1; // the closing brace
        }
        for it in 0..n {
            out.push(format!("{indent}{{"));
            for l in &body {
                out.push(format!("{indent}{}", substitute(l, var, it)));
            }
            out.push(format!("{indent}}}"));
        }
    }
    changed.then(|| out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::unroll;

    #[test]
    fn expands_one_line_and_block_loops() {
        let src = "x;\n  for (var d = 0u; d < HS4; d++) { a[d] = b[d] * dd; }\ny;";
        let got = unroll(src, &[("HS4", 2)]);
        assert_eq!(
            got,
            "x;\n  {\n  a[0u] = b[0u] * dd;\n  }\n  {\n  a[1u] = b[1u] * dd;\n  }\ny;"
        );
        let src = "for (var r = 0u; r < R; r++) {\n    let q = r;\n}\nz;";
        assert_eq!(
            unroll(src, &[("R", 2)]),
            "{\n    let q = 0u;\n}\n{\n    let q = 1u;\n}\nz;"
        );
    }

    #[test]
    fn expands_nested_loops_and_leaves_others() {
        let src = concat!(
            "for (var d = 0u; d < HS4; d++) {\n",
            "    for (var r = 0u; r < R; r++) { s[r] += q[r * 4u + d]; }\n",
            "}\n",
            "for (var j = 0u; j < n; j++) { x(); }",
        );
        let got = unroll(src, &[("HS4", 2), ("R", 3)]);
        assert_eq!(got.matches("s[").count(), 6);
        assert!(got.contains("s[2u] += q[2u * 4u + 1u];"));
        assert!(got.contains("for (var j = 0u; j < n; j++) { x(); }"));
    }
}
