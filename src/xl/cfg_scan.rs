//! One pass over xl cfg text, by the rules of libxlutil's lexer
//! (`libxlu_cfg_l.l`), before libxlutil parses it: where each setting and
//! each list item was written (libxlutil keeps line numbers private), and
//! lexical errors worded by rex (libxlutil calls `interval = -1` "Python
//! code" and reads `0100` as octal 64 without a word). Linear in the text.

use super::cfg::CfgError;

/// One `key = value` or `key += value` of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub key: String,
    pub line: usize,
    pub append: bool,
    /// The line each top-level item of a list value starts on.
    pub items: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Ident,
    Number,
    Str,
    Comma,
    Open,
    Close,
    Assign,
    Append,
    End,
}

/// What the scanner expects next, at the level of settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Key,
    Operator,
    Value,
    /// Inside a list value, `depth` brackets deep.
    List {
        depth: u32,
        item_open: bool,
    },
    /// After a value, until the end of the statement.
    Done,
}

/// The settings of `text`, in order. Errors are lexical only: anything the
/// grammar rejects is left to libxlutil, which words it with file:line.
pub(super) fn scan(filename: &str, text: &str) -> Result<Vec<Setting>, CfgError> {
    let bytes = text.as_bytes();
    let mut settings: Vec<Setting> = Vec::new();
    let mut state = State::Key;
    let mut line = 1usize;
    let mut i = 0usize;
    let mut key_start = (0usize, 0usize);
    let at = |line: usize, msg: String| CfgError(format!("{filename}:{line}: {msg}"));
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let token = match c {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' => {
                i += 1;
                line += 1;
                if matches!(state, State::List { .. }) {
                    continue;
                }
                Token::End
            }
            b';' => {
                i += 1;
                Token::End
            }
            b'a'..=b'z' => {
                while i < bytes.len() && matches!(bytes[i], b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_')
                {
                    i += 1;
                }
                Token::Ident
            }
            b'0'..=b'9' => {
                while i < bytes.len() && matches!(bytes[i], b'0'..=b'9' | b'a'..=b'f' | b'x') {
                    i += 1;
                }
                let number = &text[start..i];
                if number.len() > 1
                    && number.starts_with('0')
                    && number[1..].bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(at(
                        line,
                        format!(
                            "`{number}': a leading zero makes libxlutil read it as octal; write `{}'",
                            number.trim_start_matches('0')
                        ),
                    ));
                }
                Token::Number
            }
            b'"' | b'\'' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None | Some(b'\n') => {
                            return Err(at(line, "a string is not closed on its line".into()))
                        }
                        Some(b'\\') if bytes.get(i + 1).is_some_and(|&b| b != b'\n') => i += 2,
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
                Token::Str
            }
            b',' | b'[' | b']' | b'=' => {
                i += 1;
                match c {
                    b',' => Token::Comma,
                    b'[' => Token::Open,
                    b']' => Token::Close,
                    _ => Token::Assign,
                }
            }
            b'+' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Token::Append
            }
            _ => return Err(at(line, unexpected(text, start))),
        };
        state = match (state, token) {
            (State::Key, Token::End) => State::Key,
            (State::Key, Token::Ident) => {
                key_start = (start, i);
                State::Operator
            }
            (State::Operator, Token::Assign | Token::Append) => {
                settings.push(Setting {
                    key: text[key_start.0..key_start.1].to_string(),
                    line,
                    append: token == Token::Append,
                    items: Vec::new(),
                });
                State::Value
            }
            (State::Value, Token::Str | Token::Number) => State::Done,
            (State::Value, Token::Open) => State::List {
                depth: 1,
                item_open: false,
            },
            (State::List { depth, item_open }, token) => {
                let top = depth == 1;
                match token {
                    Token::Open => {
                        if top && !item_open {
                            push_item(&mut settings, line);
                        }
                        State::List {
                            depth: depth + 1,
                            item_open: top || item_open,
                        }
                    }
                    Token::Close if depth == 1 => State::Done,
                    Token::Close => State::List {
                        depth: depth - 1,
                        item_open: depth - 1 > 1 || item_open,
                    },
                    Token::Comma if top => State::List {
                        depth,
                        item_open: false,
                    },
                    Token::Str | Token::Number | Token::Ident if top && !item_open => {
                        push_item(&mut settings, line);
                        State::List {
                            depth,
                            item_open: true,
                        }
                    }
                    _ => State::List { depth, item_open },
                }
            }
            (State::Done, Token::End) => State::Key,
            // Not what the grammar allows: libxlutil says so, with its
            // file:line; nothing more is recorded until the next line.
            (_, Token::End) => State::Key,
            _ => State::Done,
        };
    }
    Ok(settings)
}

fn push_item(settings: &mut [Setting], line: usize) {
    if let Some(setting) = settings.last_mut() {
        setting.items.push(line);
    }
}

/// An unexpected character, with a word on what was probably meant.
fn unexpected(text: &str, at: usize) -> String {
    let rest = &text[at..];
    let c = rest.chars().next().unwrap_or(' ');
    let hint = match c {
        '-' if rest[1..].starts_with(|d: char| d.is_ascii_digit()) => {
            " (negative numbers are not accepted)"
        }
        '.' => " (write whole numbers, or quote the value)",
        'A'..='Z' => " (keys are lower case)",
        '\r' => " (a lone carriage return)",
        _ => "",
    };
    format!("unexpected `{}'{hint}", c.escape_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, usize, bool)> {
        scan("t.cfg", text)
            .unwrap()
            .into_iter()
            .map(|s| (s.key, s.line, s.append))
            .collect()
    }

    #[test]
    fn every_setting_is_found_even_two_on_a_line_or_after_a_bracket_in_a_string() {
        assert_eq!(
            keys("interval = 1000; intervall = 50\nname = \"a [ b\"\nslush = \"1M\"\n"),
            [
                ("interval".into(), 1, false),
                ("intervall".into(), 1, false),
                ("name".into(), 2, false),
                ("slush".into(), 3, false),
            ]
        );
        assert_eq!(
            keys("domains = [ \"a\" ]\ndomains += [ \"b\" ]\n"),
            [("domains".into(), 1, false), ("domains".into(), 2, true)]
        );
    }

    #[test]
    fn list_items_have_their_lines() {
        let s = scan(
            "t.cfg",
            "# c\nvms = [ \"name=a\", 'x\\'y',\n  \"name=b\" # x ]\n, [ \"n\", \"m\" ]\n ]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(s[0].items, [2, 2, 3, 4]);
        assert_eq!((s[1].key.as_str(), s[1].line), ("x", 6));
    }

    #[test]
    fn lexical_errors_are_worded_by_rex() {
        let err = |text| scan("t.cfg", text).unwrap_err().0;
        assert_eq!(
            err("a = 1\ninterval = -1\n"),
            "t.cfg:2: unexpected `-' (negative numbers are not accepted)"
        );
        assert_eq!(
            err("cooldown = 0100\n"),
            "t.cfg:1: `0100': a leading zero makes libxlutil read it as octal; write `100'"
        );
        assert_eq!(
            err("name = \"open\n"),
            "t.cfg:1: a string is not closed on its line"
        );
        assert_eq!(
            err("Interval = 1\n"),
            "t.cfg:1: unexpected `I' (keys are lower case)"
        );
        assert!(scan("t.cfg", "a = 0\nb = 0x10\n").is_ok());
    }
}
