//! ConnectWise's `conditions` query language, the part a connector needs:
//! `field = "text"`, `field = 12`, `field = true`, `!=`, `like "%x%"`,
//! `contains "x"`, `field in (1, 2)`, joined by `and`. Strings are in
//! double quotes with `\"` and `\\` escapes. Anything else is a contract
//! violation (ConnectWise answers 400).

use serde_json::Value;

/// One comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub field: String,
    pub op: Op,
    pub value: Lit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Like,
    Contains,
    In,
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Lit>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!("conditions {:?}: {what} at byte {}", self.src, self.i)
    }

    fn word(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || matches!(self.s[self.i], b'_' | b'/'))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Result<String, String> {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' if self.i + 1 < self.s.len() => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| self.err("not UTF-8"));
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        Err(self.err("unterminated string"))
    }

    fn lit(&mut self) -> Result<Lit, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'"') => Ok(Lit::Str(self.string()?)),
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    items.push(self.lit()?);
                    self.ws();
                    if self.eat(")") {
                        return Ok(Lit::List(items));
                    }
                    if !self.eat(",") {
                        return Err(self.err("expected , or )"));
                    }
                }
            }
            Some(_) => {
                let w = self.word();
                match w.as_str() {
                    "true" => Ok(Lit::Bool(true)),
                    "false" => Ok(Lit::Bool(false)),
                    _ => w.parse().map(Lit::Int).map_err(|_| {
                        self.err(&format!(
                            "{w:?} is not a literal (strings need double quotes)"
                        ))
                    }),
                }
            }
            None => Err(self.err("missing value")),
        }
    }
}

/// Parses a `conditions` parameter.
pub fn parse(src: &str) -> Result<Vec<Cond>, String> {
    let mut p = P {
        s: src.as_bytes(),
        i: 0,
        src,
    };
    let mut out = Vec::new();
    loop {
        p.ws();
        let field = p.word();
        if field.is_empty() {
            return Err(p.err("expected a field name"));
        }
        p.ws();
        let op = if p.eat("!=") {
            Op::Ne
        } else if p.eat("=") {
            Op::Eq
        } else {
            match p.word().to_ascii_lowercase().as_str() {
                "like" => Op::Like,
                "contains" => Op::Contains,
                "in" => Op::In,
                other => return Err(p.err(&format!("unknown operator {other:?}"))),
            }
        };
        let value = p.lit()?;
        if (op == Op::In) != matches!(value, Lit::List(_)) {
            return Err(p.err("`in` takes a (list), and only `in` does"));
        }
        if matches!(op, Op::Like | Op::Contains) && !matches!(value, Lit::Str(_)) {
            return Err(p.err("like/contains take a string"));
        }
        out.push(Cond { field, op, value });
        p.ws();
        if p.i == p.s.len() {
            return Ok(out);
        }
        let conj = p.word().to_ascii_lowercase();
        if conj != "and" {
            return Err(p.err(&format!("expected `and`, got {conj:?}")));
        }
    }
}

fn lit_eq(v: &Value, l: &Lit) -> bool {
    match l {
        Lit::Str(s) => v.as_str().is_some_and(|x| x.eq_ignore_ascii_case(s)),
        Lit::Int(n) => v.as_i64() == Some(*n),
        Lit::Bool(b) => v.as_bool() == Some(*b),
        Lit::List(items) => items.iter().any(|i| lit_eq(v, i)),
    }
}

/// `%` wildcards at either end; case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    let (t, p) = (text.to_lowercase(), pattern.to_lowercase());
    match (p.strip_prefix('%'), p.strip_suffix('%')) {
        (Some(_), Some(_)) if p.len() >= 2 => t.contains(&p[1..p.len() - 1]),
        (Some(rest), None) => t.ends_with(rest),
        (None, Some(rest)) => t.starts_with(rest),
        _ => t == p,
    }
}

impl Cond {
    /// Whether row `r` (a JSON object) satisfies this; `a/b` reads a
    /// nested field.
    pub fn matches(&self, r: &Value) -> bool {
        let v = self.field.split('/').fold(r, |v, k| &v[k]);
        match (self.op, &self.value) {
            (Op::Eq | Op::In, l) => lit_eq(v, l),
            (Op::Ne, l) => !lit_eq(v, l),
            (Op::Like, Lit::Str(p)) => v.as_str().is_some_and(|t| like(t, p)),
            (Op::Contains, Lit::Str(p)) => v
                .as_str()
                .is_some_and(|t| t.to_lowercase().contains(&p.to_lowercase())),
            _ => false,
        }
    }
}
