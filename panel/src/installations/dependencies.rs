//! Installations that stand on others (a manifest's `requires`): an install waits for what it
//! requires to stand on the same server, and an uninstall asks first when another
//! installation there stands on it.

use std::collections::{BTreeSet, HashMap};

use outfitter_contract::catalog::Catalog;
use outfitter_contract::dependencies;
use outfitter_contract::manifest::Manifest;
use outfitter_redis::RedisConn;

use super::actions::installed_manifest;
use super::error::{Error, Result};
use super::model::Installation;
use super::store::{self, Filter};

/// Every installation on `agent_id` (newest first, as the store lists them).
async fn on_server(conn: &mut RedisConn, agent_id: &str) -> Result<Vec<Installation>> {
    let filter = Filter {
        agent_id: Some(agent_id.to_owned()),
        ..Filter::default()
    };
    store::list(conn, &filter).await
}

/// The apps that stand on a server: installed and not failed.
pub fn standing(installations: &[Installation]) -> BTreeSet<&str> {
    installations
        .iter()
        .filter(|i| i.state.stands())
        .map(|i| i.app_id.as_str())
        .collect()
}

/// The apps standing on each server, for what `manifest` requires (one read of the
/// installations; nothing when it requires nothing).
pub async fn standing_by_agent(
    conn: &mut RedisConn,
    manifest: &Manifest,
) -> Result<HashMap<String, BTreeSet<String>>> {
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    if manifest.requires.is_empty() {
        return Ok(out);
    }
    for i in store::list(conn, &Filter::default()).await? {
        if i.state.stands() && manifest.requires.contains(&i.app_id) {
            out.entry(i.agent_id).or_default().insert(i.app_id);
        }
    }
    Ok(out)
}

/// Refuses to install (or upgrade to) `manifest` on `agent_id` while an app it requires
/// does not stand there.
pub async fn check_requirements(
    conn: &mut RedisConn,
    manifest: &Manifest,
    agent_id: &str,
) -> Result<()> {
    if manifest.requires.is_empty() {
        return Ok(());
    }
    let here = on_server(conn, agent_id).await?;
    let missing = dependencies::missing(manifest, &standing(&here));
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::RequirementMissing(format!(
        "{} needs {} installed on {agent_id} first (installed and not failed)",
        manifest.id,
        missing.join(" and ")
    )))
}

/// The installations on `inst`'s server that stand on its app and would be left without it:
/// present ones whose manifest requires the app, when no other installation of the app
/// stands there.
pub async fn dependants(
    conn: &mut RedisConn,
    catalog: &Catalog,
    inst: &Installation,
) -> Result<Vec<Installation>> {
    let here = on_server(conn, &inst.agent_id).await?;
    let other_base = here
        .iter()
        .any(|i| i.id != inst.id && i.app_id == inst.app_id && i.state.stands());
    if other_base {
        return Ok(Vec::new());
    }
    Ok(here
        .into_iter()
        .filter(|i| i.id != inst.id && i.state.is_present())
        .filter(|i| {
            installed_manifest(i, catalog.get(&i.app_id))
                .is_some_and(|m| m.requires.contains(&inst.app_id))
        })
        .collect())
}

/// Refuses to uninstall `inst` while others stand on it, naming them; `force` goes ahead.
pub async fn check_uninstall(
    conn: &mut RedisConn,
    catalog: &Catalog,
    inst: &Installation,
    force: bool,
) -> Result<()> {
    if force {
        return Ok(());
    }
    let needed_by = dependants(conn, catalog, inst).await?;
    if needed_by.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = needed_by
        .iter()
        .map(|i| format!("{} ({})", i.app_id, i.id))
        .collect();
    Err(Error::RequiredByOthers(format!(
        "{} on {} is needed by {}; uninstall those first, or uninstall anyway with force",
        inst.app_id,
        inst.agent_id,
        names.join(", ")
    )))
}

/// What `inst` stands on: each app its manifest requires, with the installation of it on
/// the same server when there is one (standing first).
pub async fn foundations(
    conn: &mut RedisConn,
    catalog: &Catalog,
    inst: &Installation,
) -> Result<Vec<(String, Option<Installation>)>> {
    let Some(manifest) = installed_manifest(inst, catalog.get(&inst.app_id)) else {
        return Ok(Vec::new());
    };
    if manifest.requires.is_empty() {
        return Ok(Vec::new());
    }
    let here = on_server(conn, &inst.agent_id).await?;
    Ok(manifest
        .requires
        .iter()
        .map(|app| {
            let mut of_app: Vec<&Installation> = here
                .iter()
                .filter(|i| i.app_id == *app && i.state.is_present())
                .collect();
            of_app.sort_by_key(|i| !i.state.stands());
            (app.clone(), of_app.first().map(|i| (*i).clone()))
        })
        .collect())
}
