//! Splits pg_hba.conf-style text into records and tokens: `#` comments,
//! backslash line continuation (PostgreSQL's rule), double-quoted names with
//! `""` for a quote, and commas as their own tokens so that `a,b` and
//! `a , b` are the same list (PgBouncer's rule).

/// One token of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A name, keyword, address or option. `quoted` words are never keywords.
    Word { text: String, quoted: bool },
    /// A `,` separating the items of a list.
    Comma,
}

impl Token {
    /// The text of an unquoted word, `None` for a quoted word or a comma.
    pub(crate) fn bare(&self) -> Option<&str> {
        match self {
            Token::Word {
                text,
                quoted: false,
            } => Some(text),
            _ => None,
        }
    }

    /// How the token looked in the file, for error messages.
    pub(crate) fn shown(&self) -> String {
        match self {
            Token::Word { text, quoted: true } => format!("\"{}\"", text.replace('"', "\"\"")),
            Token::Word { text, .. } => text.clone(),
            Token::Comma => ",".to_string(),
        }
    }
}

/// The logical records of `text`: `(first physical line number, record)`.
/// A line that ends with a backslash continues on the next line, even inside
/// a comment or a quoted name (PostgreSQL 16 documents this; PgBouncer has no
/// continuation). The backslash is removed and the lines are joined as they
/// are, so the next line usually starts with white space.
pub(crate) fn records(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (start, mut record) = pending.take().unwrap_or_else(|| (index + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                record.push_str(head);
                pending = Some((start, record));
            }
            None => {
                record.push_str(line);
                out.push((start, record));
            }
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

/// Splits one record into tokens. `Err` says what is wrong with the text.
pub(crate) fn tokenize(record: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = record.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' {
            break;
        } else if c == ',' {
            chars.next();
            tokens.push(Token::Comma);
        } else if c == '"' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('"') => break,
                    Some(other) => text.push(other),
                    None => return Err(format!("unterminated quoted name \"{text}")),
                }
            }
            if let Some(&next) = chars.peek() {
                if !(next.is_whitespace() || next == ',' || next == '#') {
                    return Err(format!(
                        "\"{text}\" is followed by '{next}'; put a space or a comma after a quoted name"
                    ));
                }
            }
            tokens.push(Token::Word { text, quoted: true });
        } else {
            let mut text = String::new();
            while let Some(&next) = chars.peek() {
                if next.is_whitespace() || next == ',' || next == '#' {
                    break;
                }
                if next == '"' {
                    return Err(format!(
                        "a quote in the middle of \"{text}\"; quote the whole name instead"
                    ));
                }
                text.push(next);
                chars.next();
            }
            tokens.push(Token::Word {
                text,
                quoted: false,
            });
        }
    }
    Ok(tokens)
}

/// A cursor over the tokens of one record.
pub(crate) struct Tokens {
    tokens: Vec<Token>,
    next: usize,
}

impl Tokens {
    pub(crate) fn new(tokens: Vec<Token>) -> Tokens {
        Tokens { tokens, next: 0 }
    }

    pub(crate) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    pub(crate) fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        if token.is_some() {
            self.next += 1;
        }
        token
    }

    /// Consumes a comma if one comes next.
    pub(crate) fn eat_comma(&mut self) -> bool {
        if self.peek() == Some(&Token::Comma) {
            self.next += 1;
            true
        } else {
            false
        }
    }
}
