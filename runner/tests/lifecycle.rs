//! The lifecycle of one installation through the real runner: install, reconfigure, backup,
//! restore, an upgrade that passes, an upgrade whose script fails and one whose health check
//! fails (both rolled back to the previous version from the runner's own bundle copy after
//! the catalog already holds only the new one), uninstall keeping and purging data; a restore
//! from a bad backup id is refused; and a runner killed with -9 in the middle of the upgrade
//! script ends the upgrade rolled back when it starts again.

mod support;

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use outfitter_contract::job::{JobState, field};
use outfitter_contract::lifecycle::{Action, LifecycleOrder, PreviousBundle, backup_id};
use outfitter_contract::manifest::load_bundle;
use serde_json::{Value, json};
use support::panel::{LONG, log_lines};
use support::{
    Enqueued, Panel, RedisServer, RunnerOptions, RunnerProcess, bundles_dir, processes_of_job,
    wait_for,
};

const INSTANCE: &str = "blog";

/// A catalog the test can move from version to version, and the directory the app's
/// scripts write into.
struct World {
    catalog: tempfile::TempDir,
    root: tempfile::TempDir,
    installation: String,
}

impl World {
    fn new() -> Self {
        let catalog = tempfile::tempdir().unwrap();
        let world = World {
            catalog,
            root: tempfile::tempdir().unwrap(),
            installation: outfitter_contract::ids::new_job_id(),
        };
        world.publish("1.0.0");
        world
    }

    fn bundle_dir(&self) -> PathBuf {
        self.catalog.path().join("lifecycle-app")
    }

    /// Puts `version` of the app in the catalog, replacing what was there. Later versions
    /// have an upgrade script that can be told to fail or to wait for a file.
    fn publish(&self, version: &str) {
        let src = bundles_dir().join("lifecycle-app");
        let dir = self.bundle_dir();
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        if version == "1.0.0" {
            return;
        }
        let manifest = fs::read_to_string(dir.join("manifest.yml"))
            .unwrap()
            .replace("version: 1.0.0", &format!("version: {version}"))
            .replace(
                "uninstall_script: uninstall.sh",
                "uninstall_script: uninstall.sh\nupgrade_script: upgrade.sh",
            );
        let manifest = format!(
            "{manifest}  - name: fail_upgrade\n    type: boolean\n    label: Fail the upgrade\n    required: false\n    default: false\n  - name: wait_file\n    type: string\n    label: Wait for this file\n    required: false\n"
        );
        fs::write(dir.join("manifest.yml"), manifest).unwrap();
        let install = fs::read_to_string(dir.join("install.sh")).unwrap();
        let record_end = install.find("mkdir -p \"$ROOT_DIR/app\"").unwrap();
        let upgrade = format!(
            "{}echo \"$APP_VERSION\" > \"$ROOT_DIR/app/version\"\nif [ -n \"${{WAIT_FILE:-}}\" ]; then\n  echo \"waiting for $WAIT_FILE\"\n  while [ ! -f \"$WAIT_FILE\" ]; do sleep 0.1; done\nfi\nif [ \"$FAIL_UPGRADE\" = true ]; then echo \"failing on purpose\" >&2; exit 1; fi\necho \"upgraded to $APP_VERSION\"\n",
            &install[..record_end]
        );
        fs::write(dir.join("upgrade.sh"), upgrade).unwrap();
    }

    fn digest(&self) -> String {
        load_bundle(&self.bundle_dir()).unwrap().digest
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .trim()
            .to_owned()
    }

    /// The variables the script of `action` last got.
    fn env_of(&self, action: &str) -> HashMap<String, String> {
        self.read(&format!("env/{action}"))
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn inputs(&self, extra: Value) -> Value {
        let mut inputs = json!({"root_dir": self.root.path().display().to_string()});
        if let Value::Object(m) = extra {
            inputs.as_object_mut().unwrap().extend(m);
        }
        inputs
    }

    fn order(&self, action: Action) -> LifecycleOrder {
        LifecycleOrder {
            installation_id: self.installation.clone(),
            action,
            instance: INSTANCE.to_owned(),
            previous: None,
            backup_id: None,
            purge: false,
        }
    }

    fn enqueue(&self, panel: &Panel, order: LifecycleOrder, extra: Value) -> Enqueued {
        panel.enqueue_lifecycle(&self.bundle_dir(), self.inputs(extra), order)
    }

    /// An upgrade from the version in the catalog now (whose digest is `from`) to `to`.
    fn upgrade(&self, panel: &Panel, from: (&str, String), to: &str, extra: Value) -> Enqueued {
        self.publish(to);
        let order = LifecycleOrder {
            previous: Some(PreviousBundle {
                version: from.0.to_owned(),
                digest: from.1,
            }),
            ..self.order(Action::Upgrade)
        };
        self.enqueue(panel, order, extra)
    }
}

fn start(panel: &Panel, redis: &RedisServer, world: &World) -> RunnerProcess {
    RunnerProcess::start(
        panel,
        &redis.url(),
        RunnerOptions {
            installers: world.catalog.path().to_path_buf(),
            ..RunnerOptions::default()
        },
    )
}

/// Waits for the job's end; returns its record fields.
fn ended(panel: &Panel, runner: &RunnerProcess, job: &Enqueued) -> HashMap<String, String> {
    let terminal: Vec<JobState> = JobState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    wait_for(LONG, &format!("job {} to end", job.job_id), || {
        let r = outfitter_contract::job::JobRecord::from_fields(&panel.record_fields(&job.job_id))
            .ok()?;
        terminal.contains(&r.state).then_some(())
    });
    let f = panel.record_fields(&job.job_id);
    assert!(
        f.contains_key(field::STATE),
        "no record; runner log:\n{}",
        runner.stderr()
    );
    f
}

fn get<'a>(f: &'a HashMap<String, String>, name: &str) -> &'a str {
    f.get(name).map(String::as_str).unwrap_or_default()
}

fn assert_ended(f: &HashMap<String, String>, state: &str, outcome: &str, log: &str) {
    assert_eq!(
        (get(f, field::STATE), get(f, field::OUTCOME)),
        (state, outcome),
        "reason {:?}; job log:\n{log}",
        get(f, field::REASON)
    );
}

fn backup_dir(runner: &RunnerProcess, world: &World, id: &str) -> PathBuf {
    runner
        .dir
        .path()
        .join("state/backups")
        .join(&world.installation)
        .join(id)
}

/// Installs the bundle and checks that the job succeeded with the outcome `done`.
fn install_ok(panel: &Panel, runner: &RunnerProcess, world: &World) {
    let job = world.enqueue(panel, world.order(Action::Install), json!({}));
    assert_ended(
        &ended(panel, runner, &job),
        "succeeded",
        "done",
        &runner.job_log(&job.job_id),
    );
}

/// Waits until the upgrade script says it waits for its `wait_file`.
fn wait_until_the_upgrade_script_waits(panel: &Panel, job: &Enqueued) {
    wait_for(LONG, "the upgrade script to wait", || {
        log_lines(&panel.events(&job.job_id))
            .iter()
            .any(|l| l.starts_with("waiting for"))
            .then_some(())
    });
}

fn phases(panel: &Panel, job: &str) -> Vec<String> {
    log_lines(&panel.events(job))
        .into_iter()
        .filter_map(|l| l.strip_prefix("phase: ").map(str::to_owned))
        .collect()
}

#[test]
fn an_installation_lives_through_every_action_and_failed_upgrades_roll_back() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let world = World::new();
    let runner = start(&panel, &redis, &world);

    // Install: the lifecycle variables and the health check.
    let job = world.enqueue(&panel, world.order(Action::Install), json!({}));
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "succeeded", "done", &runner.job_log(&job.job_id));
    let env = world.env_of("install");
    assert_eq!(env["OUTFITTER_ACTION"], "install");
    assert_eq!(env["INSTANCE"], INSTANCE);
    assert!(!env.contains_key("PREVIOUS_VERSION") && !env.contains_key("BACKUP_DIR"));
    assert_eq!(world.read("app/version"), "1.0.0");
    assert!(world.read("history").contains("health install 1.0.0"));
    assert_eq!(phases(&panel, &job.job_id), ["running", "checking_health"]);
    let v1 = world.digest();
    let stored = runner
        .dir
        .path()
        .join("state/bundles")
        .join(&v1)
        .join("lifecycle-app");
    assert!(stored.join("manifest.yml").is_file() && stored.join("restore.sh").is_file());

    // Reconfigure: the install script again, with new settings.
    let job = world.enqueue(
        &panel,
        world.order(Action::Reconfigure),
        json!({"greeting": "bonjour"}),
    );
    assert_ended(
        &ended(&panel, &runner, &job),
        "succeeded",
        "done",
        &runner.job_log(&job.job_id),
    );
    assert_eq!(
        world.env_of("reconfigure")["OUTFITTER_ACTION"],
        "reconfigure"
    );
    assert_eq!(world.read("app/greeting"), "bonjour");

    // Backup: a new private directory, named in the record.
    let job = world.enqueue(&panel, world.order(Action::Backup), json!({}));
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "succeeded", "done", &runner.job_log(&job.job_id));
    let taken = backup_id(&job.job_id, 1);
    assert_eq!(get(&f, field::BACKUP_ID), taken);
    let dir = backup_dir(&runner, &world, &taken);
    assert_eq!(
        world.env_of("backup")["BACKUP_DIR"],
        dir.display().to_string()
    );
    assert_eq!(
        fs::read_to_string(dir.join("app/greeting")).unwrap().trim(),
        "bonjour"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // Restore from it, over a damaged app, then the health check.
    fs::write(world.path("app/greeting"), "damaged").unwrap();
    let job = world.enqueue(
        &panel,
        LifecycleOrder {
            backup_id: Some(taken),
            ..world.order(Action::Restore)
        },
        json!({}),
    );
    assert_ended(
        &ended(&panel, &runner, &job),
        "succeeded",
        "done",
        &runner.job_log(&job.job_id),
    );
    assert_eq!(world.read("app/greeting"), "bonjour");
    assert_eq!(
        world.env_of("restore")["BACKUP_DIR"],
        dir.display().to_string()
    );
    assert!(world.read("history").contains("health restore 1.0.0"));

    // An upgrade that passes: backup first, the upgrade script, the health check.
    let job = world.upgrade(&panel, ("1.0.0", v1), "2.0.0", json!({}));
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "succeeded", "done", &runner.job_log(&job.job_id));
    assert_eq!(world.read("app/version"), "2.0.0");
    let env = world.env_of("upgrade");
    assert_eq!(env["PREVIOUS_VERSION"], "1.0.0");
    assert_eq!(env["APP_VERSION"], "2.0.0");
    assert_eq!(get(&f, field::BACKUP_ID), backup_id(&job.job_id, 1));
    assert_eq!(
        phases(&panel, &job.job_id),
        ["backing_up", "running", "checking_health"]
    );
    let v2 = world.digest();

    // An upgrade whose script fails, after the catalog holds only the new version: rolled
    // back to 2.0.0 from the runner's copy, with its restore script and the safety backup.
    let job = world.upgrade(
        &panel,
        ("2.0.0", v2.clone()),
        "3.0.0",
        json!({"fail_upgrade": true}),
    );
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "failed", "rolled_back", &runner.job_log(&job.job_id));
    assert_eq!(
        world.env_of("upgrade")["APP_VERSION"],
        "3.0.0",
        "the upgrade ran"
    );
    assert_eq!(world.read("app/version"), "2.0.0", "and was undone");
    let env = world.env_of("restore");
    assert_eq!(env["APP_VERSION"], "2.0.0");
    assert_eq!(env["PREVIOUS_VERSION"], "3.0.0");
    let safety = backup_id(&job.job_id, 1);
    assert_eq!(
        env["BACKUP_DIR"],
        backup_dir(&runner, &world, &safety).display().to_string()
    );
    assert_eq!(get(&f, field::BACKUP_ID), safety);
    assert!(
        backup_dir(&runner, &world, &safety).join("app").is_dir(),
        "backup kept"
    );
    assert_eq!(get(&f, field::PHASE), "rolling_back");
    assert_eq!(
        phases(&panel, &job.job_id),
        ["backing_up", "running", "rolling_back"]
    );
    assert!(get(&f, field::REASON).contains("rolled back to 2.0.0"));
    assert_eq!(get(&f, field::ATTEMPTS), "1", "never retried");
    assert!(
        !runner
            .dir
            .path()
            .join(format!("state/lifecycle/{}.json", job.job_id))
            .exists()
    );

    // An upgrade whose health check fails: rolled back as well.
    fs::write(world.path("break-health-3.0.0"), "").unwrap();
    let job = world.upgrade(&panel, ("2.0.0", v2), "3.0.0", json!({}));
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "failed", "rolled_back", &runner.job_log(&job.job_id));
    assert!(get(&f, field::REASON).contains("health check"), "{f:?}");
    assert_eq!(world.read("app/version"), "2.0.0");
    assert!(
        world
            .read("history")
            .ends_with("restore 2.0.0\nhealth restore 2.0.0")
    );

    // Uninstall keeps the data; with purge it goes too.
    world.publish("2.0.0");
    let job = world.enqueue(&panel, world.order(Action::Uninstall), json!({}));
    assert_ended(
        &ended(&panel, &runner, &job),
        "succeeded",
        "done",
        &runner.job_log(&job.job_id),
    );
    assert_eq!(world.env_of("uninstall")["PURGE"], "false");
    assert!(!world.path("app").exists() && world.path("data/created").is_file());
    assert!(!world.read("history").ends_with("health uninstall 2.0.0"));
    install_ok(&panel, &runner, &world);
    assert_eq!(
        world.read("data/created"),
        "1.0.0",
        "the kept data was reused"
    );
    let job = world.enqueue(
        &panel,
        LifecycleOrder {
            purge: true,
            ..world.order(Action::Uninstall)
        },
        json!({}),
    );
    assert_ended(
        &ended(&panel, &runner, &job),
        "succeeded",
        "done",
        &runner.job_log(&job.job_id),
    );
    assert_eq!(world.env_of("uninstall")["PURGE"], "true");
    assert!(!world.path("app").exists() && !world.path("data").exists());
}

#[test]
fn a_restore_from_a_bad_or_unknown_backup_is_refused() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let world = World::new();
    let runner = start(&panel, &redis, &world);
    for (id, says) in [
        ("../../etc.1", "is not a backup id"),
        ("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.1", "no such backup"),
    ] {
        let job = world.enqueue(
            &panel,
            LifecycleOrder {
                backup_id: Some(id.to_owned()),
                ..world.order(Action::Restore)
            },
            json!({}),
        );
        let f = ended(&panel, &runner, &job);
        assert_eq!(get(&f, field::STATE), "rejected");
        assert!(get(&f, field::REASON).contains(says), "{f:?}");
    }
    assert!(!world.path("env").exists(), "no script ran");
}

#[test]
fn orders_the_bundle_or_this_server_cannot_carry_out_are_refused() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let world = World::new();
    // `happy` has no uninstall script.
    let happy = world.catalog.path().join("happy");
    fs::create_dir_all(&happy).unwrap();
    for entry in fs::read_dir(bundles_dir().join("happy")).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), happy.join(entry.file_name())).unwrap();
    }
    let runner = start(&panel, &redis, &world);
    let mut env = panel.envelope("happy", json!({}), json!(null));
    env.lifecycle = Some(world.order(Action::Uninstall));
    let job = panel.enqueue_envelope(&env);
    let f = ended(&panel, &runner, &job);
    assert_eq!(get(&f, field::STATE), "rejected");
    assert!(
        get(&f, field::REASON).contains("has no uninstall_script"),
        "{f:?}"
    );
    // An upgrade from a version this runner never ran cannot be rolled back.
    let job = world.upgrade(&panel, ("0.9.0", "cd".repeat(32)), "2.0.0", json!({}));
    let f = ended(&panel, &runner, &job);
    assert_eq!(get(&f, field::STATE), "rejected");
    assert!(get(&f, field::REASON).contains("bundle store"), "{f:?}");
    assert!(!world.path("env").exists(), "no script ran");
}

#[test]
fn a_plain_install_is_told_install_and_its_app_id_and_is_health_checked() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let world = World::new();
    let runner = start(&panel, &redis, &world);
    let env = panel.envelope_in(&world.bundle_dir(), world.inputs(json!({})), json!(null));
    let job = panel.enqueue_envelope(&env);
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "succeeded", "", &runner.job_log(&job.job_id));
    let seen = world.env_of("install");
    assert_eq!(seen["OUTFITTER_ACTION"], "install");
    assert_eq!(seen["INSTANCE"], "lifecycle-app");
    assert!(world.read("history").ends_with("health install 1.0.0"));
    // A failing health check fails the job at once: no retry of the policy.
    let env = panel.envelope_in(
        &world.bundle_dir(),
        world.inputs(json!({"break_health": true})),
        json!(null),
    );
    let job = panel.enqueue_envelope(&env);
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "failed", "unhealthy", &runner.job_log(&job.job_id));
    assert_eq!(get(&f, field::ATTEMPTS), "1");
    assert!(get(&f, field::REASON).contains("health check"), "{f:?}");
}

#[test]
fn runner_killed_during_the_upgrade_script_rolls_the_upgrade_back_after_restart() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let world = World::new();
    let mut runner = start(&panel, &redis, &world);
    install_ok(&panel, &runner, &world);
    let v1 = world.digest();
    let go = world.path("go");
    let job = world.upgrade(
        &panel,
        ("1.0.0", v1),
        "2.0.0",
        json!({"wait_file": go.display().to_string()}),
    );
    wait_until_the_upgrade_script_waits(&panel, &job);
    assert_eq!(world.read("app/version"), "2.0.0", "half upgraded");
    runner.kill_hard();
    runner.restart();
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "failed", "rolled_back", &runner.job_log(&job.job_id));
    assert_eq!(get(&f, field::ATTEMPTS), "2", "re-run as a new attempt");
    assert_eq!(world.read("app/version"), "1.0.0");
    let restore = world.env_of("restore");
    assert_eq!(
        restore["BACKUP_DIR"],
        backup_dir(&runner, &world, &backup_id(&job.job_id, 1))
            .display()
            .to_string(),
        "restored from the backup the first attempt took"
    );
    assert!(
        processes_of_job(&job.job_id).is_empty(),
        "the first attempt's upgrade script was killed"
    );
    assert!(
        !runner
            .dir
            .path()
            .join(format!("state/lifecycle/{}.json", job.job_id))
            .exists()
    );
}

#[test]
fn a_cancel_during_the_upgrade_script_stops_it_and_the_rollback_still_runs() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let world = World::new();
    let runner = start(&panel, &redis, &world);
    install_ok(&panel, &runner, &world);
    let v1 = world.digest();
    let never = world.path("never");
    let job = world.upgrade(
        &panel,
        ("1.0.0", v1),
        "2.0.0",
        json!({"wait_file": never.display().to_string()}),
    );
    wait_until_the_upgrade_script_waits(&panel, &job);
    panel.cancel(&job.job_id);
    let f = ended(&panel, &runner, &job);
    assert_ended(&f, "failed", "rolled_back", &runner.job_log(&job.job_id));
    assert!(get(&f, field::REASON).contains("canceled"), "{f:?}");
    assert_eq!(world.read("app/version"), "1.0.0");
    assert!(
        world
            .read("history")
            .ends_with("restore 1.0.0\nhealth restore 1.0.0")
    );
}
