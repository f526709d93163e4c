//! Whether a server meets an app's requirements: its heartbeat's host facts against the
//! manifest's `os_requirements` and `resource_requirements`. The panel refuses a job (and
//! greys out the server in the picker) with the reasons this returns.

use crate::host::{HostFacts, version_at_least};
use crate::manifest::Manifest;

/// Why a server does not fit an app; each reason is one sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", reasons.join("; "))]
pub struct Unmet {
    /// One sentence per failed requirement, naming what the server has and what the app
    /// needs (`has 512 MiB of RAM but the app needs 1024 MiB`); never empty.
    pub reasons: Vec<String>,
}

/// Checks every requirement and reports all that fail.
pub fn check(facts: &HostFacts, manifest: &Manifest) -> Result<(), Unmet> {
    let mut reasons = Vec::new();
    let os = &manifest.os_requirements;
    let family_ok = os.family.iter().any(|f| {
        f.eq_ignore_ascii_case(&facts.os_family)
            || facts.os_like.iter().any(|l| f.eq_ignore_ascii_case(l))
    });
    if !family_ok {
        reasons.push(format!(
            "runs {} but the app supports {}",
            describe_os(facts),
            os.family.join(", ")
        ));
    } else if let Some(min) = &os.min_version
        && !version_at_least(&facts.os_version, min)
    {
        reasons.push(format!(
            "runs {} version {} but the app needs at least {min}",
            facts.os_family, facts.os_version
        ));
    }
    if let Some(res) = &manifest.resource_requirements {
        if let Some(min) = res.min_ram_mb
            && facts.ram_mb < min
        {
            reasons.push(format!(
                "has {} MiB of RAM but the app needs {min} MiB",
                facts.ram_mb
            ));
        }
        if let Some(min) = res.min_disk_mb
            && facts.disk_free_mb < min
        {
            reasons.push(format!(
                "has {} MiB of free disk but the app needs {min} MiB",
                facts.disk_free_mb
            ));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Unmet { reasons })
    }
}

fn describe_os(facts: &HostFacts) -> String {
    if facts.os_like.is_empty() {
        facts.os_family.clone()
    } else {
        format!("{} (like {})", facts.os_family, facts.os_like.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{OsRequirements, ResourceRequirements};

    fn facts(family: &str, like: &[&str], version: &str, ram: u64, disk: u64) -> HostFacts {
        HostFacts {
            agent_id: "a".into(),
            os_family: family.into(),
            os_like: like.iter().map(|s| s.to_string()).collect(),
            os_version: version.into(),
            os_pretty: String::new(),
            arch: "x86_64".into(),
            cpus: 2,
            ram_mb: ram,
            disk_free_mb: disk,
            load1: 0.0,
            runner_version: "0.1.0".into(),
            ts: 0,
            running_jobs: vec![],
            runner: None,
            metrics: None,
        }
    }

    fn manifest(
        family: &[&str],
        min_version: Option<&str>,
        ram: Option<u64>,
        disk: Option<u64>,
    ) -> Manifest {
        let mut m: Manifest = serde_json::from_value(serde_json::json!({
            "id": "x", "name": "X", "version": "1", "description": "d", "category": "web",
            "author": "a", "os_requirements": {"family": ["debian"]},
            "timeout_seconds": 60, "idempotent": true
        }))
        .unwrap();
        m.os_requirements = OsRequirements {
            family: family.iter().map(|s| s.to_string()).collect(),
            min_version: min_version.map(str::to_owned),
        };
        m.resource_requirements = Some(ResourceRequirements {
            min_ram_mb: ram,
            min_disk_mb: disk,
        });
        m
    }

    #[test]
    fn matching_server_is_accepted() {
        let m = manifest(&["debian", "ubuntu"], Some("11"), Some(512), Some(1024));
        assert_eq!(check(&facts("debian", &[], "12", 2048, 5000), &m), Ok(()));
    }

    #[test]
    fn id_like_counts_as_the_family() {
        let m = manifest(&["debian"], None, None, None);
        assert_eq!(
            check(&facts("ubuntu", &["debian"], "22.04", 1, 1), &m),
            Ok(())
        );
    }

    #[test]
    fn wrong_family_is_explained() {
        let m = manifest(&["debian", "ubuntu"], None, None, None);
        let e = check(&facts("alpine", &[], "3.19", 1, 1), &m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "runs alpine but the app supports debian, ubuntu"
        );
    }

    #[test]
    fn old_version_is_explained() {
        let m = manifest(&["debian"], Some("12"), None, None);
        let e = check(&facts("debian", &[], "11", 1, 1), &m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "runs debian version 11 but the app needs at least 12"
        );
    }

    #[test]
    fn every_missing_resource_is_reported() {
        let m = manifest(&["debian"], None, Some(1024), Some(2048));
        let e = check(&facts("debian", &[], "12", 512, 100), &m).unwrap_err();
        assert_eq!(e.reasons.len(), 2);
        assert!(e.reasons[0].contains("512 MiB of RAM"), "{e}");
        assert!(e.reasons[1].contains("100 MiB of free disk"), "{e}");
    }
}
