//! `--require-jobs`: the jobs of this workflow run whose names match must have succeeded.
//!
//! Uses octocrab (rustls + ring, no OpenSSL; it adds about 20 small crates on top of the reqwest
//! stack we already have, and builds for musl) for the HTTP, auth and error handling, but with our
//! own minimal response type: octocrab's `Job` model requires fields (`node_id`, `html_url`,
//! `check_run_url`, …) that Gitea's compatible endpoint does not send, and we need only the name,
//! status and conclusion. `GITHUB_API_URL` may carry a path (Gitea: `https://host/api/v1`);
//! octocrab keeps it.
//!
//! Lives with the other runner code: it reads the runner's environment and speaks to the
//! runner's API, never to a registry.

use std::time::Duration;

use anyhow::{anyhow, bail};
use serde::Deserialize;

use crate::error::usage;

/// One job of the run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Job {
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conclusion: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    jobs: Vec<Job>,
}

/// Split `--require-jobs` into patterns: on newlines, and on commas outside parentheses, so a
/// matrix job's name such as `build (omos, linux/amd64)` can be written whole.
pub fn split_patterns(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut depth = 0i32;
        let mut cur = String::new();
        for c in line.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if c == ',' && depth <= 0 {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        out.push(cur);
    }
    out.into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Parse the patterns (globs: `*`, `?`, `[…]`), or a usage error.
pub fn parse_patterns(text: &str) -> anyhow::Result<Vec<(String, glob::Pattern)>> {
    let pats = split_patterns(text);
    if pats.is_empty() {
        return Err(usage("require-jobs: no job name patterns given"));
    }
    pats.into_iter()
        .map(|p| {
            glob::Pattern::new(&p)
                .map(|g| (p.clone(), g))
                .map_err(|e| usage(format!("require-jobs: `{p}` is not a valid pattern: {e}")))
        })
        .collect()
}

/// Problems: a matching job that did not conclude `success` (failed, cancelled, skipped, still
/// running), and a pattern that matches no job at all (a typo would otherwise pass silently).
pub fn check(patterns: &[(String, glob::Pattern)], jobs: &[Job]) -> Vec<String> {
    // An empty list is not "no job matches": the API knows no job of this very run, which is
    // running promote. Seen on Gitea 1.25; say exactly that, once.
    if jobs.is_empty() {
        return vec![
            "require-jobs: the jobs API answered with no jobs at all for this run (not even this one; seen on Gitea 1.25), so no job can be checked. Gate promote with `needs:` on the test jobs and `require-tested` (test stamps) instead".to_string(),
        ];
    }
    let mut problems = Vec::new();
    for (src, p) in patterns {
        let matching: Vec<&Job> = jobs.iter().filter(|j| p.matches(&j.name)).collect();
        if matching.is_empty() {
            let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).take(20).collect();
            problems.push(format!(
                "require-jobs: no job of this run matches `{src}` (jobs: {})",
                names.join(", ")
            ));
        }
        for j in matching {
            if j.conclusion.as_deref() != Some("success") {
                let state = match (&j.conclusion, &j.status) {
                    (Some(c), _) => format!("concluded {c}"),
                    (None, Some(s)) => format!("is {s}"),
                    (None, None) => "has no conclusion".to_string(),
                };
                problems.push(format!(
                    "require-jobs: job `{}` {state}, not success",
                    j.name
                ));
            }
        }
    }
    problems.dedup();
    problems
}

/// Where the jobs API is and who we are, from the runner's environment.
#[derive(Clone)]
pub struct ApiEnv {
    pub api_url: String,
    pub owner: String,
    pub repo: String,
    pub run_id: u64,
    pub attempt: Option<u64>,
    token: String,
}

impl std::fmt::Debug for ApiEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiEnv")
            .field("api_url", &self.api_url)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("run_id", &self.run_id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl ApiEnv {
    /// `GITHUB_API_URL` (default `https://api.github.com`), `GITHUB_REPOSITORY`,
    /// `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`; the token from `--token` or `GITHUB_TOKEN`.
    pub fn from_env(token: Option<&str>) -> anyhow::Result<ApiEnv> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let token = token
            .map(str::to_string)
            .filter(|t| !t.is_empty())
            .or_else(|| var("GITHUB_TOKEN"))
            .ok_or_else(|| {
                usage("require-jobs needs a token with `actions: read`: pass `token: ${{ github.token }}` (input token) or set GITHUB_TOKEN")
            })?;
        let token = token.trim().to_string();
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(usage("the token contains spaces or control characters"));
        }
        crate::github::mask(&token);
        let repository = var("GITHUB_REPOSITORY").ok_or_else(|| {
            usage("require-jobs needs GITHUB_REPOSITORY (owner/repo): it only works inside a workflow run")
        })?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        let (owner, repo) = match repository.split_once('/') {
            Some((o, r)) if ok(o) && ok(r) => (o.to_string(), r.to_string()),
            _ => {
                return Err(usage(format!(
                    "GITHUB_REPOSITORY `{repository}` is not owner/repo"
                )))
            }
        };
        let run_id = var("GITHUB_RUN_ID")
            .ok_or_else(|| {
                usage("require-jobs needs GITHUB_RUN_ID: it only works inside a workflow run")
            })?
            .trim()
            .parse::<u64>()
            .map_err(|_| usage("GITHUB_RUN_ID is not a number"))?;
        let attempt = match var("GITHUB_RUN_ATTEMPT") {
            Some(a) => Some(
                a.trim()
                    .parse::<u64>()
                    .map_err(|_| usage("GITHUB_RUN_ATTEMPT is not a number"))?,
            ),
            None => None,
        };
        let api_url = var("GITHUB_API_URL")
            .unwrap_or_else(|| "https://api.github.com".to_string())
            .trim_end_matches('/')
            .to_string();
        // The token must not cross the network in clear text: plain http only to loopback.
        let parsed = reqwest::Url::parse(&api_url)
            .map_err(|e| usage(format!("GITHUB_API_URL `{api_url}` is not a URL: {e}")))?;
        let h = parsed.host_str().unwrap_or("");
        let loopback = h == "localhost"
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(usage(format!(
                    "GITHUB_API_URL `{api_url}`: the token is only sent over https (or http to localhost)"
                )))
            }
        }
        Ok(ApiEnv {
            api_url,
            owner,
            repo,
            run_id,
            attempt,
            token,
        })
    }
}

fn status_of(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// GET one page, retrying transport errors and 5xx (three attempts, 1 s then 2 s apart).
async fn get_page(
    crab: &octocrab::Octocrab,
    route: &str,
    page: u32,
) -> Result<Page, octocrab::Error> {
    let params = [("per_page", "100".to_string()), ("page", page.to_string())];
    let mut attempt = 0;
    loop {
        match crab.get::<Page, _, _>(route, Some(&params)).await {
            Ok(p) => return Ok(p),
            Err(e) => {
                let retry = match status_of(&e) {
                    Some(s) => s >= 500 || s == 429,
                    None => matches!(
                        e,
                        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. }
                    ),
                };
                if !retry || attempt >= 2 {
                    return Err(e);
                }
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
    }
}

/// Every job of this run (this attempt when known), all pages.
///
/// GitHub's `…/runs/{id}/attempts/{n}/jobs` is tried first; on 404 (Gitea, which has no
/// attempts endpoint) `…/runs/{id}/jobs`, which both serve for the latest attempt.
pub async fn fetch(env: &ApiEnv, timeout: Duration) -> anyhow::Result<Vec<Job>> {
    let crab = crate::github::api_client::octocrab(
        &env.api_url,
        &env.token,
        Duration::from_secs(10),
        Duration::from_secs(30),
    )
    .map_err(|e| usage(format!("{e:#}")))?;
    let base = format!(
        "/repos/{}/{}/actions/runs/{}",
        env.owner, env.repo, env.run_id
    );
    let mut routes = Vec::new();
    if let Some(a) = env.attempt {
        routes.push(format!("{base}/attempts/{a}/jobs"));
    }
    routes.push(format!("{base}/jobs"));
    let work = async {
        let mut last_404 = None;
        for route in &routes {
            let mut jobs = Vec::new();
            let mut page = 1u32;
            loop {
                let p = match get_page(&crab, route, page).await {
                    Ok(p) => p,
                    Err(e) if status_of(&e) == Some(404) && page == 1 => {
                        last_404 = Some(route.clone());
                        break;
                    }
                    Err(e) => {
                        let hint = match status_of(&e) {
                            Some(401) | Some(403) => {
                                " (the token needs `permissions: actions: read`)"
                            }
                            _ => "",
                        };
                        return Err(anyhow!(
                            "reading the jobs of run {} from {}{route}: {}{hint}",
                            env.run_id,
                            env.api_url,
                            crate::github::api_client::describe(&e)
                        ));
                    }
                };
                let got = p.jobs.len();
                jobs.extend(p.jobs);
                let total = p.total_count.unwrap_or(0) as usize;
                if got == 0 || (total > 0 && jobs.len() >= total) || page >= 100 {
                    return Ok(jobs);
                }
                if total == 0 && got < 100 {
                    return Ok(jobs);
                }
                page += 1;
            }
        }
        bail!(
            "{}{} answered 404: is GITHUB_API_URL right, and does the token see this repository?",
            env.api_url,
            last_404.unwrap_or_default()
        )
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| anyhow!("the jobs API did not answer within {timeout:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn job_patterns_split_and_match() {
        assert_eq!(
            split_patterns("build (omos, linux/amd64), test\nscan*,,"),
            strings(&["build (omos, linux/amd64)", "test", "scan*"])
        );
        let pats = parse_patterns("build*, test").unwrap();
        let job = |n: &str, c: Option<&str>, s: &str| Job {
            name: n.into(),
            conclusion: c.map(str::to_string),
            status: Some(s.into()),
        };
        let all_good = vec![
            job("build (base, linux/amd64)", Some("success"), "completed"),
            job("build (omos, linux/amd64)", Some("success"), "completed"),
            job("test", Some("success"), "completed"),
            job("promote", None, "in_progress"),
        ];
        assert!(check(&pats, &all_good).is_empty());
        let mut bad = all_good.clone();
        bad[1].conclusion = Some("failure".into());
        bad[2] = job("test", None, "in_progress");
        let p = check(&pats, &bad);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("build (omos, linux/amd64)") && p[0].contains("failure"));
        assert!(p[1].contains("is in_progress"));
        let skipped = vec![job("test", Some("skipped"), "completed")];
        let p = check(&parse_patterns("test").unwrap(), &skipped);
        assert!(p[0].contains("concluded skipped"));
        // A pattern that matches nothing is a problem (a typo must not pass).
        let p = check(&parse_patterns("tset").unwrap(), &all_good);
        assert!(p[0].contains("no job of this run matches `tset`"), "{p:?}");
        // No jobs at all is said as such, once, not as a mismatch per pattern.
        let p = check(&parse_patterns("build*, test").unwrap(), &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("answered with no jobs at all"), "{p:?}");
        assert!(parse_patterns(" , \n").is_err());
        assert!(parse_patterns("build[").is_err());
    }
}
