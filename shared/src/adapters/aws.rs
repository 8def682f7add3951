//! How the AWS adapters reach AWS: resource names from configuration, credentials and region
//! from the environment (Lambda) or fixed dummies (moto, tests). Nothing outside the adapters
//! sees an SDK type: [`AwsConfig`] is opaque.

use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

/// Where the waiting room's AWS resources are. Parsed once at cold start; a missing variable
/// fails initialisation loudly instead of failing the first visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The DynamoDB table holding events, requests, serving moves and the audit trail.
    pub table: String,
    /// The SQS queue enqueue writes to and the consumer drains.
    pub queue_url: String,
}

impl AwsSettings {
    pub const TABLE_VAR: &'static str = "WR_TABLE";
    pub const QUEUE_URL_VAR: &'static str = "WR_QUEUE_URL";

    /// Reads `WR_TABLE` and `WR_QUEUE_URL`.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("environment variable {name} must be set"))
        };
        Ok(Self {
            table: var(Self::TABLE_VAR)?,
            queue_url: var(Self::QUEUE_URL_VAR)?,
        })
    }
}

/// Connection settings shared by the DynamoDB and SQS clients (cheap to clone).
#[derive(Clone)]
pub struct AwsConfig {
    sdk: Arc<SdkConfig>,
}

impl std::fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.sdk.region())
            .field("endpoint_url", &self.sdk.endpoint_url())
            .finish_non_exhaustive()
    }
}

impl AwsConfig {
    /// The standard AWS chain: region and credentials from the Lambda environment, a profile
    /// or instance metadata; `AWS_ENDPOINT_URL` is honoured.
    pub async fn from_env() -> Self {
        Self {
            sdk: Arc::new(aws_config::load_defaults(BehaviorVersion::latest()).await),
        }
    }

    /// A local emulator (moto) at `endpoint_url`, with dummy credentials and region set here,
    /// so nothing is taken from the environment and nothing real can be reached by mistake.
    pub fn local(endpoint_url: &str) -> Self {
        let credentials = Credentials::new("test", "test", None, None, "waiting-room-local");
        Self {
            sdk: Arc::new(
                SdkConfig::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new("us-east-1"))
                    .endpoint_url(endpoint_url)
                    .credentials_provider(SharedCredentialsProvider::new(credentials))
                    .build(),
            ),
        }
    }

    pub(crate) fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }
}

/// The variable naming the AWS emulator (moto, see `infra/moto.sh`) that tests needing the AWS
/// wire protocol run against.
pub const TEST_ENDPOINT_VAR: &str = "WR_TEST_AWS_ENDPOINT";

/// For tests that need the AWS wire protocol: the emulator's endpoint, or `None` (said on
/// stderr, past the test harness's capture) when none is set on a developer's machine. In CI
/// (`CI=true`) a missing endpoint panics: a suite that needs moto never passes there by
/// skipping.
pub fn test_endpoint(test: &str) -> Option<String> {
    use std::io::Write;
    match endpoint_for_tests(
        std::env::var(TEST_ENDPOINT_VAR).ok(),
        std::env::var("CI").ok(),
    ) {
        Ok(Some(endpoint)) => Some(endpoint),
        Ok(None) => {
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped ({TEST_ENDPOINT_VAR} not set; see infra/moto.sh)"
            );
            None
        }
        Err(message) => panic!("{test}: {message}"),
    }
}

fn endpoint_for_tests(
    endpoint: Option<String>,
    ci: Option<String>,
) -> Result<Option<String>, String> {
    match endpoint.filter(|e| !e.trim().is_empty()) {
        Some(endpoint) => Ok(Some(endpoint)),
        None if ci.as_deref() == Some("true") => Err(format!(
            "CI=true but {TEST_ENDPOINT_VAR} is not set: start moto (infra/moto.sh) and set it"
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint_for_tests;

    #[test]
    fn tests_needing_moto_skip_only_outside_ci() {
        let moto = Some("http://127.0.0.1:4566".to_owned());
        assert_eq!(endpoint_for_tests(moto.clone(), None), Ok(moto.clone()));
        assert_eq!(
            endpoint_for_tests(moto.clone(), Some("true".into())),
            Ok(moto)
        );
        assert_eq!(endpoint_for_tests(None, None), Ok(None));
        assert_eq!(
            endpoint_for_tests(Some(" ".into()), Some("false".into())),
            Ok(None)
        );
        assert!(endpoint_for_tests(None, Some("true".into())).is_err());
        assert!(endpoint_for_tests(Some(String::new()), Some("true".into())).is_err());
    }
}
