//! The CloudFront KeyValueStore the gate on CloudFront reads its pass keys from (see
//! [`crate::gate::edge`]): read whole, then changed in one all-or-nothing `UpdateKeys`, and only
//! when it differs from what it should hold (the store's API is billed per call).

use std::collections::BTreeMap;

use aws_sdk_cloudfrontkeyvaluestore::Client;
use aws_sdk_cloudfrontkeyvaluestore::error::DisplayErrorContext;
use aws_sdk_cloudfrontkeyvaluestore::types::{DeleteKeyRequestListItem, PutKeyRequestListItem};
use serde::Serialize;

use super::aws::AwsConfig;
use crate::gate::edge::STORE_KEY_PREFIX;

/// The store could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("pass key store: {0}")]
pub struct PassKeyStoreError(String);

fn failed(error: impl std::error::Error) -> PassKeyStoreError {
    PassKeyStoreError(DisplayErrorContext(&error).to_string())
}

/// What a sync changed, by store key (never the keys themselves).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct KeyChanges {
    pub put: Vec<String>,
    pub deleted: Vec<String>,
}

impl KeyChanges {
    /// What turns `held` into `wanted`: pass keys missing or different are put, pass keys no
    /// longer wanted deleted; entries that are not pass keys are left alone.
    pub fn between(held: &BTreeMap<String, String>, wanted: &BTreeMap<String, String>) -> Self {
        Self {
            put: wanted
                .iter()
                .filter(|(key, value)| held.get(*key) != Some(value))
                .map(|(key, _)| key.clone())
                .collect(),
            deleted: held
                .keys()
                .filter(|key| key.starts_with(STORE_KEY_PREFIX) && !wanted.contains_key(*key))
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.put.is_empty() && self.deleted.is_empty()
    }
}

/// One KeyValueStore, by ARN.
pub struct PassKeyStore {
    client: Client,
    arn: String,
}

impl PassKeyStore {
    pub fn new(aws: &AwsConfig, arn: impl Into<String>) -> Self {
        Self {
            client: Client::new(aws.sdk()),
            arn: arn.into(),
        }
    }

    async fn held(&self) -> Result<BTreeMap<String, String>, PassKeyStoreError> {
        let mut held = BTreeMap::new();
        let mut pages = self
            .client
            .list_keys()
            .kvs_arn(&self.arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(failed)?;
            for item in page.items() {
                held.insert(item.key().to_owned(), item.value().to_owned());
            }
        }
        Ok(held)
    }

    /// Makes the store hold `wanted` (as [`KeyChanges::between`] says), in one update guarded
    /// by the store's version, so two runs never interleave.
    pub async fn sync(
        &self,
        wanted: &BTreeMap<String, String>,
    ) -> Result<KeyChanges, PassKeyStoreError> {
        let changes = KeyChanges::between(&self.held().await?, wanted);
        if changes.is_empty() {
            return Ok(changes);
        }
        let version = self
            .client
            .describe_key_value_store()
            .kvs_arn(&self.arn)
            .send()
            .await
            .map_err(failed)?;
        let puts = changes
            .put
            .iter()
            .map(|key| {
                PutKeyRequestListItem::builder()
                    .key(key)
                    .value(&wanted[key])
                    .build()
                    .map_err(failed)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let deletes = changes
            .deleted
            .iter()
            .map(|key| {
                DeleteKeyRequestListItem::builder()
                    .key(key)
                    .build()
                    .map_err(failed)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .update_keys()
            .kvs_arn(&self.arn)
            .if_match(version.e_tag())
            .set_puts(Some(puts))
            .set_deletes(Some(deletes))
            .send()
            .await
            .map_err(failed)?;
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_sync_puts_new_and_changed_keys_drops_old_ones_and_leaves_other_entries() {
        let held = map(&[
            ("pass_key_1-aa", "one"),
            ("pass_key_2-aa", "two"),
            ("pass_key_3-aa", "stale"),
            ("operator_note", "kept"),
        ]);
        let wanted = map(&[
            ("pass_key_2-aa", "two"),
            ("pass_key_3-aa", "three"),
            ("pass_key_4-aa", "four"),
        ]);
        let changes = KeyChanges::between(&held, &wanted);
        assert_eq!(changes.put, ["pass_key_3-aa", "pass_key_4-aa"]);
        assert_eq!(changes.deleted, ["pass_key_1-aa"]);
        assert!(KeyChanges::between(&wanted, &wanted).is_empty());
    }
}
