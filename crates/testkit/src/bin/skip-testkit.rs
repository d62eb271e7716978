//! `skip-testkit`: the kit's image pusher as a command, for workflows run by tests (the end-to-end
//! tests run real workflows with `act`; their "build" jobs push with this instead of Docker).
//!
//! ```text
//! skip-testkit push   HOST/REPO:TAG [--from HOST/REPO:TAG] [--docker] [--platform OS/ARCH]
//! skip-testkit digest HOST/REPO:TAG      # the manifest digest; exit 1 when the tag does not exist
//! skip-testkit layers HOST/REPO:TAG      # the layer digests, one per line
//! skip-testkit bake   FILE [--fail TARGET] [--log FILE]
//! ```
//!
//! `push` uploads a single-platform image with one new random layer; with `--from`, on top of the
//! parent's layers, as `docker build` does for `FROM parent` (a parent that is an index gives
//! its `--platform` child). Plain http, no authentication: for
//! the test registries on 127.0.0.1 only.
//!
//! `bake` is `docker buildx bake -f FILE --push` for such images: every target of the default
//! group, in its order (parents first, as `skip-action bake` lists them), each of its `tags`
//! pushed `FROM` its `BASE_IMAGE` arg (or with no parent). A target whose parent is another target
//! of the file (`contexts`) uses that target's push. `--fail TARGET` makes that target fail, as a
//! broken build would: its dependants in the file fail with it, the other targets are still pushed
//! (as when they finish before the failing one), and the command exits 1. `--log` appends the name
//! of each target pushed, one per line.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use skip_testkit::{ImageSpec, PushAuth, Pusher};

const USAGE: &str = "usage:
  skip-testkit push   HOST/REPO:TAG [--from HOST/REPO:TAG] [--docker] [--platform OS/ARCH] [--label KEY=VALUE]
  skip-testkit digest HOST/REPO:TAG
  skip-testkit layers HOST/REPO:TAG
  skip-testkit bake   FILE [--fail TARGET] [--log FILE]";

/// `host/repo:tag` or `host/repo@sha256:…`.
#[derive(Debug, Clone, PartialEq)]
struct Ref {
    host: String,
    repo: String,
    reference: String,
}

impl Ref {
    fn parse(s: &str) -> Result<Ref> {
        let (host, rest) = s
            .split_once('/')
            .with_context(|| format!("{s}: expected HOST/REPO:TAG"))?;
        let (repo, reference) = match rest.split_once('@') {
            Some((r, d)) => (r, d),
            None => match rest.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r, t),
                _ => bail!("{s}: no tag (expected HOST/REPO:TAG)"),
            },
        };
        if host.is_empty() || repo.is_empty() || reference.is_empty() {
            bail!("{s}: expected HOST/REPO:TAG");
        }
        Ok(Ref {
            host: host.into(),
            repo: repo.into(),
            reference: reference.into(),
        })
    }

    fn pusher(&self) -> Pusher {
        Pusher::new(&format!("http://{}", self.host), PushAuth::None)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skip-testkit: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("skip-testkit: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<ExitCode> {
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    match cmd.as_str() {
        "push" => {
            let mut target = None;
            let mut from = None;
            let mut platform: Option<(String, String)> = None;
            let mut spec = ImageSpec::oci();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--from" => {
                        from = Some(Ref::parse(it.next().context("--from needs a value")?)?)
                    }
                    "--docker" => {
                        spec = ImageSpec {
                            format: skip_testkit::Format::Docker,
                            ..spec
                        }
                    }
                    "--platform" => {
                        let p = it.next().context("--platform needs OS/ARCH")?;
                        let (os, arch) = p.split_once('/').context("--platform needs OS/ARCH")?;
                        spec = spec.platform(os, arch);
                        platform = Some((os.to_string(), arch.to_string()));
                    }
                    "--label" => {
                        let l = it.next().context("--label needs KEY=VALUE")?;
                        let (k, v) = l.split_once('=').context("--label needs KEY=VALUE")?;
                        spec = spec.label(k, v);
                    }
                    s if s.starts_with('-') => bail!("unknown flag {s}\n{USAGE}"),
                    s if target.is_none() => target = Some(Ref::parse(s)?),
                    s => bail!("unexpected argument {s}\n{USAGE}"),
                }
            }
            let target = target.context(USAGE)?;
            let pushed = push(&target, from, platform, spec).await?;
            println!("{pushed}");
            Ok(ExitCode::SUCCESS)
        }
        "digest" | "layers" => {
            let [r] = rest else { bail!("{USAGE}") };
            let r = Ref::parse(r)?;
            let pusher = r.pusher();
            match pusher.get_manifest(&r.repo, &r.reference).await? {
                None => {
                    eprintln!("{}/{}:{} does not exist", r.host, r.repo, r.reference);
                    Ok(ExitCode::FAILURE)
                }
                Some((_, _, digest)) if cmd == "digest" => {
                    println!("{digest}");
                    Ok(ExitCode::SUCCESS)
                }
                Some(_) => {
                    for l in pusher.pull_image(&r.repo, &r.reference).await?.layers {
                        println!("{}", l.digest);
                    }
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        "bake" => bake(rest).await,
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command {other}\n{USAGE}"),
    }
}

/// Push one image at `target` (a tag or a digest), on `from`'s layers when given: the parent's
/// `platform` child when it is an index. Returns the pushed manifest's digest.
async fn push(
    target: &Ref,
    from: Option<Ref>,
    platform: Option<(String, String)>,
    mut spec: ImageSpec,
) -> Result<String> {
    let pusher = target.pusher();
    if let Some(mut parent) = from {
        let src = parent.pusher();
        // A multi-platform parent (an index): the child of this push's platform, as
        // `docker build --platform` pulls it.
        if let Some((bytes, media_type, _)) =
            src.get_manifest(&parent.repo, &parent.reference).await?
        {
            if media_type.contains("index") || media_type.contains("manifest.list") {
                let (os, arch) = platform
                    .clone()
                    .context("--from names an index: pass --platform OS/ARCH")?;
                let v: serde_json::Value = serde_json::from_slice(&bytes)?;
                let child = v["manifests"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| {
                        m["platform"]["os"] == os.as_str()
                            && m["platform"]["architecture"] == arch.as_str()
                    })
                    .and_then(|m| m["digest"].as_str())
                    .with_context(|| format!("{}: no {os}/{arch} image", parent.reference))?;
                parent.reference = child.to_string();
            }
        }
        let img = src.pull_image(&parent.repo, &parent.reference).await?;
        if parent.host != target.host || parent.repo != target.repo {
            // Another repository: copy the parent's layers over first.
            for l in &img.layers {
                if !pusher.blob_exists(&target.repo, &l.digest).await? {
                    let data = src.get_blob(&parent.repo, &l.digest).await?;
                    pusher.push_blob(&target.repo, &data).await?;
                }
            }
        }
        spec = spec.from_parent(&img).platform(&img.os, &img.architecture);
    }
    let tag = (!target.reference.starts_with("sha256:")).then_some(target.reference.as_str());
    let pushed = pusher.push_image(&target.repo, tag, &spec).await?;
    Ok(pushed.digest)
}

/// `bake FILE`: see the module documentation.
async fn bake(rest: &[String]) -> Result<ExitCode> {
    let mut file = None;
    let mut fail: Option<String> = None;
    let mut log: Option<std::path::PathBuf> = None;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fail" => fail = Some(it.next().context("--fail needs a target")?.clone()),
            "--log" => log = Some(it.next().context("--log needs a file")?.into()),
            s if s.starts_with('-') => bail!("unknown flag {s}\n{USAGE}"),
            s if file.is_none() => file = Some(s.to_string()),
            s => bail!("unexpected argument {s}\n{USAGE}"),
        }
    }
    let file = file.context(USAGE)?;
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{file}: not a bake JSON file"))?;
    let order: Vec<String> = v["group"]["default"]["targets"]
        .as_array()
        .with_context(|| format!("{file}: no group.default.targets"))?
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    let fail = fail.filter(|f| !f.is_empty());
    let mut failed: Vec<String> = Vec::new();
    for name in &order {
        let t = &v["target"][name.as_str()];
        let base = t["args"]["BASE_IMAGE"].as_str().filter(|b| !b.is_empty());
        // The parent is a target of this file that failed: this one cannot build either.
        let parent_target = base
            .and_then(|b| t["contexts"][b].as_str())
            .and_then(|c| c.strip_prefix("target:"));
        if let Some(p) = parent_target.filter(|p| failed.iter().any(|f| f == p)) {
            eprintln!("{name}: its parent target {p} failed");
            failed.push(name.clone());
            continue;
        }
        if fail.as_deref() == Some(name.as_str()) {
            eprintln!("{name}: failing on purpose");
            failed.push(name.clone());
            continue;
        }
        let platform = match t["platforms"].as_array().map(Vec::as_slice) {
            Some([p]) => p
                .as_str()
                .and_then(|p| p.split_once('/'))
                .map(|(os, arch)| (os.to_string(), arch.to_string())),
            _ => None,
        };
        let tags: Vec<&str> = t["tags"]
            .as_array()
            .with_context(|| format!("{file}: target {name} has no tags"))?
            .iter()
            .filter_map(|x| x.as_str())
            .collect();
        for tag in tags {
            let target = Ref::parse(tag)?;
            let from = base.map(Ref::parse).transpose()?;
            let mut spec = ImageSpec::oci();
            if let Some((os, arch)) = &platform {
                spec = spec.platform(os, arch);
            }
            let digest = push(&target, from, platform.clone(), spec).await?;
            println!("{name} {tag} {digest}");
        }
        if let Some(l) = &log {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(l)
                .with_context(|| format!("opening {}", l.display()))?;
            writeln!(f, "{name}")?;
        }
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::Ref;

    #[test]
    fn refs() {
        let r = Ref::parse("127.0.0.1:5000/e2e/devbox:base-abc").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "e2e/devbox", "base-abc")
        );
        let r = Ref::parse("localhost/a@sha256:00").unwrap();
        assert_eq!((r.repo.as_str(), r.reference.as_str()), ("a", "sha256:00"));
        assert!(Ref::parse("127.0.0.1:5000/e2e/devbox").is_err());
        assert!(Ref::parse("nohost").is_err());
    }
}
