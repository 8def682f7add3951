//! The admin audit trail: one item per entry under the event's audit partition, sorted by
//! time, read newest first. Entries are kept a year.

use super::DynamoStore;
use super::codec::AuditAttributes;
use super::schema::{
    AUDIT_RETENTION_SECS, PK, SK, TTL, audit_partition, counter_sort_key, item, string, ttl_after,
};
use super::table::{Put, Query};
use crate::domain::EventId;
use crate::ports::{AuditEntry, StoreError};

fn audit_entry(entry: &AuditEntry) -> Put {
    let mut entry_item = AuditAttributes::from(entry).0;
    entry_item.extend(item([
        (PK, string(audit_partition(&entry.event_id))),
        (
            SK,
            string(format!(
                "{}#{}",
                counter_sort_key(entry.at_ms.max(0) as u64),
                uuid::Uuid::new_v4()
            )),
        ),
        (TTL, ttl_after(entry.at_ms, AUDIT_RETENTION_SECS)),
    ]));
    Put {
        item: entry_item,
        condition: None,
        values: Default::default(),
    }
}

fn newest_first(event_id: &EventId, limit: usize) -> Query {
    Query {
        forward: false,
        limit: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
        ..Query::new(
            "pk = :pk",
            item([(":pk", string(audit_partition(event_id)))]),
        )
    }
}

impl DynamoStore {
    pub(super) async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.table.put(audit_entry(entry)).await?;
        Ok(())
    }

    pub(super) async fn audit_newest_first(
        &self,
        event_id: &EventId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut taken = 0;
        let found = self
            .table
            .query_while(&newest_first(event_id, limit), |_| {
                taken += 1;
                taken <= limit
            })
            .await?;
        found.iter().map(AuditEntry::try_from).collect()
    }
}
