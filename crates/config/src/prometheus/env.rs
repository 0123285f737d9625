//! Environment expansion in `external_labels` values, as Prometheus 3 does it (Go's
//! `os.Expand` with `$$` mapped to a literal `$`; see upstream config/config.go `Load`).

/// Whether `c` names a one-character shell variable (`$1`, `$*`, `$$`, ...).
fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

fn is_name_byte(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// The variable name at the start of `s` (the text after a `$`) and how many bytes it spans.
/// An empty name with a non-zero width is bad syntax whose bytes are dropped; an empty name
/// with zero width leaves the `$` as it is.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match s[1..].find('}') {
            Some(0) => ("", 2),
            Some(i) => (&s[1..i + 1], i + 2),
            None => ("", 1),
        };
    }
    if is_special(b[0]) {
        return (&s[..1], 1);
    }
    let len = b.iter().take_while(|c| is_name_byte(**c)).count();
    (&s[..len], len)
}

/// Replaces `$NAME` and `${NAME}` in `s` with `lookup(NAME)` (unset is empty) and `$$` with `$`.
pub(crate) fn expand(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        if i + 1 >= rest.len() {
            break;
        }
        out.push_str(&rest[..i]);
        let (name, width) = shell_name(&rest[i + 1..]);
        match (name, width) {
            ("", 0) => out.push('$'),
            ("", _) => {}
            ("$", _) => out.push('$'),
            (name, _) => out.push_str(&lookup(name).unwrap_or_default()),
        }
        rest = &rest[i + 1 + width..];
    }
    out.push_str(rest);
    out
}

/// [`expand`] against the process environment (a variable that is not valid UTF-8 counts as
/// unset).
pub(crate) fn expand_from_env(s: &str) -> String {
    expand(s, |name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "REGION" => Some("eu-west".into()),
            "A_1" => Some("x".into()),
            "1" => Some("one".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_like_go_os_expand() {
        for (input, want) in [
            ("plain", "plain"),
            ("$REGION", "eu-west"),
            ("${REGION}-a", "eu-west-a"),
            ("$REGION-a", "eu-west-a"),
            ("pre_$A_1_post", "pre_"),
            ("${A_1}_post", "x_post"),
            ("$UNSET", ""),
            ("a$$b", "a$b"),
            ("$$REGION", "$REGION"),
            ("cost: 5$", "cost: 5$"),
            ("$1", "one"),
            ("${1}", "one"),
            ("$-", ""),
            ("a${}b", "ab"),
            ("a${REGION", "aREGION"),
            ("a$ b", "a$ b"),
            ("a$/b", "a$/b"),
            ("ü$REGIONü", "üeu-westü"),
            ("$Üx", "$Üx"),
            ("ü${REGION}ü", "üeu-westü"),
        ] {
            assert_eq!(expand(input, lookup), want, "{input:?}");
        }
    }
}
