//! Jira (upstream `notify/jira`): one issue per notification group, found again by its label
//! `ALERT{<group key hash>}`.
//!
//! 1. Search (`POST {api_url}/search`, or `/rest/api/3/search/jql` on Jira Cloud) for the
//!    group's issue: open ones, or with a reopen transition and `reopen_duration` also those
//!    resolved within it; a `wont_fix_resolution` excludes issues closed that way.
//! 2. None and the group is resolved: nothing to do. None: create the issue (`POST issue`).
//!    Found: update it (`PUT issue/KEY`; summary and description only where `enable_update`).
//! 3. Transition a found issue: a firing group reopens a done issue (`reopen_transition`), a
//!    resolved one resolves an open issue (`resolve_transition`), by transition name.
//!
//! Summary is cut to 255 runes, description to 32767. With an API v3 URL (ending in `/3`) the
//! description must render to Atlassian Document Format JSON. Retries on 5xx and 429.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value as J, json};
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::JiraConfig;
use watchfire_model::go_quote;

use crate::http::{HttpClient, key_hash, truncate_runes};
use crate::integrations::{Ctx, render_deep, send_checked};

pub const MAX_SUMMARY_RUNES: usize = 255;
pub const MAX_DESCRIPTION_RUNES: usize = 32767;

#[derive(Debug, Default, Deserialize)]
struct Issue {
    #[serde(default)]
    key: String,
    #[serde(default)]
    fields: Option<IssueFields>,
}

#[derive(Debug, Default, Deserialize)]
struct IssueFields {
    #[serde(default)]
    status: Option<Status>,
}

#[derive(Debug, Default, Deserialize)]
struct Status {
    #[serde(default, rename = "statusCategory")]
    category: Category,
}

#[derive(Debug, Default, Deserialize)]
struct Category {
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct SearchResult {
    #[serde(default)]
    issues: Vec<Issue>,
}

#[derive(Deserialize)]
struct Transitions {
    #[serde(default)]
    transitions: Vec<Transition>,
}

#[derive(Deserialize)]
struct Transition {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

/// Go's `url.JoinPath` for one element: the element appended to the path with one `/`.
fn join(base: &url::Url, elem: &str) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/{}", u.path().trim_end_matches('/'), elem.trim_start_matches('/'));
    u.set_path(&path);
    u
}

/// Whether the API URL is a v3 one (descriptions in Atlassian Document Format).
fn is_v3(base: &url::Url) -> bool {
    base.path().trim_end_matches('/').ends_with("/3")
}

/// The search endpoint (upstream `prepareSearchRequest`): Jira Cloud has only the v3
/// `search/jql`, Data Center only the v2 `search`.
fn search_url(cfg: &JiraConfig, base: &url::Url) -> String {
    let cloud = cfg.api_type == "cloud"
        || (cfg.api_type == "auto" && base.host_str().is_some_and(|h| h.ends_with("atlassian.net")));
    if cfg.api_type != "datacenter" && cloud {
        join(base, "search/jql")
            .to_string()
            .replacen("/rest/api/2/", "/rest/api/3/", 1)
    } else {
        join(base, "search").to_string()
    }
}

async fn request(
    client: &HttpClient,
    method: reqwest::Method,
    url: &str,
    body: Option<&J>,
) -> Result<String, NotifyError> {
    let what = format!(
        "jira: {method} {}",
        url::Url::parse(url).map_or(url.to_owned(), |u| u.path().to_owned())
    );
    let mut req = client
        .request(method, url)?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT_LANGUAGE, "en");
    if let Some(b) = body {
        let mut text = serde_json::to_string(b).map_err(|e| NotifyError::permanent(format!("{what}: {e}")))?;
        text.push('\n');
        req = req.body(text);
    }
    Ok(send_checked(req, Duration::ZERO, &what, &[429], &[]).await?.body)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &str, what: &str) -> Result<T, NotifyError> {
    serde_json::from_str(body).map_err(|e| NotifyError::permanent(format!("jira: reading the {what}: {e}")))
}

pub(crate) async fn jira(ctx: &Ctx<'_>, cfg: &JiraConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let base = cfg
        .api_url
        .as_ref()
        .ok_or_else(|| NotifyError::permanent("jira: no api_url configured"))?
        .as_url()
        .clone();
    let firing = ctx.data.status == "firing";
    let group_id = key_hash(&ctx.group.group_key);
    let project = r(&cfg.project)?;

    // 1. The group's issue.
    let mut jql = String::new();
    if !cfg.wont_fix_resolution.is_empty() {
        // `resolution != X` alone would drop unresolved issues (upstream #4295).
        jql.push_str(&format!(
            "(resolution is EMPTY or resolution != {}) and ",
            go_quote(&cfg.wont_fix_resolution)
        ));
    }
    let reopen_minutes = cfg.reopen_duration.to_std().as_secs() / 60;
    if firing && !cfg.reopen_transition.is_empty() && reopen_minutes > 0 {
        jql.push_str(&format!(
            "(resolutiondate is EMPTY OR resolutiondate >= -{reopen_minutes}m) and "
        ));
    } else {
        jql.push_str("statusCategory != Done and ");
    }
    jql.push_str(&format!(
        "project={} and labels={} order by status ASC,resolutiondate DESC",
        go_quote(&project),
        go_quote(&format!("ALERT{{{group_id}}}"))
    ));
    let search = json!({"fields": ["status"], "jql": jql, "maxResults": 2});
    let body = request(client, reqwest::Method::POST, &search_url(cfg, &base), Some(&search))
        .await
        .map_err(|e| NotifyError {
            message: format!("failed to look up existing issues: {}", e.message),
            ..e
        })?;
    let existing = parse::<SearchResult>(&body, "search result")?.issues.into_iter().next();
    if existing.is_none() && !firing {
        // Resolved alerts never create issues.
        return Ok(());
    }

    // 2. Create or update.
    let (summary, cut) = truncate_runes(&r(&cfg.summary.template)?, MAX_SUMMARY_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_SUMMARY_RUNES, "truncated Jira summary");
    }
    let (description, cut) = truncate_runes(&r(&cfg.description.template)?, MAX_DESCRIPTION_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_DESCRIPTION_RUNES, "truncated Jira description");
    }
    let description = if is_v3(&base) {
        match description.trim() {
            "" => None,
            d => Some(
                serde_json::from_str::<J>(d)
                    .map_err(|_| NotifyError::permanent("jira: description template: invalid JSON for API v3"))?,
            ),
        }
    } else {
        (!description.is_empty()).then_some(J::String(description))
    };
    let mut labels = Vec::with_capacity(cfg.labels.len() + 1);
    for l in &cfg.labels {
        labels.push(r(l)?);
    }
    labels.push(format!("ALERT{{{group_id}}}"));
    labels.sort();
    let update = existing.is_some();
    let mut fields = Map::new();
    if !update || cfg.summary.enable_update() {
        fields.insert("summary".into(), summary.into());
    }
    if let Some(d) = description
        && (!update || cfg.description.enable_update())
    {
        fields.insert("description".into(), d);
    }
    fields.insert("issuetype".into(), json!({"name": r(&cfg.issue_type)?}));
    fields.insert("labels".into(), labels.into());
    let priority = r(&cfg.priority)?;
    if !priority.is_empty() {
        fields.insert("priority".into(), json!({"name": priority}));
    }
    fields.insert("project".into(), json!({"key": project}));
    for (k, v) in &cfg.fields {
        // Custom fields win over the standard ones, as upstream merges them last.
        fields.insert(k.clone(), render_deep(ctx, v)?);
    }
    let issue_body = json!({ "fields": fields });
    let (method, path) = match &existing {
        Some(i) => (reqwest::Method::PUT, format!("issue/{}", i.key)),
        None => (reqwest::Method::POST, "issue".to_owned()),
    };
    request(client, method.clone(), join(&base, &path).as_str(), Some(&issue_body))
        .await
        .map_err(|e| NotifyError {
            message: format!("failed to {method} request to {path:?}: {}", e.message),
            ..e
        })?;

    // 3. Reopen or resolve.
    let Some(issue) = existing else { return Ok(()) };
    let Some(status) = issue.fields.and_then(|f| f.status) else {
        return Ok(());
    };
    let done = status.category.key == "done";
    let transition = match (firing, done) {
        (true, true) => &cfg.reopen_transition,
        (false, false) => &cfg.resolve_transition,
        _ => return Ok(()),
    };
    if transition.is_empty() || issue.key.is_empty() {
        return Ok(());
    }
    let url = join(&base, &format!("issue/{}/transitions", issue.key));
    let list: Transitions = parse(
        &request(client, reqwest::Method::GET, url.as_str(), None).await?,
        "transitions",
    )?;
    let id = list
        .transitions
        .into_iter()
        .find(|t| t.name == *transition)
        .map(|t| t.id)
        .ok_or_else(|| {
            NotifyError::permanent(format!(
                "jira: can't find transition {transition} for issue {}",
                issue.key
            ))
        })?;
    request(
        client,
        reqwest::Method::POST,
        url.as_str(),
        Some(&json!({"transition": {"id": id}})),
    )
    .await?;
    Ok(())
}
