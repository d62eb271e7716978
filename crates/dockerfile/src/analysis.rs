//! Walks the stages a target needs and collects what they read, following
//! BuildKit's `dockerfile2llb` semantics:
//!
//! * Global ARGs (before the first FROM) are visible only in FROM lines and
//!   to stage-level `ARG NAME` redeclarations. BuildKit also puts its
//!   platform ARGs (`TARGETARCH`, ...) in global scope; their values depend
//!   on the builder, so unless the caller passes them they are *unknown*.
//! * Inside a stage, substitution sees ENV and ARG values set so far, the
//!   state inherited from a parent stage (`FROM <stage>`), and the base
//!   image's ENV — which we cannot see. A variable not set by the Dockerfile
//!   is therefore unknown unless the stage chain starts at `scratch`.
//! * Only stages reachable from the target (via FROM, `COPY --from` and
//!   `RUN --mount=from=`) are built. When a reference cannot be resolved
//!   statically, every stage is treated as reachable.
//!
//! Anything unknown that could change a context path turns into a
//! `whole_context` reason instead of a guess.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use crate::model::{CopyInstr, Instr, Model};
use crate::paths::{classify_add_source, clean_context_path, csv_fields, AddSource};
use crate::shell::{Env, Lexer, Lookup, UnknownVar};
use crate::{Analysis, ImageUse, ImageUseKind, ParseError, Remote, Source};

/// ARGs BuildKit defines from the build and target platforms.
const PLATFORM_ARGS: [&str; 10] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDOSVERSION",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETOSVERSION",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// ARGs BuildKit never exports into the stage environment.
const NON_ENV_ARGS: [&str; 2] = ["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// Upper bound on work that multiplies with the number of child stages:
/// environment entries copied between stages and ONBUILD triggers replayed.
/// Only a hostile Dockerfile (a huge fan-out of stages inheriting a huge
/// environment or many triggers) gets near it; it keeps analysis bounded.
const WORK_BUDGET: usize = 2_000_000;

fn spend(budget: &mut usize, cost: usize, line: usize) -> Result<(), ParseError> {
    *budget = budget.checked_sub(cost).ok_or_else(|| ParseError {
        line,
        message: "the Dockerfile is too large to analyze (too many stages inheriting large \
                  environments or ONBUILD triggers)"
            .into(),
    })?;
    Ok(())
}

/// The substituted flags of one COPY/ADD that shape what it reads.
#[derive(Debug, Default)]
struct CopyFlags {
    excludes: Vec<String>,
    chmod_fixed: bool,
}

/// A variable's value as far as static analysis can tell.
#[derive(Debug, Clone)]
enum Val {
    Known(String),
    /// Unknown, with the reason.
    Unknown(String),
}

impl Val {
    fn lookup(&self) -> Lookup {
        match self {
            Val::Known(v) => Lookup::Set(v.clone()),
            Val::Unknown(why) => Lookup::Unknown(why.clone()),
        }
    }
}

/// The global scope used for FROM lines and inherited by `ARG NAME`.
struct GlobalEnv(HashMap<String, Val>);

impl Env for GlobalEnv {
    fn lookup(&self, name: &str) -> Lookup {
        // No image environment exists in global scope: missing means unset.
        self.0.get(name).map_or(Lookup::Unset, Val::lookup)
    }
}

/// The substitution environment at some point of a stage.
#[derive(Debug, Clone, Default)]
struct StageEnv {
    vars: HashMap<String, Val>,
    /// `Some(why)` when the base image's ENV is invisible to us (every base
    /// except a `scratch`-rooted stage chain).
    base: Option<String>,
    /// ARGs declared without any value, by line — only for better messages.
    valueless_args: HashMap<String, usize>,
    /// Set when an ENV assigned a variable whose *name* is unknown; then no
    /// lookup can be trusted.
    poisoned: Option<String>,
}

impl Env for StageEnv {
    fn lookup(&self, name: &str) -> Lookup {
        if let Some(p) = &self.poisoned {
            return Lookup::Unknown(p.clone());
        }
        if let Some(v) = self.vars.get(name) {
            return v.lookup();
        }
        match (&self.base, self.valueless_args.get(name)) {
            (Some(_), Some(line)) => Lookup::Unknown(format!(
                "ARG {name} (line {line}) has no default and was not passed as a build arg, \
                 so BuildKit takes its value from the base image's environment if it sets one"
            )),
            (Some(why), None) => Lookup::Unknown(why.clone()),
            (None, _) if name == "PATH" => {
                Lookup::Unknown("PATH is set by the builder's default".into())
            }
            (None, _) => Lookup::Unset,
        }
    }
}

/// Result of substituting one word.
enum Ex {
    Known(String),
    Unknown(Vec<UnknownVar>),
}

fn describe(vars: &[UnknownVar]) -> String {
    if vars.is_empty() {
        return "a value that cannot be determined".into();
    }
    vars.iter()
        .map(|u| format!("${} ({})", u.name, u.why))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// What a `--from` / `from=` value names.
enum StageRef {
    Stages(Vec<usize>),
    Scratch,
    Image,
    BadIndex,
}

/// How a stage's FROM resolved.
#[derive(Debug, Clone)]
enum Base {
    Stage(usize),
    Scratch,
    Image(String),
    /// The expression depends on unknown values (raw text, why).
    Unresolved(String, String),
}

struct Ctx<'a> {
    model: &'a Model,
    /// Names declared by global ARGs, for the "redeclare it" hint.
    global_names: HashSet<String>,
    args: &'a BTreeMap<String, String>,
    lexer: Lexer,
    global: GlobalEnv,
    names: HashMap<String, Vec<usize>>,
    declared: BTreeSet<String>,
    sources: Vec<Source>,
    images: Vec<ImageUse>,
    remotes: Vec<Remote>,
    reasons: Vec<String>,
    reason_set: HashSet<String>,
}

/// How many reasons `whole_context` spells out; the rest are counted.
const MAX_REASONS: usize = 10;

impl Ctx<'_> {
    /// Like [`describe`], with a hint for the classic mistake of using a
    /// global ARG inside a stage without redeclaring it.
    fn explain(&self, vars: &[UnknownVar]) -> String {
        let mut text = describe(vars);
        if let Some(u) = vars.iter().find(|u| self.global_names.contains(&u.name)) {
            text.push_str(&format!(
                "; note that {0} is a global ARG, which a stage only sees after `ARG {0}`",
                u.name
            ));
        }
        text
    }

    fn expand(&self, word: &str, env: &dyn Env, line: usize, what: &str) -> Result<Ex, ParseError> {
        match self.lexer.process(word, env) {
            Ok(e) if e.known => Ok(Ex::Known(e.text)),
            Ok(e) => Ok(Ex::Unknown(e.unknown)),
            Err(e) => Err(ParseError {
                line,
                message: format!("{what} `{word}`: {e}"),
            }),
        }
    }

    /// BuildKit's stage lookup for `--from`: an integer is an index, else a
    /// stage name (case-insensitive), else an image. When a name is used by
    /// several stages all of them count, which can only over-report.
    fn resolve_ref(&self, s: &str) -> StageRef {
        if let Ok(i) = s.parse::<i64>() {
            return match usize::try_from(i) {
                Ok(i) if i < self.model.stages.len() => StageRef::Stages(vec![i]),
                _ => StageRef::BadIndex,
            };
        }
        if let Some(v) = self.names.get(&s.to_lowercase()) {
            return StageRef::Stages(v.clone());
        }
        if s == "scratch" {
            StageRef::Scratch
        } else {
            StageRef::Image
        }
    }

    /// Stage references made by an instruction, as written (for the
    /// dependency graph, which BuildKit builds before any substitution).
    fn static_froms(instr: &Instr) -> Vec<String> {
        match instr {
            Instr::Copy(c) => c.from.iter().cloned().collect(),
            Instr::Run { mounts, .. } => mounts
                .iter()
                .filter_map(|m| csv_fields(m).ok())
                .flat_map(|fields| {
                    fields.into_iter().filter_map(|f| {
                        let (k, v) = f.split_once('=')?;
                        (k.eq_ignore_ascii_case("from") && !v.is_empty()).then(|| v.to_string())
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn reason(&mut self, r: String) {
        if self.reason_set.insert(r.clone()) {
            self.reasons.push(r);
        }
    }

    /// Records what a `--from` value refers to (an outside image or nothing
    /// for stages/scratch); unresolvable values become whole-context reasons.
    fn use_ref(
        &mut self,
        from: &str,
        line: usize,
        kind: ImageUseKind,
        what: &str,
        env: &StageEnv,
    ) -> Result<(), ParseError> {
        let resolved = if from.contains('$') {
            // BuildKit rejects variables here; other builders substitute
            // them. Follow the substitution when it is certain.
            match self.expand(from, env, line, what)? {
                Ex::Known(s) => s,
                Ex::Unknown(vars) => {
                    self.reason(format!(
                        "line {line}: {what}={from} depends on {}, so it is unknown which stage or image it reads",
                        self.explain(&vars)
                    ));
                    self.images.push(ImageUse {
                        reference: from.to_string(),
                        line,
                        kind,
                    });
                    return Ok(());
                }
            }
        } else {
            from.to_string()
        };
        match self.resolve_ref(&resolved) {
            StageRef::Image => self.images.push(ImageUse {
                reference: resolved,
                line,
                kind,
            }),
            StageRef::BadIndex => self.reason(format!(
                "line {line}: {what}={resolved} is not a valid stage index (there are {} stages)",
                self.model.stages.len()
            )),
            StageRef::Stages(_) | StageRef::Scratch => {}
        }
        Ok(())
    }

    fn instr(&mut self, instr: &Instr, env: &mut StageEnv) -> Result<(), ParseError> {
        match instr {
            Instr::Arg { line, decls } => {
                for d in decls {
                    self.declared.insert(d.name.clone());
                    let passed = self.args.get(&d.name);
                    let mut value = None;
                    if d.default.is_none() && passed.is_none() {
                        // `ARG NAME` re-exposes the global value.
                        value = self.global.0.get(&d.name).cloned();
                    }
                    if let Some(v) = passed {
                        value = Some(Val::Known(v.clone()));
                    } else if let Some(def) = &d.default {
                        value = Some(match self.expand(def, env, *line, "ARG default")? {
                            Ex::Known(s) => Val::Known(s),
                            Ex::Unknown(vars) => Val::Unknown(format!(
                                "ARG {} (line {line}) defaults to `{def}`, which depends on {}",
                                d.name,
                                describe(&vars)
                            )),
                        });
                    }
                    match value {
                        Some(v) => {
                            if !NON_ENV_ARGS.contains(&d.name.as_str()) {
                                env.vars.insert(d.name.clone(), v);
                            }
                        }
                        None => {
                            env.valueless_args.insert(d.name.clone(), *line);
                        }
                    }
                }
            }
            Instr::Env { line, pairs } => {
                // BuildKit substitutes every pair with the environment from
                // *before* the instruction, then assigns them in order.
                let mut assigned = Vec::new();
                for (k, v) in pairs {
                    let key = self.expand(k, env, *line, "ENV name")?;
                    let val = self.expand(v, env, *line, "ENV value")?;
                    assigned.push((key, val));
                }
                for (key, val) in assigned {
                    match key {
                        Ex::Known(k) => {
                            let v = match val {
                                Ex::Known(s) => Val::Known(s),
                                Ex::Unknown(vars) => Val::Unknown(format!(
                                    "ENV {k} (line {line}) is set from {}",
                                    describe(&vars)
                                )),
                            };
                            env.vars.insert(k, v);
                        }
                        Ex::Unknown(vars) => {
                            env.poisoned = Some(format!(
                                "ENV at line {line} sets a variable whose name depends on {}",
                                describe(&vars)
                            ));
                        }
                    }
                }
            }
            Instr::Copy(c) => self.copy(c, env)?,
            Instr::Run { line, mounts } => {
                for m in mounts {
                    self.mount(m, *line, env)?;
                }
            }
            Instr::Other => {}
        }
        Ok(())
    }

    fn copy(&mut self, c: &CopyInstr, env: &StageEnv) -> Result<(), ParseError> {
        let name = c.name();
        if !c.unknown_flags.is_empty() {
            // A flag we do not know may change what is read (as `--parents` does): hash
            // everything rather than guess.
            self.reason(format!(
                "line {}: {name} flag {} is not understood by this analysis",
                c.line,
                c.unknown_flags
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let Some(from) = &c.from {
            // Sources are paths inside another stage or image, not the context.
            return self.use_ref(
                from,
                c.line,
                ImageUseKind::CopyFrom,
                &format!("{name} --from"),
                env,
            );
        }
        let flags = self.copy_flags(c, env)?;
        let strict = c.sources.iter().map(|s| (s, true));
        for (src, is_strict) in strict.chain(c.alt_sources.iter().map(|s| (s, false))) {
            let expanded = match self.expand(src, env, c.line, &format!("{name} source")) {
                Ok(x) => x,
                Err(e) if is_strict => return Err(e),
                // A reading under which the build would fail reads nothing.
                Err(_) => continue,
            };
            match expanded {
                // A literal `http(s)://` prefix makes the source remote
                // whatever the variables expand to (git or HTTP, never the
                // context), so the URL is reported as written.
                Ex::Unknown(_)
                    if c.is_add && (src.starts_with("http://") || src.starts_with("https://")) =>
                {
                    self.remotes.push(Remote {
                        url: src.clone(),
                        line: c.line,
                        checksum: self.checksum(c, env)?,
                    });
                }
                Ex::Unknown(vars) => {
                    let why = self.explain(&vars);
                    self.reason(format!(
                        "line {}: {name} source `{src}` depends on {why}",
                        c.line
                    ));
                }
                Ex::Known(s) => {
                    if c.is_add && classify_add_source(&s) != AddSource::Local {
                        let checksum = self.checksum(c, env)?;
                        self.remotes.push(Remote {
                            url: s,
                            line: c.line,
                            checksum,
                        });
                    } else {
                        let mut source = Source::plain(clean_context_path(&s), c.line, name);
                        source.excludes = flags.excludes.clone();
                        source.chmod_fixed = flags.chmod_fixed;
                        if c.parents {
                            source.pivot = Some(match s.split_once("/./") {
                                Some((pivot, _)) => clean_context_path(pivot),
                                None => ".".into(),
                            });
                        }
                        self.sources.push(source);
                    }
                }
            }
        }
        Ok(())
    }

    /// `--exclude` and `--chmod` after substitution. An exclude pattern that cannot be
    /// resolved is dropped (excluding less only hashes more), and so is a `--chmod` that is not
    /// a known octal mode (a symbolic `u+x` keeps part of the source mode).
    fn copy_flags(&mut self, c: &CopyInstr, env: &StageEnv) -> Result<CopyFlags, ParseError> {
        let mut out = CopyFlags::default();
        for x in &c.excludes {
            if let Ex::Known(v) = self.expand(x, env, c.line, "--exclude")? {
                if !v.is_empty() {
                    out.excludes.push(v);
                }
            }
        }
        if let Some(m) = &c.chmod {
            if let Ex::Known(v) = self.expand(m, env, c.line, "--chmod")? {
                out.chmod_fixed = !v.is_empty()
                    && v.bytes().all(|b| (b'0'..=b'7').contains(&b))
                    && u32::from_str_radix(&v, 8).is_ok_and(|m| m <= 0o7777);
            }
        }
        Ok(out)
    }

    /// The `--checksum` of an ADD, if it is known; an unknown checksum
    /// cannot pin anything, so it is reported as absent.
    fn checksum(&self, c: &CopyInstr, env: &StageEnv) -> Result<Option<String>, ParseError> {
        Ok(match &c.checksum {
            Some(cs) => match self.expand(cs, env, c.line, "ADD --checksum")? {
                Ex::Known(v) if !v.is_empty() => Some(v),
                _ => None,
            },
            None => None,
        })
    }

    fn mount(&mut self, spec: &str, line: usize, env: &StageEnv) -> Result<(), ParseError> {
        let fields = match csv_fields(spec) {
            Ok(f) => f,
            Err(e) => {
                self.reason(format!("line {line}: cannot parse --mount={spec} ({e})"));
                return Ok(());
            }
        };
        let (mut typ, mut from, mut source) = (None, None, None);
        for f in &fields {
            let known = match f.split_once('=') {
                None => matches!(
                    f.to_ascii_lowercase().as_str(),
                    "readonly" | "ro" | "readwrite" | "rw" | "required"
                ),
                Some((k, v)) => match k.to_ascii_lowercase().as_str() {
                    "type" => {
                        typ = Some(v);
                        true
                    }
                    "from" => {
                        // `from=` (empty) means the build context.
                        from = Some(v).filter(|v| !v.is_empty());
                        true
                    }
                    "source" | "src" => {
                        source = Some(v);
                        true
                    }
                    "target" | "dst" | "destination" | "readonly" | "ro" | "readwrite" | "rw"
                    | "required" | "id" | "sharing" | "mode" | "uid" | "gid" | "size" | "env" => {
                        true
                    }
                    _ => false,
                },
            };
            if !known {
                self.reason(format!(
                    "line {line}: --mount option `{f}` is not understood by this analysis"
                ));
                return Ok(());
            }
        }
        let typ = match typ {
            None => "bind".to_string(),
            Some(t) => match self.expand(t, env, line, "--mount type")? {
                Ex::Known(s) => s.to_lowercase(),
                Ex::Unknown(vars) => {
                    let why = self.explain(&vars);
                    self.reason(format!("line {line}: --mount type `{t}` depends on {why}"));
                    return Ok(());
                }
            },
        };
        if !matches!(typ.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
            self.reason(format!(
                "line {line}: --mount type `{typ}` is not known to this analysis"
            ));
            return Ok(());
        }
        if let Some(f) = from {
            return self.use_ref(f, line, ImageUseKind::MountFrom, "RUN --mount from", env);
        }
        if typ == "bind" {
            // No source means the root of the context: all of it.
            let src = source.unwrap_or("");
            match self.expand(src, env, line, "--mount source")? {
                Ex::Known(s) => {
                    self.sources
                        .push(Source::plain(clean_context_path(&s), line, "RUN --mount"))
                }
                Ex::Unknown(vars) => {
                    let why = self.explain(&vars);
                    self.reason(format!(
                        "line {line}: RUN --mount source `{src}` depends on {why}"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn missing_target(model: &Model, target: &str) -> ParseError {
    let mut names: Vec<&str> = Vec::new();
    for s in &model.stages {
        if let Some(n) = s.name.as_deref() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let message = if names.is_empty() {
        format!(
            "target stage {target:?} not found: this Dockerfile has no named stages \
             (name one with `FROM <image> AS {target}`)"
        )
    } else {
        format!(
            "target stage {target:?} not found; the stages in this Dockerfile are: {}",
            names.join(", ")
        )
    };
    ParseError { line: 0, message }
}

/// Whether a `# syntax=` image is Docker's own Dockerfile frontend (any tag or digest, with or
/// without the `docker.io/` prefix), whose rules this analysis follows.
fn is_dockerfile_frontend(image: &str) -> bool {
    let name = image.split_once('@').map_or(image, |(n, _)| n);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name == "docker/dockerfile"
}

/// Stable order by line, keeping the first of identical entries (ONBUILD
/// triggers can produce the same entry for several child stages).
fn order<T, K: Eq + std::hash::Hash>(
    mut v: Vec<T>,
    line: impl Fn(&T) -> usize,
    key: impl Fn(&T) -> K,
) -> Vec<T> {
    v.sort_by_key(|x| line(x));
    let mut seen = HashSet::new();
    v.retain(|x| seen.insert(key(x)));
    v
}

pub(crate) fn analyze(
    model: &Model,
    args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Analysis, ParseError> {
    let stages = &model.stages;
    let n = stages.len();
    let target_idx = match target {
        Some(t) => {
            let lower = t.to_lowercase();
            stages
                .iter()
                .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
                .ok_or_else(|| missing_target(model, t))?
        }
        None => n - 1,
    };
    let target_label = stages[target_idx]
        .name
        .clone()
        .unwrap_or_else(|| target_idx.to_string());

    let mut names: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in stages.iter().enumerate() {
        if let Some(name) = &s.name {
            names.entry(name.clone()).or_default().push(i);
        }
    }

    // Global scope: platform ARGs, TARGETSTAGE, then the global ARGs.
    let mut global = HashMap::new();
    for p in PLATFORM_ARGS {
        let v = match args.get(p) {
            Some(v) => Val::Known(v.clone()),
            None => Val::Unknown(format!(
                "{p} is set by the builder from the platform; pass it as a build arg to resolve it"
            )),
        };
        global.insert(p.to_string(), v);
    }
    let target_stage = args.get("TARGETSTAGE").cloned().unwrap_or_else(|| {
        target
            .map(str::to_string)
            .or_else(|| stages[n - 1].name.clone())
            .unwrap_or_default()
    });
    global.insert("TARGETSTAGE".into(), Val::Known(target_stage));

    let mut ctx = Ctx {
        model,
        global_names: model
            .meta_args
            .iter()
            .flat_map(|(_, decls)| decls.iter().map(|d| d.name.clone()))
            .collect(),
        args,
        lexer: Lexer::new(model.escape),
        global: GlobalEnv(global),
        names,
        declared: BTreeSet::new(),
        sources: Vec::new(),
        images: Vec::new(),
        remotes: Vec::new(),
        reasons: Vec::new(),
        reason_set: HashSet::new(),
    };

    for (line, decls) in &model.meta_args {
        for d in decls {
            ctx.declared.insert(d.name.clone());
            let value = if let Some(v) = args.get(&d.name) {
                Some(Val::Known(v.clone()))
            } else if let Some(def) = &d.default {
                Some(match ctx.expand(def, &ctx.global, *line, "ARG default")? {
                    Ex::Known(s) => Val::Known(s),
                    Ex::Unknown(vars) => Val::Unknown(format!(
                        "global ARG {} (line {line}) defaults to `{def}`, which depends on {}",
                        d.name,
                        describe(&vars)
                    )),
                })
            } else {
                None
            };
            if let Some(v) = value {
                ctx.global.0.insert(d.name.clone(), v);
            }
        }
    }

    // Resolve every FROM (BuildKit does this for all stages, reachable or
    // not, and rejects an empty result).
    let mut uncertain = false;
    let mut bases = Vec::with_capacity(n);
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, st) in stages.iter().enumerate() {
        let base = match ctx.expand(&st.base, &ctx.global, st.line, "FROM")? {
            Ex::Known(s) if s.is_empty() => {
                return Err(ParseError {
                    line: st.line,
                    message: format!(
                        "FROM {} resolves to an empty image name; pass the build arg it uses \
                         or give the ARG a default",
                        st.base
                    ),
                })
            }
            Ex::Known(s) => {
                let lower = s.to_lowercase();
                match (0..i)
                    .rev()
                    .find(|&j| stages[j].name.as_deref() == Some(lower.as_str()))
                {
                    Some(j) => Base::Stage(j),
                    None if s == "scratch" => Base::Scratch,
                    None => {
                        // BuildKit reads `FROM 0` as an image named "0"; we
                        // also keep stage 0 reachable, which only over-reports.
                        if let Ok(j) = s.parse::<usize>() {
                            if j < i {
                                deps[i].push(j);
                            }
                        }
                        Base::Image(s)
                    }
                }
            }
            Ex::Unknown(vars) => {
                // The lexer's partial text keeps only characters that appear
                // whatever the unknown values are. Stage names cannot contain
                // `:`, `/` or `@`, so such a base is certainly an image.
                let certain_text = ctx
                    .lexer
                    .process(&st.base, &ctx.global)
                    .map(|e| e.text)
                    .unwrap_or_default();
                if !certain_text.contains([':', '/', '@']) {
                    uncertain = true;
                }
                Base::Unresolved(st.base.clone(), describe(&vars))
            }
        };
        bases.push(base);
    }

    // Dependencies, from references as written.
    for (i, st) in stages.iter().enumerate() {
        let mut instrs: Vec<&Instr> = Vec::new();
        if let Base::Stage(j) = bases[i] {
            deps[i].push(j);
            instrs.extend(&stages[j].onbuild);
        }
        instrs.extend(&st.instrs);
        for instr in instrs {
            for from in Ctx::static_froms(instr) {
                if from.contains('$') {
                    uncertain = true;
                    continue;
                }
                match ctx.resolve_ref(&from) {
                    StageRef::Stages(v) => deps[i].extend(v),
                    StageRef::BadIndex => uncertain = true,
                    StageRef::Scratch | StageRef::Image => {}
                }
            }
        }
    }

    // Stages the target certainly needs; when some reference is unknown,
    // every other stage may be needed too.
    let certain = {
        let mut seen = vec![false; n];
        let mut queue = VecDeque::from([target_idx]);
        seen[target_idx] = true;
        while let Some(i) = queue.pop_front() {
            for &d in &deps[i] {
                if !seen[d] {
                    seen[d] = true;
                    queue.push_back(d);
                }
            }
        }
        seen
    };
    let reachable = if uncertain {
        vec![true; n]
    } else {
        certain.clone()
    };

    // How many reachable stages inherit each stage's environment: the last
    // one takes it instead of copying.
    let mut heirs = vec![0usize; n];
    for i in (0..n).filter(|&i| reachable[i]) {
        if let Base::Stage(j) = bases[i] {
            heirs[j] += 1;
        }
    }

    let mut finals: Vec<Option<StageEnv>> = vec![None; n];
    let mut budget = WORK_BUDGET;
    for i in (0..n).filter(|&i| reachable[i]) {
        let st = &stages[i];
        let mut env = match &bases[i] {
            Base::Stage(j) => {
                heirs[*j] -= 1;
                if heirs[*j] == 0 {
                    finals[*j].take().unwrap_or_default()
                } else {
                    let parent = finals[*j].as_ref().cloned().unwrap_or_default();
                    spend(&mut budget, parent.vars.len() + 1, st.line)?;
                    parent
                }
            }
            Base::Scratch => StageEnv::default(),
            Base::Image(r) => {
                ctx.images.push(ImageUse {
                    reference: r.clone(),
                    line: st.line,
                    kind: ImageUseKind::From,
                });
                StageEnv {
                    base: Some(format!(
                        "it is not set earlier in this Dockerfile, so it may come from the ENV of base image `{r}`"
                    )),
                    ..StageEnv::default()
                }
            }
            Base::Unresolved(raw, why) => {
                ctx.images.push(ImageUse {
                    reference: raw.clone(),
                    line: st.line,
                    kind: ImageUseKind::From,
                });
                StageEnv {
                    base: Some(format!(
                        "it is not set earlier in this Dockerfile, and the base `{raw}` is unknown because it depends on {why}"
                    )),
                    ..StageEnv::default()
                }
            }
        };
        // ONBUILD triggers of a parent stage run first, in this stage.
        let triggers = match bases[i] {
            Base::Stage(j) => {
                spend(&mut budget, stages[j].onbuild.len(), st.line)?;
                &stages[j].onbuild[..]
            }
            _ => &[],
        };
        for instr in triggers.iter().chain(&st.instrs) {
            if let Instr::Arg { decls, .. } = instr {
                ctx.declared.extend(decls.iter().map(|d| d.name.clone()));
            }
        }
        for instr in triggers.iter().chain(&st.instrs) {
            if let Err(e) = ctx.instr(instr, &mut env) {
                if certain[i] {
                    return Err(e);
                }
                // BuildKit may never build this stage, so its error is not
                // necessarily fatal; but nothing after it can be trusted.
                ctx.reason(format!(
                    "{e} (in the stage at line {}, which may be built)",
                    st.line
                ));
                env.poisoned = Some(format!(
                    "the stage at line {} could not be analyzed past line {}",
                    st.line, e.line
                ));
                break;
            }
        }
        if heirs[i] > 0 {
            finals[i] = Some(env);
        }
    }

    // The frontend: `BUILDKIT_SYNTAX` wins over the `# syntax=` directive. It is an outside
    // image (a new push of `docker/dockerfile:1` can build differently), and any frontend other
    // than docker/dockerfile has its own rules for what it reads.
    let syntax = args
        .get("BUILDKIT_SYNTAX")
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| model.syntax.clone());
    if let Some(frontend) = syntax {
        if !is_dockerfile_frontend(&frontend) {
            ctx.reason(format!(
                "the frontend `{frontend}` (# syntax=) is not docker/dockerfile, so its rules for what a build reads are unknown"
            ));
        }
        ctx.images.push(ImageUse {
            reference: frontend,
            line: 1,
            kind: ImageUseKind::Syntax,
        });
    }

    let whole_context = (!ctx.reasons.is_empty()).then(|| {
        let mut text = ctx.reasons[..ctx.reasons.len().min(MAX_REASONS)].join("; ");
        if ctx.reasons.len() > MAX_REASONS {
            text.push_str(&format!("; and {} more", ctx.reasons.len() - MAX_REASONS));
        }
        text
    });
    Ok(Analysis {
        declared_args: ctx.declared,
        sources: order(ctx.sources, |s| s.line, |s| s.clone()),
        whole_context,
        images: order(
            ctx.images,
            |i| i.line,
            |i| (i.reference.clone(), i.line, i.kind as u8),
        ),
        remotes: order(
            ctx.remotes,
            |r| r.line,
            |r| (r.url.clone(), r.line, r.checksum.clone()),
        ),
        target: target_label,
    })
}
