//! Apps as the API and the pages show them.

use outfitter_contract::manifest::Bundle;
use serde::Serialize;
use utoipa::ToSchema;

use crate::agents::AgentFit;
use crate::conformance_view::Conformance;

/// A catalog card.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppSummary {
    #[schema(example = "nginx")]
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub category: String,
    /// Supported OS families (`/etc/os-release` ids).
    pub os_family: Vec<String>,
    pub os_min_version: Option<String>,
    pub tags: Vec<String>,
    /// The latest conformance run of the bundle: result, date, install and reinstall times.
    pub conformance: Conformance,
}

/// Everything about one app.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppDetail {
    #[serde(flatten)]
    pub summary: AppSummary,
    pub author: String,
    pub homepage: Option<String>,
    pub timeout_seconds: u64,
    pub idempotent: bool,
    /// Whether one server may hold several named instances (`instance` of `POST /jobs`).
    pub multiple_instances: bool,
    pub min_ram_mb: Option<u64>,
    pub min_disk_mb: Option<u64>,
    /// sha256 over manifest and script; the runner checks it.
    pub digest: String,
    /// The manifest's inputs (name, type, label, description, required, default,
    /// validation, visible_if, sensitive).
    #[schema(value_type = Vec<Object>)]
    pub inputs: serde_json::Value,
    pub post_install_message: Option<String>,
    /// Apps that must stand on a server before this one can be installed there.
    pub requires: Vec<String>,
    /// Which registered agents can run it now.
    pub agents: Vec<AgentFit>,
}

pub fn summary(bundle: &Bundle, conformance: Conformance) -> AppSummary {
    let m = &bundle.manifest;
    AppSummary {
        id: m.id.clone(),
        name: m.name.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        category: m.category.clone(),
        os_family: m.os_requirements.family.clone(),
        os_min_version: m.os_requirements.min_version.clone(),
        tags: m.tags.clone(),
        conformance,
    }
}

pub fn detail(bundle: &Bundle, conformance: Conformance, agents: Vec<AgentFit>) -> AppDetail {
    let m = &bundle.manifest;
    let res = m.resource_requirements.as_ref();
    AppDetail {
        summary: summary(bundle, conformance),
        author: m.author.clone(),
        homepage: m.homepage.clone(),
        timeout_seconds: m.timeout_seconds,
        idempotent: m.idempotent,
        multiple_instances: m.multiple_instances,
        min_ram_mb: res.and_then(|r| r.min_ram_mb),
        min_disk_mb: res.and_then(|r| r.min_disk_mb),
        digest: bundle.digest.clone(),
        inputs: serde_json::to_value(&m.inputs).unwrap_or_default(),
        post_install_message: m.post_install_message.clone(),
        requires: m.requires.clone(),
        agents,
    }
}
