//! The script's environment: the variables the runner sets itself, the names no input may
//! take, and the mapping of validated input values to `NAME=value` pairs.

use serde_json::Value;

use super::InputValues;
use crate::manifest::Manifest;

/// Environment variables the runner sets itself for every script, and nothing else (the rest
/// of the environment is cleared). Reserved: no input may use these names.
pub const CONTRACT_VARIABLES: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TERM",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "DEBIAN_FRONTEND",
    "NEEDRESTART_MODE",
    "PROVISIONING_JOB",
    "JOB_ID",
    "JOB_ATTEMPT",
    "APP_ID",
    "APP_VERSION",
    "AGENT_ID",
];

/// Fixed values of the contract variables that do not depend on the job.
pub const FIXED_CONTRACT_VALUES: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LANG", "C.UTF-8"),
    ("LC_ALL", "C.UTF-8"),
    ("TERM", "dumb"),
    ("SHELL", "/bin/bash"),
    ("DEBIAN_FRONTEND", "noninteractive"),
    // Ubuntu's needrestart otherwise asks which services to restart after apt upgrades.
    ("NEEDRESTART_MODE", "a"),
    ("PROVISIONING_JOB", "true"),
];

/// Per-job facts the runner puts into the script's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFacts {
    /// `JOB_ID`.
    pub job_id: String,
    /// `JOB_ATTEMPT`, 1 for the first attempt.
    pub attempt: u32,
    /// `APP_ID`.
    pub app_id: String,
    /// `APP_VERSION`.
    pub app_version: String,
    /// `AGENT_ID`.
    pub agent_id: String,
    /// `HOME` (and the user the script runs as gives `USER`/`LOGNAME`).
    pub home: String,
    /// `USER` and `LOGNAME`.
    pub user: String,
    /// `TMPDIR`.
    pub tmpdir: String,
}

/// Every contract variable with its value for this job, in `CONTRACT_VARIABLES` order.
pub fn contract_env(facts: &JobFacts) -> Vec<(String, String)> {
    CONTRACT_VARIABLES
        .iter()
        .map(|&name| {
            let value = match name {
                "HOME" => facts.home.clone(),
                "USER" | "LOGNAME" => facts.user.clone(),
                "TMPDIR" => facts.tmpdir.clone(),
                "JOB_ID" => facts.job_id.clone(),
                "JOB_ATTEMPT" => facts.attempt.to_string(),
                "APP_ID" => facts.app_id.clone(),
                "APP_VERSION" => facts.app_version.clone(),
                "AGENT_ID" => facts.agent_id.clone(),
                fixed => FIXED_CONTRACT_VALUES
                    .iter()
                    .find(|(n, _)| *n == fixed)
                    .map(|(_, v)| (*v).to_owned())
                    .unwrap_or_default(),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// Names that change how a shell, the dynamic loader or a common interpreter behaves.
const DANGEROUS_NAMES: &[&str] = &[
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "CDPATH",
    "GLOBIGNORE",
    "PWD",
    "OLDPWD",
    "HISTFILE",
    "INPUTRC",
    "MAIL",
    "MAILPATH",
    "OPTIND",
    "OPTARG",
    "OPTERR",
    "PPID",
    "UID",
    "EUID",
    "GROUPS",
    "RANDOM",
    "SECONDS",
    "LINENO",
    "FUNCNAME",
    "PIPESTATUS",
    "HOSTNAME",
    "TZ",
    "TMOUT",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "EDITOR",
    "VISUAL",
    "PAGER",
];

/// Name prefixes reserved as a family (`LD_PRELOAD`, `LC_CTYPE`, `BASH_FUNC_…`, …).
const DANGEROUS_PREFIXES: &[&str] = &[
    "LD_",
    "LC_",
    "BASH_",
    "DYLD_",
    "MALLOC_",
    "GLIBC_",
    "DEBCONF_",
    "DPKG_",
    "APT_",
    "SUDO_",
    "SSH_",
    "XDG_",
    "SYSTEMD_",
    "GIT_",
    "OUTFITTER_",
];

/// Why an input name is reserved, or `None` when it is free. Compared on the UPPERCASED name,
/// which is what the script would see.
pub fn reserved_reason(input_name: &str) -> Option<String> {
    let env = input_name.to_ascii_uppercase();
    if CONTRACT_VARIABLES.contains(&env.as_str()) {
        return Some(format!("{env} is set by the runner for every script"));
    }
    if crate::lifecycle::LIFECYCLE_VARIABLES.contains(&env.as_str()) {
        return Some(format!("{env} is set by the runner for lifecycle scripts"));
    }
    if DANGEROUS_NAMES.contains(&env.as_str()) {
        return Some(format!("{env} changes how the shell or a program behaves"));
    }
    DANGEROUS_PREFIXES
        .iter()
        .find(|prefix| env.starts_with(*prefix))
        .map(|prefix| format!("names starting with {prefix} are reserved ({env})"))
}

/// Whether an UPPERCASE variable name is one the script may rely on without declaring it:
/// a contract variable, or one bash sets itself.
pub fn is_contract_or_shell_variable(name: &str) -> bool {
    const BASH_SETS: &[&str] = &[
        "BASH",
        "BASHPID",
        "BASH_SOURCE",
        "BASH_LINENO",
        "BASH_VERSION",
        "BASH_VERSINFO",
        "BASH_REMATCH",
        "BASH_COMMAND",
        "BASH_SUBSHELL",
        "EUID",
        "UID",
        "PPID",
        "PWD",
        "OLDPWD",
        "IFS",
        "RANDOM",
        "SECONDS",
        "LINENO",
        "FUNCNAME",
        "PIPESTATUS",
        "HOSTNAME",
        "HOSTTYPE",
        "MACHTYPE",
        "OSTYPE",
        "OPTIND",
        "OPTARG",
        "REPLY",
        "EPOCHSECONDS",
        "EPOCHREALTIME",
        "SRANDOM",
        "GROUPS",
        "SHLVL",
        "SHELLOPTS",
        "BASHOPTS",
        "COLUMNS",
        "LINES",
    ];
    CONTRACT_VARIABLES.contains(&name)
        || crate::lifecycle::LIFECYCLE_VARIABLES.contains(&name)
        || BASH_SETS.contains(&name)
}

/// The input part of the script's environment: one `NAME=value` per validated value, NAME
/// uppercased, booleans `true`/`false`, numbers in decimal, text as is. Inputs without a value
/// (hidden, or optional and not given) are absent; scripts read them as `${NAME:-}`.
pub fn script_env(manifest: &Manifest, values: &InputValues) -> Vec<(String, String)> {
    manifest
        .inputs
        .iter()
        .filter_map(|input| {
            let value = values.0.get(&input.name)?;
            Some((input.env_name(), env_value(value)))
        })
        .collect()
}

fn env_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Null => String::new(),
        // Validation never lets a list or an object through; keep a stable spelling anyway.
        other => other.to_string(),
    }
}
