//! `bindery validate`: load component and resiliency files as the sidecar would, with no I/O
//! besides reading them and their secrets, and report every problem with its file and line.
//! `--connect` also builds each output binding to see whether its backend answers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bindery_core::{BindingHealth, ComponentContext};
use bindery_runtime::loader::{self, ComponentDef, ConfigIssue, LoadOptions};
use serde_json::{Value, json};

use super::{Exit, out};
use crate::cli::{Format, duration};

/// Shown by `bindery validate --help`.
pub(crate) const EXAMPLES: &str = "\
Examples:
  bindery validate ./components
  bindery validate ./components ./resiliency.yaml --app-id orders --strict
  bindery validate ./components --connect --timeout 3s
  bindery validate ./components --format json | jq '.errors[]'

Folders are read at their top level (.yaml and .yml files), as --resources-path is; files
are read as they are. `scopes` are applied for --app-id, and NAMESPACE as in run mode.
Unknown metadata keys are warnings that list the keys the binding knows.

--connect builds every output binding as the sidecar would (connecting to its backend, which
may also create folders or queues) and closes it again; input bindings are not started.

Exit codes: 0 valid (warnings allowed unless --strict); 1 invalid, or with --strict any
warning, or with --connect a backend that does not answer; 2 invalid command line.";

/// `bindery validate <paths>...`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    /// Component and resiliency files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,

    /// The app id, for `scopes` and `{appID}`.
    #[arg(long, default_value = "validate", value_name = "ID")]
    pub(crate) app_id: String,

    /// Also build each output binding and report whether its backend answers.
    #[arg(long)]
    pub(crate) connect: bool,

    /// With --connect: how long each binding may take (default: its spec.initTimeout).
    #[arg(long, requires = "connect", value_parser = duration, value_name = "DURATION")]
    pub(crate) timeout: Option<Duration>,

    /// Warnings make the resources invalid too.
    #[arg(long)]
    pub(crate) strict: bool,

    /// How to print the report: human, or json.
    #[arg(long, value_enum, default_value_t = Format::Human, value_name = "FORMAT")]
    pub(crate) format: Format,
}

/// What `--connect` found for one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reach {
    /// Built (and closed again) in this time.
    Ok(Duration),
    /// Failed, with the reason.
    Failed(String),
    /// Not tried: the component has no output side.
    Skipped(&'static str),
}

struct Connected<'a> {
    def: &'a ComponentDef,
    reach: Reach,
}

/// Check, print the report, and say whether the resources are valid.
pub(crate) async fn run(args: ValidateArgs) -> Exit {
    let registry = bindery::registry();
    let options = LoadOptions {
        paths: args.paths.clone(),
        app_id: args.app_id.clone(),
        namespace: std::env::var("NAMESPACE").ok().filter(|n| !n.is_empty()),
    };
    let checked = loader::check(&options, &registry);
    let defs: &[ComponentDef] = checked
        .loaded
        .as_ref()
        .map_or(&[], |l| l.bindings.as_slice());
    let connected = if args.connect && checked.loaded.is_some() {
        Some(connect_all(defs, &args.app_id, args.timeout).await)
    } else {
        None
    };
    let unreachable = connected
        .iter()
        .flatten()
        .filter(|c| matches!(c.reach, Reach::Failed(_)))
        .count();
    let valid = checked.errors.is_empty()
        && (!args.strict || checked.warnings.is_empty())
        && unreachable == 0;

    let report = match args.format {
        Format::Human => human(
            &checked.errors,
            &checked.warnings,
            defs,
            connected.as_deref(),
            &args,
            valid,
        ),
        Format::Json => {
            let mut v = json!({
                "valid": valid,
                "strict": args.strict,
                "appId": args.app_id,
                "errors": checked.errors.iter().map(issue_json).collect::<Vec<_>>(),
                "warnings": checked.warnings.iter().map(issue_json).collect::<Vec<_>>(),
                "components": defs.iter().map(component_json).collect::<Vec<_>>(),
            });
            if let Some(c) = &connected {
                v["connect"] = c.iter().map(connect_json).collect();
            }
            let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
            text.push('\n');
            text
        }
    };
    match out(report.as_bytes()) {
        Exit::Success if valid => Exit::Success,
        Exit::Success => Exit::Failure,
        other => other,
    }
}

/// Build every output binding at once, each within its timeout, and close it again.
async fn connect_all<'a>(
    defs: &'a [ComponentDef],
    app_id: &str,
    timeout: Option<Duration>,
) -> Vec<Connected<'a>> {
    let mut tasks = Vec::new();
    for def in defs {
        if !def.sides.output {
            tasks.push((def, None));
            continue;
        }
        let ctx = ComponentContext {
            name: def.name.clone(),
            app_id: app_id.to_owned(),
            metadata: def.metadata.clone(),
            health: BindingHealth::default(),
        };
        let factory = def.factory.clone();
        let limit = timeout.unwrap_or(def.init_timeout);
        // A task each, so that a binding that blocks or panics while connecting only fails
        // its own line.
        let task = tokio::spawn(async move {
            let started = Instant::now();
            match tokio::time::timeout(limit, factory.build_output(&ctx)).await {
                Ok(Ok(output)) => {
                    let elapsed = started.elapsed();
                    if let Err(e) = output.close().await {
                        tracing::debug!(binding = %ctx.name, error = %e, "closing after the check failed");
                    }
                    Reach::Ok(elapsed)
                }
                Ok(Err(e)) => Reach::Failed(e.to_string()),
                Err(_) => Reach::Failed(format!("no answer within {}", show_duration(limit))),
            }
        });
        tasks.push((def, Some(task)));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for (def, task) in tasks {
        let reach = match task {
            None => Reach::Skipped("input only"),
            Some(task) => match task.await {
                Ok(reach) => reach,
                Err(e) => Reach::Failed(format!("building the binding failed: {e}")),
            },
        };
        results.push(Connected { def, reach });
    }
    results
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `file:line`, or what is known of it.
fn place(issue: &ConfigIssue) -> Option<String> {
    let file = issue.file.as_ref()?.display().to_string();
    Some(match (issue.line, issue.document) {
        (Some(line), _) => format!("{file}:{line}"),
        (None, Some(doc)) => format!("{file} (document {doc})"),
        (None, None) => file,
    })
}

/// One issue for people: `file:line: error: component "x": field: message`.
fn issue_line(issue: &ConfigIssue, severity: &str) -> String {
    let mut s = String::new();
    if let Some(place) = place(issue) {
        s.push_str(&place);
        s.push_str(": ");
    }
    s.push_str(severity);
    s.push_str(": ");
    if let Some(c) = &issue.component {
        s.push_str(&format!("component {c:?}: "));
    }
    if let Some(f) = &issue.field {
        s.push_str(f);
        s.push_str(": ");
    }
    s.push_str(&issue.message);
    s
}

fn human(
    errors: &[ConfigIssue],
    warnings: &[ConfigIssue],
    defs: &[ComponentDef],
    connected: Option<&[Connected<'_>]>,
    args: &ValidateArgs,
    valid: bool,
) -> String {
    let mut s = String::new();
    // In file and line order, as an editor would list them.
    let mut all: Vec<(&ConfigIssue, &str)> = errors
        .iter()
        .map(|i| (i, "error"))
        .chain(warnings.iter().map(|i| (i, "warning")))
        .collect();
    all.sort_by(|(a, _), (b, _)| (&a.file, a.line).cmp(&(&b.file, b.line)));
    for (issue, severity) in &all {
        s.push_str(&issue_line(issue, severity));
        s.push('\n');
    }
    if !defs.is_empty() {
        s.push_str(&format!("{} binding component(s):\n", defs.len()));
        let name_width = defs.iter().map(|d| d.name.len()).max().unwrap_or(0);
        let type_width = defs.iter().map(|d| d.type_name.len()).max().unwrap_or(0);
        for d in defs {
            s.push_str(&format!(
                "  {:name_width$}  {:type_width$}  {:13}  {}\n",
                d.name,
                d.type_name,
                sides(d),
                d.source.file.display()
            ));
        }
    }
    if let Some(connected) = connected {
        s.push_str("connect:\n");
        let name_width = connected
            .iter()
            .map(|c| c.def.name.len())
            .max()
            .unwrap_or(0);
        for c in connected {
            let (status, detail) = match &c.reach {
                Reach::Ok(d) => ("ok", format!("ready in {}ms", d.as_millis())),
                Reach::Failed(e) => ("FAILED", e.clone()),
                Reach::Skipped(why) => ("skipped", (*why).to_owned()),
            };
            s.push_str(&format!(
                "  {status:7}  {:name_width$}  ({}): {detail}\n",
                c.def.name, c.def.type_name
            ));
        }
    } else if args.connect {
        s.push_str("connect: not attempted, the resources are invalid\n");
    }
    let count = |n: usize, what: &str| {
        if n == 1 {
            format!("1 {what}")
        } else {
            format!("{n} {what}s")
        }
    };
    let mut summary = vec![
        count(errors.len(), "error"),
        count(warnings.len(), "warning"),
    ];
    if let Some(c) = connected {
        let failed = c
            .iter()
            .filter(|c| matches!(c.reach, Reach::Failed(_)))
            .count();
        if failed > 0 {
            summary.push(format!("{failed} unreachable"));
        }
    }
    let verdict = if valid {
        "valid"
    } else if errors.is_empty() && args.strict && !warnings.is_empty() {
        "invalid (--strict)"
    } else {
        "invalid"
    };
    s.push_str(&format!("{verdict}: {}\n", summary.join(", ")));
    s
}

fn sides(d: &ComponentDef) -> &'static str {
    match (d.sides.input, d.sides.output) {
        (true, true) => "input, output",
        (true, false) => "input",
        (false, true) => "output",
        (false, false) => "-",
    }
}

fn issue_json(issue: &ConfigIssue) -> Value {
    json!({
        "file": issue.file.as_ref().map(|f| f.display().to_string()),
        "line": issue.line,
        "document": issue.document,
        "component": issue.component,
        "field": issue.field,
        "message": issue.message,
    })
}

fn component_json(d: &ComponentDef) -> Value {
    json!({
        "name": d.name,
        "type": d.type_name,
        "version": d.version,
        "input": d.sides.input,
        "output": d.sides.output,
        "file": d.source.file.display().to_string(),
        "document": d.source.document,
    })
}

fn connect_json(c: &Connected<'_>) -> Value {
    let mut v = json!({ "name": c.def.name, "type": c.def.type_name });
    match &c.reach {
        Reach::Ok(d) => {
            v["status"] = "ok".into();
            v["elapsedMs"] = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).into();
        }
        Reach::Failed(e) => {
            v["status"] = "failed".into();
            v["error"] = e.clone().into();
        }
        Reach::Skipped(why) => {
            v["status"] = "skipped".into();
            v["reason"] = (*why).into();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(line: Option<usize>, document: Option<usize>) -> ConfigIssue {
        ConfigIssue {
            file: Some(PathBuf::from("c/a.yaml")),
            document,
            line,
            component: Some("files".into()),
            field: Some("spec.type".into()),
            message: "spec.type is required".into(),
        }
    }

    #[test]
    fn issues_read_like_compiler_messages() {
        assert_eq!(
            issue_line(&issue(Some(7), Some(2)), "error"),
            "c/a.yaml:7: error: component \"files\": spec.type: spec.type is required"
        );
        assert_eq!(
            issue_line(&issue(None, Some(2)), "warning"),
            "c/a.yaml (document 2): warning: component \"files\": spec.type: spec.type is required"
        );
        let bare = ConfigIssue {
            file: None,
            document: None,
            line: None,
            component: None,
            field: None,
            message: "m".into(),
        };
        assert_eq!(issue_line(&bare, "error"), "error: m");
    }

    #[test]
    fn durations_show_in_their_unit() {
        assert_eq!(show_duration(Duration::from_secs(5)), "5s");
        assert_eq!(show_duration(Duration::from_millis(250)), "250ms");
    }
}
