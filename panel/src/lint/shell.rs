//! A small, forgiving reading of a shell script for the linter's heuristics: comments removed,
//! quoted literal text and escapes blanked (single-quoted text, and double-quoted text outside
//! its `$…` expansions and command substitutions), heredoc bodies told apart from code. It is not a shell parser; the checks built on it are warnings where they can misfire.

/// What a line of the script is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// Shell code.
    Code,
    /// Body of a heredoc; `expands` is false for a quoted delimiter (`<<'EOF'`).
    HeredocBody { expands: bool },
}

/// One line, 1-based, with the text the checks look at.
#[derive(Debug, Clone)]
pub(super) struct Line {
    /// 1-based line number.
    pub number: usize,
    /// Code: comments removed, quoted literal and escaped characters replaced by spaces
    /// (expansions and command substitutions inside double quotes kept).
    /// Expanding heredoc body: escapes blanked. Quoted heredoc body: empty.
    pub text: String,
    /// Code or heredoc body.
    pub kind: LineKind,
}

impl Line {
    /// Whether `$NAME` in this line is expanded by the shell.
    pub(super) fn expands(&self) -> bool {
        matches!(
            self.kind,
            LineKind::Code | LineKind::HeredocBody { expands: true }
        )
    }
}

struct PendingHeredoc {
    delimiter: String,
    strip_tabs: bool,
    expands: bool,
}

/// Where the scanner is inside quoting, carried from one line to the next (strings and
/// command substitutions may span lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// `'…'`: literal, blanked.
    Single,
    /// `"…"`: literal text blanked; `$NAME`, `${…}`, `$(…)` and backquotes kept.
    Double,
    /// `$(…)` or `` `…` `` (possibly inside `"…"`): code; `parens` counts nested `(`.
    Substitution { backquote: bool, parens: usize },
    /// `${…}` inside `"…"`: kept as written; `braces` counts nested `{`.
    Parameter { braces: usize },
}

/// The open contexts, innermost last; empty at the top level of code.
#[derive(Debug, Default)]
struct Scanner {
    open: Vec<Context>,
}

impl Scanner {
    fn top(&self) -> Option<Context> {
        self.open.last().copied()
    }

    /// Whether the line ended inside a quoted string (a heredoc body cannot start yet).
    fn in_string(&self) -> bool {
        matches!(self.top(), Some(Context::Single | Context::Double))
    }
}

/// Splits a script into classified lines.
pub(super) fn read_lines(script: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut scanner = Scanner::default();
    let mut heredocs: Vec<PendingHeredoc> = Vec::new();
    let mut body: Option<PendingHeredoc> = None;
    for (index, raw) in script.lines().enumerate() {
        let number = index + 1;
        if let Some(current) = &body {
            let candidate = if current.strip_tabs {
                raw.trim_start_matches('\t')
            } else {
                raw
            };
            let expands = current.expands;
            if candidate == current.delimiter {
                body = (!heredocs.is_empty()).then(|| heredocs.remove(0));
                lines.push(Line {
                    number,
                    text: String::new(),
                    kind: LineKind::Code,
                });
            } else {
                let text = if expands {
                    blank_escapes(raw)
                } else {
                    String::new()
                };
                lines.push(Line {
                    number,
                    text,
                    kind: LineKind::HeredocBody { expands },
                });
            }
            continue;
        }
        let (text, found) = scan_code(raw, &mut scanner);
        heredocs.extend(found);
        lines.push(Line {
            number,
            text,
            kind: LineKind::Code,
        });
        if !heredocs.is_empty() && !scanner.in_string() {
            body = Some(heredocs.remove(0));
        }
    }
    lines
}

/// Code line: returns the cleaned text and the heredocs it opens. Quoted literal text
/// (single-quoted, and double-quoted outside its expansions) becomes spaces, so words inside
/// a message (`echo "please read the docs"`) never look like commands.
fn scan_code(raw: &str, scanner: &mut Scanner) -> (String, Vec<PendingHeredoc>) {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    let mut heredocs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match scanner.top() {
            Some(Context::Single) => {
                if c == '\'' {
                    scanner.open.pop();
                    out.push('\'');
                } else {
                    out.push(' ');
                }
                i += 1;
                continue;
            }
            Some(Context::Double) => {
                match (c, next) {
                    ('"', _) => {
                        scanner.open.pop();
                        out.push('"');
                    }
                    ('\\', _) => {
                        out.push(' ');
                        if next.is_some() {
                            out.push(' ');
                        }
                        i += 2;
                        continue;
                    }
                    ('$', Some('(')) => {
                        scanner.open.push(Context::Substitution {
                            backquote: false,
                            parens: 0,
                        });
                        out.push_str("$(");
                        i += 2;
                        continue;
                    }
                    ('$', Some('{')) => {
                        scanner.open.push(Context::Parameter { braces: 0 });
                        out.push_str("${");
                        i += 2;
                        continue;
                    }
                    ('$', _) => {
                        // `$NAME`, `$1`, `$@`: the expansion stays visible to the checks.
                        out.push('$');
                        i += 1;
                        while let Some(&n) = chars.get(i) {
                            if !(n.is_ascii_alphanumeric() || n == '_') {
                                break;
                            }
                            out.push(n);
                            i += 1;
                        }
                        continue;
                    }
                    ('`', _) => {
                        scanner.open.push(Context::Substitution {
                            backquote: true,
                            parens: 0,
                        });
                        out.push('`');
                    }
                    _ => out.push(' '),
                }
                i += 1;
                continue;
            }
            Some(Context::Parameter { braces }) => {
                match c {
                    '{' => set_top(scanner, Context::Parameter { braces: braces + 1 }),
                    '}' if braces == 0 => {
                        scanner.open.pop();
                    }
                    '}' => set_top(scanner, Context::Parameter { braces: braces - 1 }),
                    _ => {}
                }
                out.push(c);
                i += 1;
                continue;
            }
            None | Some(Context::Substitution { .. }) => {}
        }
        // Shell code, at the top level or inside `$(…)` / `` `…` ``.
        match (c, next) {
            ('\\', _) => {
                out.push(' ');
                if next.is_some() {
                    out.push(' ');
                }
                i += 2;
                continue;
            }
            ('\'', _) => {
                scanner.open.push(Context::Single);
                out.push('\'');
            }
            ('"', _) => {
                scanner.open.push(Context::Double);
                out.push('"');
            }
            ('#', _) if i == 0 || chars[i - 1].is_whitespace() || chars[i - 1] == ';' => break,
            ('$', Some('(')) => {
                scanner.open.push(Context::Substitution {
                    backquote: false,
                    parens: 0,
                });
                out.push_str("$(");
                i += 2;
                continue;
            }
            ('(' | ')' | '`', _) => {
                track_substitution(scanner, c);
                out.push(c);
            }
            ('<', Some('<')) if chars.get(i + 2) != Some(&'<') => {
                let (heredoc, consumed) = parse_heredoc(&chars[i + 2..]);
                out.push_str("<<");
                // Keep the delimiter text so checks can see a heredoc was opened.
                for _ in 0..consumed {
                    out.push(' ');
                }
                if let Some(heredoc) = heredoc {
                    heredocs.push(heredoc);
                }
                i += 2 + consumed;
                continue;
            }
            _ => out.push(c),
        }
        i += 1;
    }
    (out, heredocs)
}

fn set_top(scanner: &mut Scanner, context: Context) {
    if let Some(top) = scanner.open.last_mut() {
        *top = context;
    }
}

/// Parentheses and backquotes in code: nesting inside a substitution, or its end.
fn track_substitution(scanner: &mut Scanner, c: char) {
    match (scanner.top(), c) {
        (Some(Context::Substitution { backquote, parens }), '(') => set_top(
            scanner,
            Context::Substitution {
                backquote,
                parens: parens + 1,
            },
        ),
        (
            Some(Context::Substitution {
                backquote: false,
                parens: 0,
            }),
            ')',
        )
        | (
            Some(Context::Substitution {
                backquote: true, ..
            }),
            '`',
        ) => {
            scanner.open.pop();
        }
        (Some(Context::Substitution { backquote, parens }), ')') => set_top(
            scanner,
            Context::Substitution {
                backquote,
                parens: parens.saturating_sub(1),
            },
        ),
        // A backquote in plain code opens a substitution; other parentheses are subshells
        // and groups, which need no tracking.
        (None, '`') => scanner.open.push(Context::Substitution {
            backquote: true,
            parens: 0,
        }),
        _ => {}
    }
}

/// Parses what follows `<<`: `-`, blanks, then a bare or quoted word.
fn parse_heredoc(rest: &[char]) -> (Option<PendingHeredoc>, usize) {
    let mut i = 0;
    let strip_tabs = rest.first() == Some(&'-');
    if strip_tabs {
        i += 1;
    }
    while rest.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
        i += 1;
    }
    let mut delimiter = String::new();
    let mut quoted = false;
    while let Some(&c) = rest.get(i) {
        match c {
            '\'' | '"' | '\\' => {
                quoted = true;
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => delimiter.push(c),
            _ => break,
        }
        i += 1;
    }
    let heredoc = (!delimiter.is_empty()).then_some(PendingHeredoc {
        delimiter,
        strip_tabs,
        expands: !quoted,
    });
    (heredoc, i)
}

/// Expanding heredoc bodies still honour `\$`.
fn blank_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(' ');
            if chars.next().is_some() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A simple command inside a code line.
#[derive(Debug, Clone)]
pub(super) struct Command {
    /// The words, starting with the command name (keywords, `sudo`, `env` and leading
    /// assignments skipped).
    pub words: Vec<String>,
    /// Whether the command's stdin is a pipe from the previous command.
    pub piped: bool,
    /// The whole segment text, to look for redirections.
    pub segment: String,
}

impl Command {
    /// The command name.
    pub(super) fn name(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or_default()
    }

    /// Whether the segment redirects stdin (`<`, `<<`, `<<<`, `<&`).
    pub(super) fn redirects_stdin(&self) -> bool {
        self.segment.contains('<')
    }
}

const KEYWORDS: &[&str] = &[
    "then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "time", "exec", "sudo",
    "command", "builtin", "nohup", "env",
];

/// The simple commands of one code line, split at `;`, `&&`, `||`, `|`, `&`, `(`, `)`, `$(`
/// and backquotes.
pub(super) fn commands(text: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut piped = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let flush = |current: &mut String, piped: bool, out: &mut Vec<Command>| {
        if let Some(command) = to_command(current, piped) {
            out.push(command);
        }
        current.clear();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match (c, next) {
            ('|', Some('|')) | ('&', Some('&')) => {
                flush(&mut current, piped, &mut out);
                piped = false;
                i += 2;
                continue;
            }
            ('|', _) => {
                flush(&mut current, piped, &mut out);
                piped = true;
            }
            ('&', Some('>')) => current.push(c),
            (';' | '&' | '(' | ')' | '`', _) => {
                // `<&` and `>&` are redirections, not separators.
                if c == '&' && matches!(current.chars().last(), Some('<' | '>')) {
                    current.push(c);
                } else {
                    flush(&mut current, piped, &mut out);
                    piped = false;
                }
            }
            _ => current.push(c),
        }
        i += 1;
    }
    flush(&mut current, piped, &mut out);
    out
}

fn to_command(segment: &str, piped: bool) -> Option<Command> {
    let mut words: Vec<String> = segment
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect();
    let skip = words
        .iter()
        .take_while(|w| KEYWORDS.contains(&w.as_str()) || is_assignment(w) || w.is_empty())
        .count();
    words.drain(..skip);
    (!words.is_empty()).then(|| Command {
        words,
        piped,
        segment: segment.to_owned(),
    })
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '+')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}
