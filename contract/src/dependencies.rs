//! Apps that stand on other apps (`requires` in a manifest): which bundles of a catalog can
//! ever be installed (rule M049), what an install on one server still lacks, and which
//! installations stand on one that is about to go.

use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::Manifest;

/// The apps of a catalog that can never be installed, with why: each requires an app the
/// catalog does not hold, or one that itself cannot be installed, or stands in a cycle.
/// `apps` maps an app id to the ids it requires.
pub fn unavailable(apps: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    // Installable: everything it requires is installable (a fixed point from the apps that
    // require nothing). What is left never gets there.
    let mut installable: BTreeSet<&str> = BTreeSet::new();
    loop {
        let before = installable.len();
        for (id, requires) in apps {
            if requires.iter().all(|r| installable.contains(r.as_str())) {
                installable.insert(id);
            }
        }
        if installable.len() == before {
            break;
        }
    }
    apps.keys()
        .filter(|id| !installable.contains(id.as_str()))
        .map(|id| (id.clone(), why(apps, &installable, id)))
        .collect()
}

/// The chain of requirements from `id` to what breaks it: an app missing from the catalog,
/// or a cycle.
fn why(apps: &BTreeMap<String, Vec<String>>, installable: &BTreeSet<&str>, id: &str) -> String {
    let mut path = vec![id.to_owned()];
    let mut at = id;
    loop {
        let Some(next) = apps[at].iter().find(|r| !installable.contains(r.as_str())) else {
            // Not reached: an uninstallable app has an uninstallable requirement.
            return format!("'{id}' cannot be installed");
        };
        if !apps.contains_key(next) {
            return format!(
                "requires {}'{next}', which the catalog does not offer (missing or invalid)",
                chain(&path[1..])
            );
        }
        if path.iter().any(|p| p == next) {
            path.push(next.clone());
            return format!(
                "its requirements form a cycle ({}): none of them can be installed first",
                path.join(" → ")
            );
        }
        path.push(next.clone());
        at = next;
    }
}

fn chain(between: &[String]) -> String {
    between.iter().map(|p| format!("'{p}' → ")).collect()
}

/// The apps `manifest` requires that are not among `installed` (the apps installed on the
/// server), in manifest order.
pub fn missing<'a>(manifest: &'a Manifest, installed: &BTreeSet<&str>) -> Vec<&'a str> {
    manifest
        .requires
        .iter()
        .map(String::as_str)
        .filter(|r| !installed.contains(r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(id, req)| {
                (
                    (*id).to_owned(),
                    req.iter().map(|r| (*r).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn apps_whose_requirements_resolve_are_installable() {
        let c = catalog(&[
            ("mariadb", &[]),
            ("php-fpm", &[]),
            ("wordpress", &["php-fpm", "mariadb-database"]),
            ("mariadb-database", &["mariadb"]),
        ]);
        assert!(unavailable(&c).is_empty());
    }

    #[test]
    fn a_missing_app_takes_its_dependants_with_it_and_says_which() {
        let c = catalog(&[
            ("mariadb-database", &["mariadb"]),
            ("wordpress", &["mariadb-database"]),
            ("nginx", &[]),
        ]);
        let u = unavailable(&c);
        assert_eq!(
            u["mariadb-database"],
            "requires 'mariadb', which the catalog does not offer (missing or invalid)"
        );
        assert_eq!(
            u["wordpress"],
            "requires 'mariadb-database' → 'mariadb', which the catalog does not offer (missing or invalid)"
        );
        assert!(!u.contains_key("nginx"));
    }

    #[test]
    fn a_cycle_is_named() {
        let c = catalog(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        let u = unavailable(&c);
        assert_eq!(
            u["a"],
            "its requirements form a cycle (a → b → c → a): none of them can be installed first"
        );
        assert_eq!(u.len(), 4);
        assert!(u["d"].contains("cycle"), "{}", u["d"]);
    }
}
