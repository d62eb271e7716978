//! A small, linear-time regular-expression engine for the Go `regexp` syntax
//! that Docker's patternmatcher produces.
//!
//! Why an engine at all: patternmatcher does not implement glob matching
//! itself; it rewrites each pattern into a Go regular expression and lets
//! `regexp.MatchString` decide. The rewrite passes several characters through
//! unescaped (`[`, `]`, `^`, `\`-sequences and — because of a bitmap bug in its
//! `shouldEscape` — `|`, `{` and `}`), so real `.dockerignore` files are
//! interpreted with Go regexp semantics in those corners: `a|b*` is an
//! alternation, `x{2}*` a repetition, `\d*` a digit class, `[*]` a class of
//! `[`, `^` and `/` followed by `*` and a literal `]`. Matching Docker exactly
//! therefore means parsing that Go syntax the way Go's `regexp/syntax` does.
//!
//! The parser follows `regexp/syntax.Parse` with `syntax.Perl` flags (what
//! `regexp.Compile` uses): `^`/`$` anchor the whole text, `.` excludes `\n`,
//! negated classes include `\n`, Perl escapes and POSIX classes are accepted,
//! Unicode `\p` classes are rejected as unsupported (we do not carry Unicode
//! tables; refusing is safer than guessing). Matching is a Pike-VM simulation
//! of the Thompson NFA: `O(len(text) * len(program))`, no backtracking, so
//! hostile patterns cannot blow up.

use std::fmt;

/// Go's `maxRepeat`.
const MAX_REPEAT: i64 = 1000;
/// Go's `maxSize` (`128 << 20 / instSize`): larger programs are `ErrLarge`.
const MAX_SIZE: u64 = (128 << 20) / 40;
/// Go's `maxHeight` nesting limit.
const MAX_DEPTH: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RegexError {
    TrailingBackslash,
    InvalidEscape(String),
    UnicodeClass(String),
    InvalidCharRange(String),
    MissingBracket(String),
    MissingRepeatArgument(String),
    InvalidRepeatOp(String),
    InvalidRepeatSize(String),
    UnexpectedParen,
    MissingParen,
    TooLarge,
    Unsupported(String),
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WHY: &str = "Docker compiles this pattern into a Go regular expression";
        match self {
            RegexError::TrailingBackslash => write!(
                f,
                "trailing backslash escapes nothing; remove it or write `\\\\` for a literal backslash"
            ),
            RegexError::InvalidEscape(s) => write!(
                f,
                "`{s}` is an invalid escape ({WHY}, where `{s}` is an error); drop the backslash or use a character class"
            ),
            RegexError::UnicodeClass(s) => write!(
                f,
                "`{s}` is a Unicode class escape ({WHY}); skip-action does not support these, rewrite the pattern without it"
            ),
            RegexError::InvalidCharRange(s) => write!(
                f,
                "invalid character range or class `{s}` ({WHY}, which rejects it); make the range start at or before its end"
            ),
            RegexError::MissingBracket(s) => write!(
                f,
                "unterminated character class `{s}` ({WHY}); add the closing `]` or escape the `[` as `\\[`"
            ),
            RegexError::MissingRepeatArgument(s) => write!(
                f,
                "`{s}` has nothing to repeat ({WHY}, where `{{n}}` repeats); escape braces as `\\{{` and `\\}}`"
            ),
            RegexError::InvalidRepeatOp(s) => write!(
                f,
                "`{s}` stacks repetition operators ({WHY}, where `{{n}}` repeats); escape braces as `\\{{` and `\\}}`"
            ),
            RegexError::InvalidRepeatSize(s) => write!(
                f,
                "repetition `{s}` is out of range ({WHY}, which allows at most 1000); escape braces as `\\{{` and `\\}}`"
            ),
            RegexError::UnexpectedParen | RegexError::MissingParen => {
                write!(f, "unbalanced group in the regular expression {WHY}")
            }
            RegexError::TooLarge => write!(
                f,
                "pattern is too large once its repetitions are expanded ({WHY}); simplify it"
            ),
            RegexError::Unsupported(s) => {
                write!(f, "`{s}` cannot be interpreted the way Docker would ({WHY})")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Look {
    BeginText,
    EndText,
    WordBoundary,
    NoWordBoundary,
}

#[derive(Clone, Debug)]
enum Node {
    Char(u32),
    /// Index into the class table.
    Class(usize),
    AnyNotNl,
    Look(Look),
    Group(Box<Node>),
    Concat(Vec<Node>),
    Alternate(Vec<Node>),
    Star(Box<Node>),
    Plus(Box<Node>),
    Quest(Box<Node>),
    Repeat {
        sub: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

#[derive(Clone, Debug)]
enum Inst {
    Char(u32),
    Class(usize),
    AnyNotNl,
    Look(Look),
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled regular expression.
#[derive(Clone, Debug)]
pub(crate) struct Regex {
    prog: Vec<Inst>,
    /// Sorted, non-overlapping, non-adjacent inclusive ranges.
    classes: Vec<Box<[(u32, u32)]>>,
    /// The expression starts with `^` outside any alternation, so a match can
    /// only start at position 0.
    anchored: bool,
}

impl Regex {
    /// Parses `re` as Go's `regexp.Compile` would and builds the matcher.
    pub(crate) fn new(re: &str) -> Result<Regex, RegexError> {
        let chars: Vec<char> = re.chars().collect();
        let mut parser = Parser {
            s: &chars,
            classes: Vec::new(),
        };
        let root = parser.parse()?;
        if calc_size(&root) > MAX_SIZE {
            return Err(RegexError::TooLarge);
        }
        let anchored = match &root {
            Node::Concat(items) => matches!(items.first(), Some(Node::Look(Look::BeginText))),
            Node::Look(Look::BeginText) => true,
            _ => false,
        };
        let mut prog = Vec::new();
        emit(&root, &mut prog);
        prog.push(Inst::Match);
        Ok(Regex {
            prog,
            classes: parser.classes,
            anchored,
        })
    }

    /// Go's `MatchString`: does the expression match anywhere in `text`?
    pub(crate) fn is_match(&self, text: &str) -> bool {
        let n = self.prog.len();
        if n <= 64 {
            // Typical patterns compile to a few dozen instructions: keep the
            // thread lists in registers and avoid allocating per call.
            let mut stack = FixedStack::default();
            self.run(text, Bits64(0), Bits64(0), &mut stack)
        } else {
            let mut stack = Vec::new();
            self.run(text, SparseSet::new(n), SparseSet::new(n), &mut stack)
        }
    }

    /// Pike-VM simulation: advance every live thread in lock-step over the
    /// characters of `text`.
    fn run<S: PcSet, K: PcStack>(
        &self,
        text: &str,
        mut clist: S,
        mut nlist: S,
        stack: &mut K,
    ) -> bool {
        let mut chars = text.chars();
        let mut prev: Option<char> = None;
        let mut cur = chars.next();
        loop {
            if (prev.is_none() || !self.anchored) && self.add(&mut clist, 0, prev, cur, stack) {
                return true;
            }
            if clist.is_empty() && self.anchored {
                return false;
            }
            let Some(ch) = cur else {
                return false;
            };
            let next = chars.next();
            let c = u32::from(ch);
            let mut found = false;
            clist.for_each(|pc| {
                if found {
                    return;
                }
                let step = match &self.prog[pc] {
                    Inst::Char(want) => *want == c,
                    Inst::Class(idx) => class_contains(&self.classes[*idx], c),
                    Inst::AnyNotNl => ch != '\n',
                    _ => false,
                };
                if step && self.add(&mut nlist, pc + 1, Some(ch), next, stack) {
                    found = true;
                }
            });
            if found {
                return true;
            }
            std::mem::swap(&mut clist, &mut nlist);
            nlist.clear();
            prev = Some(ch);
            cur = next;
        }
    }

    /// Adds `pc` and everything reachable from it without consuming input to
    /// `set`; `prev`/`next` are the characters around the current position
    /// (for `^`, `$`, `\b`). Returns true when the match state is reached.
    fn add<S: PcSet, K: PcStack>(
        &self,
        set: &mut S,
        pc: usize,
        prev: Option<char>,
        next: Option<char>,
        stack: &mut K,
    ) -> bool {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if set.contains(pc) {
                continue;
            }
            set.insert(pc);
            match &self.prog[pc] {
                Inst::Match => return true,
                Inst::Jmp(t) => stack.push(*t),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Look(look) => {
                    let holds = match look {
                        Look::BeginText => prev.is_none(),
                        Look::EndText => next.is_none(),
                        Look::WordBoundary => is_word(prev) != is_word(next),
                        Look::NoWordBoundary => is_word(prev) == is_word(next),
                    };
                    if holds {
                        stack.push(pc + 1);
                    }
                }
                Inst::Char(_) | Inst::Class(_) | Inst::AnyNotNl => {}
            }
        }
        false
    }
}

/// Go's `syntax.IsWordChar` (ASCII only, as Go's `\b` is).
fn is_word(c: Option<char>) -> bool {
    matches!(c, Some(c) if c.is_ascii_alphanumeric() || c == '_')
}

fn class_contains(ranges: &[(u32, u32)], c: u32) -> bool {
    let i = ranges.partition_point(|&(_, hi)| hi < c);
    matches!(ranges.get(i), Some(&(lo, _)) if lo <= c)
}

/// A set of program counters for the VM's thread lists.
trait PcSet {
    fn contains(&self, pc: usize) -> bool;
    fn insert(&mut self, pc: usize);
    fn is_empty(&self) -> bool;
    fn clear(&mut self);
    fn for_each(&self, f: impl FnMut(usize));
}

/// Thread list for programs of at most 64 instructions.
struct Bits64(u64);

impl PcSet for Bits64 {
    fn contains(&self, pc: usize) -> bool {
        self.0 & (1u64 << pc) != 0
    }
    fn insert(&mut self, pc: usize) {
        self.0 |= 1u64 << pc;
    }
    fn is_empty(&self) -> bool {
        self.0 == 0
    }
    fn clear(&mut self) {
        self.0 = 0;
    }
    fn for_each(&self, mut f: impl FnMut(usize)) {
        let mut bits = self.0;
        while bits != 0 {
            f(bits.trailing_zeros() as usize);
            bits &= bits - 1;
        }
    }
}

/// Sparse set of program counters (Briggs & Torczon), O(1) insert/clear.
struct SparseSet {
    dense: Vec<usize>,
    sparse: Vec<usize>,
}

impl SparseSet {
    fn new(n: usize) -> SparseSet {
        SparseSet {
            dense: Vec::with_capacity(n),
            sparse: vec![0; n],
        }
    }
}

impl PcSet for SparseSet {
    fn contains(&self, i: usize) -> bool {
        let j = self.sparse[i];
        j < self.dense.len() && self.dense[j] == i
    }
    fn insert(&mut self, i: usize) {
        self.sparse[i] = self.dense.len();
        self.dense.push(i);
    }
    fn is_empty(&self) -> bool {
        self.dense.is_empty()
    }
    fn clear(&mut self) {
        self.dense.clear();
    }
    fn for_each(&self, f: impl FnMut(usize)) {
        self.dense.iter().copied().for_each(f);
    }
}

/// Work stack for the epsilon closure.
trait PcStack {
    fn push(&mut self, pc: usize);
    fn pop(&mut self) -> Option<usize>;
    fn clear(&mut self);
}

impl PcStack for Vec<usize> {
    fn push(&mut self, pc: usize) {
        Vec::push(self, pc);
    }
    fn pop(&mut self) -> Option<usize> {
        Vec::pop(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

/// Allocation-free stack for programs of at most 64 instructions: every
/// instruction enters the closure once and pushes at most two successors, so
/// 1 + 2 * 64 slots always suffice.
struct FixedStack {
    items: [u8; 160],
    len: usize,
}

impl Default for FixedStack {
    fn default() -> Self {
        FixedStack {
            items: [0; 160],
            len: 0,
        }
    }
}

impl PcStack for FixedStack {
    fn push(&mut self, pc: usize) {
        // Both bounds hold by construction (see above); ignoring an
        // impossible overflow is preferable to panicking.
        if let (Some(slot), Ok(pc)) = (self.items.get_mut(self.len), u8::try_from(pc)) {
            *slot = pc;
            self.len += 1;
        }
    }
    fn pop(&mut self) -> Option<usize> {
        self.len = self.len.checked_sub(1)?;
        Some(usize::from(self.items[self.len]))
    }
    fn clear(&mut self) {
        self.len = 0;
    }
}

/// Go's `calcSize` estimate of the compiled program, used for `ErrLarge`.
fn calc_size(node: &Node) -> u64 {
    let size = match node {
        Node::Char(_) | Node::Class(_) | Node::AnyNotNl | Node::Look(_) => 1,
        Node::Group(sub) | Node::Star(sub) => 2u64.saturating_add(calc_size(sub)),
        Node::Plus(sub) | Node::Quest(sub) => 1u64.saturating_add(calc_size(sub)),
        Node::Concat(items) => items.iter().map(calc_size).fold(0, u64::saturating_add),
        Node::Alternate(items) => items
            .iter()
            .map(calc_size)
            .fold(0, u64::saturating_add)
            .saturating_add(items.len().saturating_sub(1) as u64),
        Node::Repeat { sub, min, max } => {
            let sub = calc_size(sub);
            match max {
                None if *min == 0 => 2u64.saturating_add(sub),
                None => 1u64.saturating_add(u64::from(*min).saturating_mul(sub)),
                Some(max) => u64::from(*max)
                    .saturating_mul(sub)
                    .saturating_add(u64::from(max - min)),
            }
        }
    };
    size.max(1)
}

/// Thompson construction.
fn emit(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Char(c) => prog.push(Inst::Char(*c)),
        Node::Class(i) => prog.push(Inst::Class(*i)),
        Node::AnyNotNl => prog.push(Inst::AnyNotNl),
        Node::Look(l) => prog.push(Inst::Look(*l)),
        Node::Group(sub) => emit(sub, prog),
        Node::Concat(items) => {
            for item in items {
                emit(item, prog);
            }
        }
        Node::Alternate(items) => {
            let mut exits = Vec::new();
            for (k, item) in items.iter().enumerate() {
                if k + 1 < items.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(0, 0));
                    emit(item, prog);
                    exits.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    prog[split] = Inst::Split(split + 1, prog.len());
                } else {
                    emit(item, prog);
                }
            }
            let end = prog.len();
            for j in exits {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Star(sub) => emit_star(sub, prog),
        Node::Plus(sub) => {
            let start = prog.len();
            emit(sub, prog);
            prog.push(Inst::Split(start, prog.len() + 1));
        }
        Node::Quest(sub) => emit_quest(sub, prog),
        Node::Repeat { sub, min, max } => {
            for _ in 0..*min {
                emit(sub, prog);
            }
            match max {
                None => emit_star(sub, prog),
                Some(max) => {
                    // x{n,m} = n copies, then (m-n) optional copies; a run of
                    // `x?` accepts the same strings as Go's nested form.
                    for _ in *min..*max {
                        emit_quest(sub, prog);
                    }
                }
            }
        }
    }
}

fn emit_star(sub: &Node, prog: &mut Vec<Inst>) {
    let split = prog.len();
    prog.push(Inst::Split(0, 0));
    emit(sub, prog);
    prog.push(Inst::Jmp(split));
    prog[split] = Inst::Split(split + 1, prog.len());
}

fn emit_quest(sub: &Node, prog: &mut Vec<Inst>) {
    let split = prog.len();
    prog.push(Inst::Split(0, 0));
    emit(sub, prog);
    prog[split] = Inst::Split(split + 1, prog.len());
}

/// One level of grouping: finished alternatives plus the branch being built.
#[derive(Default)]
struct Frame {
    alternatives: Vec<Node>,
    current: Vec<Node>,
}

impl Frame {
    fn finish(mut self) -> Node {
        let last = Node::Concat(std::mem::take(&mut self.current));
        if self.alternatives.is_empty() {
            last
        } else {
            self.alternatives.push(last);
            Node::Alternate(self.alternatives)
        }
    }
}

struct Parser<'a> {
    s: &'a [char],
    classes: Vec<Box<[(u32, u32)]>>,
}

impl Parser<'_> {
    fn text(&self, from: usize, to: usize) -> String {
        self.s[from.min(self.s.len())..to.min(self.s.len())]
            .iter()
            .collect()
    }

    fn intern(&mut self, ranges: Vec<(u32, u32)>) -> Node {
        let ranges = normalize(ranges);
        self.classes.push(ranges.into_boxed_slice());
        Node::Class(self.classes.len() - 1)
    }

    /// Go's `parse` main loop, restricted to what can be reached.
    fn parse(&mut self) -> Result<Node, RegexError> {
        let s = self.s;
        let mut frames: Vec<Frame> = vec![Frame::default()];
        let mut i = 0;
        let mut last_repeat: Option<usize> = None;
        while i < s.len() {
            let mut repeat = None;
            let c = s[i];
            match c {
                '(' => {
                    if s.get(i + 1) == Some(&'?') {
                        return Err(RegexError::Unsupported(self.text(i, i + 2)));
                    }
                    if frames.len() > MAX_DEPTH {
                        return Err(RegexError::TooLarge);
                    }
                    frames.push(Frame::default());
                    i += 1;
                }
                '|' => {
                    let frame = top(&mut frames);
                    let branch = Node::Concat(std::mem::take(&mut frame.current));
                    frame.alternatives.push(branch);
                    i += 1;
                }
                ')' => {
                    if frames.len() < 2 {
                        return Err(RegexError::UnexpectedParen);
                    }
                    let node = match frames.pop() {
                        Some(frame) => frame.finish(),
                        None => return Err(RegexError::UnexpectedParen),
                    };
                    top(&mut frames).current.push(Node::Group(Box::new(node)));
                    i += 1;
                }
                '^' => {
                    top(&mut frames).current.push(Node::Look(Look::BeginText));
                    i += 1;
                }
                '$' => {
                    top(&mut frames).current.push(Node::Look(Look::EndText));
                    i += 1;
                }
                '.' => {
                    top(&mut frames).current.push(Node::AnyNotNl);
                    i += 1;
                }
                '[' => {
                    let (ranges, next) = self.parse_class(i)?;
                    let node = self.intern(ranges);
                    top(&mut frames).current.push(node);
                    i = next;
                }
                '*' | '+' | '?' => {
                    let mut after = i + 1;
                    if s.get(after) == Some(&'?') {
                        after += 1; // non-greedy: irrelevant for a yes/no match
                    }
                    if let Some(start) = last_repeat {
                        return Err(RegexError::InvalidRepeatOp(self.text(start, after)));
                    }
                    let frame = top(&mut frames);
                    let Some(sub) = frame.current.pop() else {
                        return Err(RegexError::MissingRepeatArgument(self.text(i, i + 1)));
                    };
                    let sub = Box::new(sub);
                    frame.current.push(match c {
                        '*' => Node::Star(sub),
                        '+' => Node::Plus(sub),
                        _ => Node::Quest(sub),
                    });
                    repeat = Some(i);
                    i = after;
                }
                '{' => match parse_repeat(s, i) {
                    None => {
                        // Not a valid repetition: `{` is a literal.
                        top(&mut frames).current.push(Node::Char('{' as u32));
                        i += 1;
                    }
                    Some((min, max, end)) => {
                        if !(0..=MAX_REPEAT).contains(&min)
                            || max > MAX_REPEAT
                            || (max >= 0 && min > max)
                        {
                            return Err(RegexError::InvalidRepeatSize(self.text(i, end)));
                        }
                        let mut after = end;
                        if s.get(after) == Some(&'?') {
                            after += 1;
                        }
                        if let Some(start) = last_repeat {
                            return Err(RegexError::InvalidRepeatOp(self.text(start, after)));
                        }
                        let frame = top(&mut frames);
                        let Some(sub) = frame.current.pop() else {
                            return Err(RegexError::MissingRepeatArgument(self.text(i, end)));
                        };
                        // Bounds were checked above, so the conversions hold.
                        let min = u32::try_from(min).unwrap_or(0);
                        let max = u32::try_from(max).ok();
                        frame.current.push(Node::Repeat {
                            sub: Box::new(sub),
                            min,
                            max,
                        });
                        repeat = Some(i);
                        i = after;
                    }
                },
                '\\' => {
                    i = self.parse_backslash(i, &mut frames)?;
                }
                other => {
                    top(&mut frames).current.push(Node::Char(u32::from(other)));
                    i += 1;
                }
            }
            last_repeat = repeat;
        }
        if frames.len() != 1 {
            return Err(RegexError::MissingParen);
        }
        match frames.pop() {
            Some(frame) => Ok(frame.finish()),
            None => Err(RegexError::MissingParen),
        }
    }

    /// A `\` outside a class: Perl assertions, `\Q...\E`, class escapes, or a
    /// single escaped character. Returns the index after it.
    fn parse_backslash(&mut self, i: usize, frames: &mut [Frame]) -> Result<usize, RegexError> {
        let s = self.s;
        let node = match s.get(i + 1) {
            Some('A') => Node::Look(Look::BeginText),
            Some('b') => Node::Look(Look::WordBoundary),
            Some('B') => Node::Look(Look::NoWordBoundary),
            Some('z') => Node::Look(Look::EndText),
            Some('C') => return Err(RegexError::InvalidEscape(self.text(i, i + 2))),
            Some('Q') => {
                // Everything up to `\E` (or the end) is literal, including
                // whatever the translation appended, such as the final `$`.
                let start = i + 2;
                let mut j = start;
                while j < s.len() && !(s[j] == '\\' && s.get(j + 1) == Some(&'E')) {
                    j += 1;
                }
                let frame = top(frames);
                for &c in &s[start.min(s.len())..j] {
                    frame.current.push(Node::Char(u32::from(c)));
                }
                return Ok(if j < s.len() { j + 2 } else { j });
            }
            Some('p') | Some('P') => {
                return Err(RegexError::UnicodeClass(self.text(i, i + 3)));
            }
            Some(&c) if perl_group(c).is_some() => {
                let ranges = perl_group(c).unwrap_or_default();
                let node = self.intern(ranges);
                top(frames).current.push(node);
                return Ok(i + 2);
            }
            _ => {
                let (r, next) = self.parse_escape(i)?;
                top(frames).current.push(Node::Char(r));
                return Ok(next);
            }
        };
        top(frames).current.push(node);
        Ok(i + 2)
    }

    /// Go's `parseEscape`: `s[i]` is `\`. Returns the character and the index
    /// after the escape.
    fn parse_escape(&self, i: usize) -> Result<(u32, usize), RegexError> {
        let s = self.s;
        let Some(&c) = s.get(i + 1) else {
            return Err(RegexError::TrailingBackslash);
        };
        let mut j = i + 2;
        let invalid = |end: usize| Err(RegexError::InvalidEscape(self.text(i, end)));
        let is_octal = |k: usize| matches!(s.get(k), Some('0'..='7'));
        match c {
            '1'..='7' if !is_octal(j) => invalid(j), // back-references are not supported
            '0'..='7' => {
                let mut r = u32::from(c) - u32::from('0');
                for _ in 1..3 {
                    if !is_octal(j) {
                        break;
                    }
                    r = r * 8 + (u32::from(s[j]) - u32::from('0'));
                    j += 1;
                }
                Ok((r, j))
            }
            'x' => {
                let Some(&c2) = s.get(j) else {
                    return invalid(j);
                };
                j += 1;
                if c2 == '{' {
                    let mut r: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(&d) = s.get(j) else {
                            return invalid(j);
                        };
                        j += 1;
                        if d == '}' {
                            break;
                        }
                        let Some(v) = d.to_digit(16) else {
                            return invalid(j);
                        };
                        r = r * 16 + v;
                        if r > 0x10FFFF {
                            return invalid(j);
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return invalid(j);
                    }
                    return Ok((r, j));
                }
                let x = c2.to_digit(16);
                let y = s.get(j).and_then(|d| d.to_digit(16));
                if s.get(j).is_some() {
                    j += 1;
                }
                match (x, y) {
                    (Some(x), Some(y)) => Ok((x * 16 + y, j)),
                    _ => invalid(j),
                }
            }
            'a' => Ok((7, j)),
            'f' => Ok((12, j)),
            'n' => Ok((10, j)),
            'r' => Ok((13, j)),
            't' => Ok((9, j)),
            'v' => Ok((11, j)),
            // Escaped ASCII punctuation is always itself.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((u32::from(c), j)),
            _ => invalid(j),
        }
    }

    /// Go's `parseClass`: `s[i]` is `[`. Returns the (not yet negated-away)
    /// ranges and the index after `]`.
    fn parse_class(&self, i: usize) -> Result<(Vec<(u32, u32)>, usize), RegexError> {
        let s = self.s;
        let whole = || self.text(i, s.len());
        let mut j = i + 1;
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        let negated = s.get(j) == Some(&'^');
        if negated {
            // With Perl flags (ClassNL) a negated class may match `\n`.
            j += 1;
        }
        let mut first = true;
        while j >= s.len() || s[j] != ']' || first {
            first = false;
            // POSIX class such as `[:alpha:]`; Go looks for the closing `:]`
            // anywhere further on.
            if j + 2 < s.len() && s[j] == '[' && s[j + 1] == ':' {
                if let Some(end) = find_colon_bracket(s, j + 2) {
                    let name: String = s[j..end + 2].iter().collect();
                    let Some(group) = posix_group(&name) else {
                        return Err(RegexError::InvalidCharRange(name));
                    };
                    ranges.extend(group);
                    j = end + 2;
                    continue;
                }
            }
            if s.get(j) == Some(&'\\') {
                match s.get(j + 1) {
                    Some('p') | Some('P') => {
                        return Err(RegexError::UnicodeClass(self.text(j, j + 3)));
                    }
                    Some(&c) => {
                        if let Some(group) = perl_group(c) {
                            ranges.extend(group);
                            j += 2;
                            continue;
                        }
                    }
                    None => {}
                }
            }
            let start = j;
            let (lo, next) = self.parse_class_char(j, &whole)?;
            j = next;
            let mut hi = lo;
            if j + 1 < s.len() && s[j] == '-' && s[j + 1] != ']' {
                let (h, next) = self.parse_class_char(j + 1, &whole)?;
                j = next;
                hi = h;
                if hi < lo {
                    return Err(RegexError::InvalidCharRange(self.text(start, j)));
                }
            }
            ranges.push((lo, hi));
        }
        j += 1; // the closing `]`
        if negated {
            ranges = negate(&normalize(ranges));
        }
        Ok((ranges, j))
    }

    fn parse_class_char(
        &self,
        j: usize,
        whole: &dyn Fn() -> String,
    ) -> Result<(u32, usize), RegexError> {
        match self.s.get(j) {
            None => Err(RegexError::MissingBracket(whole())),
            Some('\\') => self.parse_escape(j),
            Some(&c) => Ok((u32::from(c), j + 1)),
        }
    }
}

fn top(frames: &mut [Frame]) -> &mut Frame {
    // There is always at least the outermost frame; `)` refuses to pop it.
    let len = frames.len();
    &mut frames[len - 1]
}

fn find_colon_bracket(s: &[char], from: usize) -> Option<usize> {
    (from..s.len().saturating_sub(1)).find(|&k| s[k] == ':' && s[k + 1] == ']')
}

/// Go's `parseRepeat`: `{n}`, `{n,}` or `{n,m}` starting at `s[i] == '{'`.
/// Returns `(min, max, index after '}')` with `max == -1` for "unbounded" and
/// `-1` for numbers too large; `None` if the text is not of that form (then
/// `{` is a literal).
fn parse_repeat(s: &[char], i: usize) -> Option<(i64, i64, usize)> {
    let mut j = i + 1;
    let (mut min, next) = parse_int(s, j)?;
    j = next;
    let max;
    match s.get(j)? {
        ',' => {
            j += 1;
            if *s.get(j)? == '}' {
                max = -1;
            } else {
                let (m, next) = parse_int(s, j)?;
                j = next;
                if m < 0 {
                    min = -1;
                }
                max = m;
            }
        }
        _ => max = min,
    }
    if *s.get(j)? != '}' {
        return None;
    }
    Some((min, max, j + 1))
}

/// Go's `parseInt`: decimal digits without a leading zero; `-1` when >= 1e8.
fn parse_int(s: &[char], i: usize) -> Option<(i64, usize)> {
    let is_digit = |k: usize| matches!(s.get(k), Some('0'..='9'));
    if !is_digit(i) {
        return None;
    }
    if s[i] == '0' && is_digit(i + 1) {
        return None;
    }
    let mut j = i;
    let mut n: i64 = 0;
    while is_digit(j) {
        if n >= 100_000_000 {
            n = -1;
        }
        if n >= 0 {
            n = n * 10 + i64::from(u32::from(s[j]) - u32::from('0'));
        }
        j += 1;
    }
    Some((n, j))
}

/// `\d \D \s \S \w \W` (ASCII, as in Go).
fn perl_group(c: char) -> Option<Vec<(u32, u32)>> {
    let d = vec![(0x30, 0x39)];
    let sp = vec![(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
    let w = vec![(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];
    Some(match c {
        'd' => d,
        'D' => negate(&d),
        's' => sp,
        'S' => negate(&sp),
        'w' => w,
        'W' => negate(&w),
        _ => return None,
    })
}

/// POSIX classes `[:name:]` and `[:^name:]` (ASCII, as in Go).
fn posix_group(name: &str) -> Option<Vec<(u32, u32)>> {
    let inner = name.strip_prefix("[:")?.strip_suffix(":]")?;
    let (negated, inner) = match inner.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let ranges: Vec<(u32, u32)> = match inner {
        "alnum" => vec![(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
        "alpha" => vec![(0x41, 0x5A), (0x61, 0x7A)],
        "ascii" => vec![(0x00, 0x7F)],
        "blank" => vec![(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => vec![(0x00, 0x1F), (0x7F, 0x7F)],
        "digit" => vec![(0x30, 0x39)],
        "graph" => vec![(0x21, 0x7E)],
        "lower" => vec![(0x61, 0x7A)],
        "print" => vec![(0x20, 0x7E)],
        "punct" => vec![(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
        "space" => vec![(0x09, 0x0D), (0x20, 0x20)],
        "upper" => vec![(0x41, 0x5A)],
        "word" => vec![(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
        "xdigit" => vec![(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some(if negated { negate(&ranges) } else { ranges })
}

/// Sorts and merges overlapping or adjacent ranges.
fn normalize(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Complement over all code points `0..=0x10FFFF` (input must be normalized).
fn negate(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    let mut next = 0u32;
    for &(lo, hi) in ranges {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = hi.saturating_add(1);
    }
    if next <= 0x10FFFF {
        out.push((next, 0x10FFFF));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, text: &str) -> bool {
        Regex::new(re)
            .unwrap_or_else(|e| panic!("{re}: {e}"))
            .is_match(text)
    }

    #[test]
    fn basics() {
        assert!(m("^abc$", "abc"));
        assert!(!m("^abc$", "abcd"));
        assert!(m("^[^/]*\\.txt$", "a.txt"));
        assert!(!m("^[^/]*\\.txt$", "d/a.txt"));
        assert!(m("^(.*/)?foo$", "a/b/foo"));
        assert!(m("^(.*/)?foo$", "foo"));
        assert!(!m("^(.*/)?foo$", "xfoo"));
        assert!(!m("^(.*/)?foo$", "a\nb/foo"), "`.` does not match newline");
        assert!(m("^[^/]$", "\n"), "negated class matches newline");
        assert!(m("^a|b[^/]*$", "q/b"));
        assert!(m("^x{2}[^/]*$", "xxy"));
        assert!(!m("^x{2}[^/]*$", "xy"));
        assert!(m("^[[^/]*]$", "^/]"));
        assert!(m("^\\d[^/]*$", "1"));
        assert!(m("^a\\Qb[^/]*$", "ab[^/]*$zz"));
        assert!(m("^[[:alpha:]]$", "q"));
        assert!(!m("^[[:^alpha:]]$", "q"));
        assert!(m("^a\\bb|a\\b$", "a"));
        assert!(m("^\\x41\\101$", "AA"));
        assert!(m("^[^\\d]$", "x"));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Regex::new("^[l-O]$"),
            Err(RegexError::InvalidCharRange(_))
        ));
        assert!(matches!(
            Regex::new("^\\q$"),
            Err(RegexError::InvalidEscape(_))
        ));
        assert!(matches!(
            Regex::new("^\\1$"),
            Err(RegexError::InvalidEscape(_))
        ));
        assert!(matches!(
            Regex::new("^[^/]*{2}$"),
            Err(RegexError::InvalidRepeatOp(_))
        ));
        assert!(matches!(
            Regex::new("^a{1001}$"),
            Err(RegexError::InvalidRepeatSize(_))
        ));
        assert!(matches!(
            Regex::new("^[[:nope:]]$"),
            Err(RegexError::InvalidCharRange(_))
        ));
        assert!(matches!(
            Regex::new("^\\pL$"),
            Err(RegexError::UnicodeClass(_))
        ));
        assert!(matches!(
            Regex::new("^[a$"),
            Err(RegexError::MissingBracket(_))
        ));
        assert!(matches!(
            Regex::new("^|*$"),
            Err(RegexError::MissingRepeatArgument(_))
        ));
    }

    #[test]
    fn literal_brace_when_not_a_repeat() {
        assert!(m("^a{,2}$", "a{,2}"));
        assert!(m("^a{x$", "a{x"));
        assert!(m("^a{01}$", "a{01}"));
    }

    #[test]
    fn set_ops() {
        assert_eq!(normalize(vec![(5, 6), (1, 2), (3, 4)]), vec![(1, 6)]);
        assert_eq!(negate(&[(0, 9)]), vec![(10, 0x10FFFF)]);
        assert_eq!(negate(&[(0x10, 0x10FFFF)]), vec![(0, 0xF)]);
        assert!(class_contains(&[(1, 3), (7, 9)], 8));
        assert!(!class_contains(&[(1, 3), (7, 9)], 5));
    }
}
