//! Go `path/filepath.Match` semantics for `launch.toml` slice globs (checklist SL-02): `*` and `?` do
//! not cross `/`, `[...]` classes with ranges and `^` negation, `\` escapes. A malformed pattern
//! matches nothing.

/// Whether `name` matches `pattern` entirely, as Go's `filepath.Match` on Linux.
pub fn go_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n).unwrap_or(false)
}

/// `None` = malformed pattern.
fn matches(p: &[char], n: &[char]) -> Option<bool> {
    let (mut pi, mut ni) = (0usize, 0usize);
    // Backtracking point for the last `*`: (pattern index after `*`, name index).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi + 1, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    let (ok, next) = class(p, pi, n[ni])?;
                    if ok {
                        pi = next;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if ni < n.len() => {
                    let c = *p.get(pi + 1)?;
                    if c == n[ni] {
                        pi += 2;
                        ni += 1;
                        continue;
                    }
                }
                c if c != '?' && c != '[' && c != '\\' && ni < n.len() && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return Some(true);
        }
        // Mismatch: let the last `*` eat one more non-separator character.
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp;
                ni = sn + 1;
            }
            _ => {
                // Go validates the rest of the pattern even on mismatch.
                validate(&p[pi.min(p.len())..])?;
                return Some(false);
            }
        }
    }
}

/// Matches a `[...]` class at `p[start]` against `c`; returns (matched, index after `]`).
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negated, i))
}

fn class_char(p: &[char], i: usize) -> Option<(char, usize)> {
    match *p.get(i)? {
        '-' | ']' => None,
        '\\' => Some((*p.get(i + 1)?, i + 2)),
        c => Some((c, i + 1)),
    }
}

fn validate(p: &[char]) -> Option<()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                p.get(i + 1)?;
                i += 2;
            }
            '[' => {
                let (_, next) = class(p, i, '\0')?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::go_match;

    #[test]
    fn sl02_go_filepath_match_cases() {
        // Cases from Go's filepath match tests.
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("*x", "xxx", true),
            ("a?", "a/", false),
            ("[", "a", false),
            ("[^", "a", false),
            ("a[", "a", false),
            ("[-]", "-", false),
            ("[x-]", "x", false),
            ("\\", "a", false),
            ("**", "a/b", false),
            ("**", "ab", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(go_match(p, n), *want, "pattern {p:?} name {n:?}");
        }
    }
}
