//! Signing keys from AWS Secrets Manager: the secret holds a PEM private key, or during a
//! rotation `{"current": "<pem>", "previous": ["<pem>", ...]}` (see `infra/create-signing-secret.sh`).
//! The token issuer caches what this loads and reloads it on its own schedule.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::aws::AwsConfig;
use crate::token::{KeyError, KeyRing, KeySource};

/// A [`KeySource`] reading one secret.
#[derive(Clone)]
pub struct SecretKeys {
    client: Client,
    secret_id: String,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

impl SecretKeys {
    /// `secret_id` is the secret's name or ARN.
    pub fn new(aws: &AwsConfig, secret_id: impl Into<String>) -> Self {
        Self {
            client: Client::new(aws.sdk()),
            secret_id: secret_id.into(),
        }
    }

    /// Stores `value` as the secret's new current version, creating the secret if needed
    /// (tests and local setups; on AWS the operator's script does this).
    pub async fn put(&self, value: &str) -> Result<(), KeyError> {
        let updated = self
            .client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(value)
            .send()
            .await;
        if updated.is_ok() {
            return Ok(());
        }
        self.client
            .create_secret()
            .name(&self.secret_id)
            .secret_string(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| KeyError::Source(DisplayErrorContext(&e).to_string()))
    }
}

impl SecretKeys {
    /// The secret's current string value (the admin key secret is read this way too).
    pub async fn read(&self) -> Result<String, KeyError> {
        let secret = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| KeyError::Source(DisplayErrorContext(&e).to_string()))?;
        secret.secret_string().map(str::to_owned).ok_or_else(|| {
            KeyError::Source(format!("secret {} has no string value", self.secret_id))
        })
    }
}

#[async_trait]
impl KeySource for SecretKeys {
    async fn load(&self) -> Result<KeyRing, KeyError> {
        KeyRing::from_secret(&self.read().await?)
    }
}
