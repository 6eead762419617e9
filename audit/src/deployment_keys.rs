//! The deployment's personal-data keys, for the commands that open sealed fields
//! (`timeline`, `recheck`): `MFA_MASTER_KEYS` and `MFA_DATABASE_URL` (where login-intake keeps
//! the data keys), with `MFA_PSEUDONYM_KEY`, as the services read them.
//!
//! All optional. A copy of the log handed to an outside auditor comes without them, and
//! the commands then read it as such a copy reads: personal fields sealed. Someone working
//! for the deployment sets them, and the fields read in the clear, or as erased once their
//! key was destroyed.

use std::sync::Arc;

use mfa_runtime::config::Env;
use mfa_store::data_keys::{BlockingDataKeys, DataKeyError};
use secrecy::SecretString;
use shared::personal::{MasterKeys, PersonalDataError, PseudonymKey};

#[derive(Debug, thiserror::Error)]
pub enum DeploymentKeysError {
    #[error("the deployment's master keys")]
    MasterKeys(#[source] PersonalDataError),
    /// Master keys alone open nothing: the data keys they wrap are in the database.
    #[error("MFA_MASTER_KEYS is set, MFA_DATABASE_URL is not: it names the database that holds the data keys")]
    NoDatabase,
    #[error("MFA_PSEUDONYM_KEY")]
    PseudonymKey(#[source] PersonalDataError),
}

/// What opens the deployment's sealed fields.
#[derive(Debug, Clone)]
pub struct DeploymentKeys {
    master: Arc<MasterKeys>,
    database_url: SecretString,
    pseudonyms: Option<PseudonymKey>,
}

impl DeploymentKeys {
    /// From the environment; `None` without `MFA_MASTER_KEYS`.
    pub fn from_env() -> Result<Option<Self>, DeploymentKeysError> {
        Self::from_settings(
            Env::optional("MFA_MASTER_KEYS").as_deref(),
            Env::optional_secret("MFA_DATABASE_URL"),
            Env::optional("MFA_PSEUDONYM_KEY").as_deref(),
        )
    }

    /// From the settings' values; `None` without master keys. A database URL alone is no
    /// key: the stack's environment sets one for every tool.
    pub fn from_settings(
        master_keys: Option<&str>,
        database_url: Option<SecretString>,
        pseudonym_key: Option<&str>,
    ) -> Result<Option<Self>, DeploymentKeysError> {
        let Some(master_keys) = master_keys else {
            return Ok(None);
        };
        let master = MasterKeys::parse(master_keys).map_err(DeploymentKeysError::MasterKeys)?;
        let database_url = database_url.ok_or(DeploymentKeysError::NoDatabase)?;
        let pseudonyms = pseudonym_key
            .map(PseudonymKey::parse)
            .transpose()
            .map_err(DeploymentKeysError::PseudonymKey)?;
        Ok(Some(Self {
            master: Arc::new(master),
            database_url,
            pseudonyms,
        }))
    }

    /// A reader of the data keys, with a connection and a cache of its own.
    pub fn connect(&self) -> Result<BlockingDataKeys, DataKeyError> {
        BlockingDataKeys::connect(&self.database_url, self.master.clone())
    }

    /// The key of the shared counts' keyed hashes, when given.
    pub fn pseudonyms(&self) -> Option<&PseudonymKey> {
        self.pseudonyms.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Option<SecretString> {
        Some(SecretString::from("postgres://keys.invalid/mfa"))
    }

    #[test]
    fn no_master_keys_is_no_keys_even_with_a_database() {
        assert!(DeploymentKeys::from_settings(None, url(), None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn master_keys_need_the_database_and_parse_with_the_pseudonym_key() {
        let master = MasterKeys::generate_entry("m1");
        assert!(matches!(
            DeploymentKeys::from_settings(Some(&master), None, None),
            Err(DeploymentKeysError::NoDatabase)
        ));
        assert!(matches!(
            DeploymentKeys::from_settings(Some("m1:short"), url(), None),
            Err(DeploymentKeysError::MasterKeys(_))
        ));
        assert!(matches!(
            DeploymentKeys::from_settings(Some(&master), url(), Some("not base64")),
            Err(DeploymentKeysError::PseudonymKey(_))
        ));
        let keys = DeploymentKeys::from_settings(Some(&master), url(), None)
            .unwrap()
            .unwrap();
        assert!(keys.pseudonyms().is_none());
        let pseudonym = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let keys = DeploymentKeys::from_settings(Some(&master), url(), Some(pseudonym))
            .unwrap()
            .unwrap();
        assert_eq!(
            keys.pseudonyms().map(|k| k.pseudonym("ip", "192.0.2.1")),
            Some(
                PseudonymKey::parse(pseudonym)
                    .unwrap()
                    .pseudonym("ip", "192.0.2.1")
            )
        );
    }
}
