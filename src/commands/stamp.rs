//! `skip-action stamp`: the last step of a test job that passed. Re-tags each tested image's
//! manifest as `<content-tag>.tested` ([`crate::promote::stamp`]), so a later run that reuses
//! the image (and skips its test job) can still prove to `promote --require-tested` that this
//! exact digest passed.
//!
//! Recomputes the hashes as `promote` does, so the tags are the ones the build pushed. Writes the
//! `stamped` output (`{"registry/path:tag.tested": "sha256:…"}`) only when every stamp was
//! written.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::{load_and_discover, load_and_hash_online, runtime, Hashed};
use crate::cli::StampArgs;
use crate::error::usage;
use crate::github::output::Outputs;
use crate::promote::{check::get_waiting, stamp};

pub fn run(args: StampArgs) -> anyhow::Result<()> {
    let (config, discovery) = load_and_discover(&args.common)?;
    let chosen = stamp::select(&config, &args.images, "images")?;
    if let Some(d) = &args.digest {
        if chosen.len() != 1 {
            return Err(usage(format!(
                "--digest names the one digest a test ran on, but --images selects {} images; stamp one image per step",
                chosen.len()
            )));
        }
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(usage(format!("--digest `{d}` is not a digest (sha256:…)")));
        }
    }
    let flags = args.registry.flags();
    let client = crate::registry::client(&config, &flags)?;
    let rt = runtime()?;
    let Hashed { config, hashes, .. } =
        load_and_hash_online(config, discovery, &args.common, &client, &rt)?;

    let mut stamped = BTreeMap::new();
    let mut problems = Vec::new();
    rt.block_on(async {
        for &i in &chosen {
            let spec = &config.images[i];
            let tag = &hashes[i].tag;
            let r = async {
                let stamp_tag = stamp::stamp_tag(tag)?;
                let m = get_waiting(&client, &spec.repo, tag, args.wait)
                    .await?
                    .with_context(|| {
                        format!(
                            "{}:{tag} does not exist: stamp runs after the build pushed it",
                            spec.repo
                        )
                    })?;
                if let Some(d) = &args.digest {
                    if &m.digest != d {
                        anyhow::bail!(
                            "{}:{tag} now points at {}, not at the tested {d} (pushed again meanwhile); not stamped, test again",
                            spec.repo,
                            m.digest
                        );
                    }
                }
                client
                    .put_manifest(&spec.repo, &stamp_tag, &m.bytes, &m.media_type)
                    .await
                    .with_context(|| format!("writing the stamp {}:{stamp_tag}", spec.repo))?;
                tracing::info!(image = %spec.name, digest = %m.digest, "stamped {}:{stamp_tag}", spec.repo);
                Ok::<_, anyhow::Error>((format!("{}:{stamp_tag}", spec.repo), m.digest))
            }
            .await;
            match r {
                Ok((k, d)) => {
                    println!("stamped {k} ({d})");
                    stamped.insert(k, d);
                }
                Err(e) => problems.push(format!("{}: {e:#}", spec.name)),
            }
        }
    });
    if !problems.is_empty() {
        anyhow::bail!(
            "{} of {} stamp(s) not written:\n  {}",
            problems.len(),
            chosen.len(),
            problems.join("\n  ")
        );
    }
    let mut outputs = Outputs::new();
    outputs.set(
        "stamped",
        serde_json::to_string(&stamped).context("stamped output")?,
    );
    outputs.write_to_env()?;
    Ok(())
}
