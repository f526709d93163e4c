//! The HTML templates and static files, compiled into the binary from `templates/`.

use anyhow::Context as _;

/// (name, source) of every template.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "dashboard.html",
        include_str!("../../templates/dashboard.html"),
    ),
    ("catalog.html", include_str!("../../templates/catalog.html")),
    (
        "settings_fields.html",
        include_str!("../../templates/settings_fields.html"),
    ),
    ("app.html", include_str!("../../templates/app.html")),
    (
        "agent_picker.html",
        include_str!("../../templates/agent_picker.html"),
    ),
    (
        "app_facts.html",
        include_str!("../../templates/app_facts.html"),
    ),
    (
        "installation.html",
        include_str!("../../templates/installation.html"),
    ),
    ("job.html", include_str!("../../templates/job.html")),
    ("jobs.html", include_str!("../../templates/jobs.html")),
    ("agents.html", include_str!("../../templates/agents.html")),
    ("agent.html", include_str!("../../templates/agent.html")),
    (
        "agent_charts.html",
        include_str!("../../templates/agent_charts.html"),
    ),
    ("audit.html", include_str!("../../templates/audit.html")),
    (
        "rollouts.html",
        include_str!("../../templates/rollouts.html"),
    ),
    ("rollout.html", include_str!("../../templates/rollout.html")),
    (
        "webhooks.html",
        include_str!("../../templates/webhooks.html"),
    ),
    (
        "schedules.html",
        include_str!("../../templates/schedules.html"),
    ),
];

/// The stylesheet.
pub const CSS: &str = include_str!("../../templates/static/panel.css");
/// The script (progressive enhancement: `visible_if` and live job progress).
pub const JS: &str = include_str!("../../templates/static/panel.js");

/// Compiles every template, with HTML autoescaping on.
pub fn load() -> anyhow::Result<tera::Tera> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on([".html"]);
    tera.add_raw_templates(TEMPLATES.iter().copied())
        .context("compiling the HTML templates")?;
    Ok(tera)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile() {
        load().unwrap();
    }

    #[test]
    fn values_are_escaped() {
        let mut tera = load().unwrap();
        tera.add_raw_template("t.html", "{{ v }}").unwrap();
        let mut ctx = tera::Context::new();
        ctx.insert("v", "<script>\"'&");
        assert_eq!(
            tera.render("t.html", &ctx).unwrap(),
            "&lt;script&gt;&quot;&#39;&amp;"
        );
    }
}
