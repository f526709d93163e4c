//! One layer of settings read from a TOML file, as the panel and the runner both read theirs:
//! a key that is no setting is an error naming it and the known ones.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a settings file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsFileError {
    /// The file cannot be read, is no TOML, or a value has the wrong type.
    #[error("config file {path}: {message}")]
    Unreadable {
        /// The file as given (`--config`).
        path: String,
        /// The I/O or TOML error, as text.
        message: String,
    },
    /// A key that is no setting (a typo would otherwise be ignored).
    #[error("config file {path}: unknown setting {key:?} (known: {known})")]
    Unknown {
        /// The file as given (`--config`).
        path: String,
        /// The first top-level key that is no setting.
        key: String,
        /// Every key the layer accepts, joined by `, `, so the message shows the right spelling.
        known: String,
    },
}

/// Reads the settings layer `T` from the TOML file at `path`; `known` are the keys it may set.
pub fn read_layer<T: DeserializeOwned>(
    path: &Path,
    known: &[String],
) -> Result<T, SettingsFileError> {
    let unreadable = |message: String| SettingsFileError::Unreadable {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    if let Some(key) = table.keys().find(|k| !known.contains(k)) {
        return Err(SettingsFileError::Unknown {
            path: path.display().to_string(),
            key: key.clone(),
            known: known.join(", "),
        });
    }
    table.try_into().map_err(|e| unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Layer {
        port: Option<u16>,
    }

    fn read(text: &str) -> Result<Layer, SettingsFileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, text).unwrap();
        read_layer(&path, &["port".to_owned()])
    }

    #[test]
    fn known_keys_are_read_and_unknown_ones_named() {
        assert_eq!(read("port = 80\n").unwrap().port, Some(80));
        let e = read("prot = 80\n").unwrap_err().to_string();
        assert!(e.contains("unknown setting \"prot\" (known: port)"), "{e}");
        let e = read("port = \"eighty\"\n").unwrap_err().to_string();
        assert!(e.contains("config file") && e.contains("port"), "{e}");
    }
}
