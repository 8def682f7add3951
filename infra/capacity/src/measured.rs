//! The per-item costs of the room on DynamoDB, measured on the wire ([`crate::flow`] on a
//! [`waiting_room_core::adapters::DynamoStore`]), as the capacity model reads them: per step of
//! the journey and per item class, the read and write units, the transactions and the calls.
//! `store-calls --dynamodb URL --write FILE` writes it; the model reads the checked-in
//! `measured/dynamodb.json` (compiled in) unless told another file.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use waiting_room_core::adapters::dynamodb::{CallRecord, Outcome, Scope, Touch};

use crate::flow::{FlowCounts, FlowSettings, Step};

/// The checked-in measurement.
pub const CHECKED_IN: &str = include_str!("../measured/dynamodb.json");
/// Where it lives, from the workspace root.
pub const CHECKED_IN_PATH: &str = "infra/capacity/measured/dynamodb.json";

/// What a step's cost on a class is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Per {
    /// Per occurrence of the step (a batch, a pass).
    Occurrence,
    /// Per visitor the step acted on (a batch's visitors, the tokens a pass expired).
    Visitor,
}

/// A class of items as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassLoad {
    pub name: String,
    pub item: Scope,
    pub partition: Scope,
    /// An index's partitions rather than table items.
    pub index: bool,
    pub items: u64,
    pub partitions: u64,
    /// The busiest partition's share of the class's units over the run (1 for one partition,
    /// about 1/n for n stripes).
    pub busiest_partition_share: f64,
}

/// One step's cost on one class, per unit (see [`Per`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassCost {
    pub class: String,
    pub per: Per,
    pub read_units: f64,
    pub write_units: f64,
    /// Of those, the units on single items (the rest are queries of a partition and index
    /// writes), and the most any one item took in one occurrence.
    pub item_read_units: f64,
    pub item_write_units: f64,
    pub busiest_item_write_units: f64,
    /// Transactions writing an item of the class.
    pub transactions: f64,
    /// DynamoDB operations touching the class, per unit.
    pub operations: BTreeMap<String, f64>,
}

/// One step of the journey as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    pub step: Step,
    pub times: u64,
    pub visitors: u64,
    /// DynamoDB calls per occurrence, by operation.
    pub calls: BTreeMap<String, f64>,
    pub classes: Vec<ClassCost>,
}

/// Read and write units of one item, partition or table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub name: String,
    pub read_units: f64,
    pub write_units: f64,
}

/// The per-item table: units per admitted visitor (whole journey) and per look-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub per_admitted: Vec<Load>,
    pub per_poll: Vec<Load>,
}

/// The file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// The command that wrote it.
    pub command: String,
    pub store: String,
    pub settings: FlowSettings,
    pub visitors: u64,
    pub admitted: u64,
    pub polls: u64,
    pub simulated_secs: f64,
    pub summary: Summary,
    pub classes: Vec<ClassLoad>,
    pub steps: Vec<StepCost>,
}

fn is_index(touch: &Touch) -> bool {
    touch.class.name.starts_with("index:")
}

fn charged(record: &CallRecord) -> bool {
    record.outcome != Outcome::Failed
}

impl Measured {
    /// The checked-in measurement.
    pub fn checked_in() -> Result<Self, String> {
        serde_json::from_str(CHECKED_IN).map_err(|e| format!("{CHECKED_IN_PATH}: {e}"))
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Builds the file from a run on DynamoDB.
    pub fn from_run(counts: &FlowCounts, settings: &FlowSettings, command: String) -> Self {
        let all: Vec<(Step, &CallRecord)> = counts
            .wire
            .iter()
            .flat_map(|(step, records)| records.iter().map(move |r| (*step, r)))
            .filter(|(_, r)| charged(r))
            .collect();

        // Classes: their items, partitions and how the load spreads over them.
        // Per class: what it is, its units per partition, and the items seen.
        type Seen = (ClassLoad, BTreeMap<String, f64>, BTreeSet<String>);
        let mut classes: BTreeMap<&str, Seen> = BTreeMap::new();
        for (_, record) in &all {
            for touch in &record.touches {
                let entry = classes.entry(touch.class.name).or_insert_with(|| {
                    (
                        ClassLoad {
                            name: touch.class.name.to_owned(),
                            item: touch.class.item,
                            partition: touch.class.partition,
                            index: is_index(touch),
                            items: 0,
                            partitions: 0,
                            busiest_partition_share: 0.0,
                        },
                        BTreeMap::new(),
                        BTreeSet::new(),
                    )
                });
                *entry.1.entry(touch.partition.clone()).or_default() +=
                    touch.read_units + touch.write_units;
                if let Some(item) = &touch.item {
                    entry.2.insert(item.clone());
                }
            }
        }
        let classes: Vec<ClassLoad> = classes
            .into_values()
            .map(|(mut class, partitions, items)| {
                let total: f64 = partitions.values().sum();
                let busiest = partitions.values().copied().fold(0.0, f64::max);
                class.partitions = partitions.len() as u64;
                class.items = items.len() as u64;
                class.busiest_partition_share = if total > 0.0 { busiest / total } else { 1.0 };
                class
            })
            .collect();
        let scope_of = |name: &str| {
            classes
                .iter()
                .find(|c| c.name == name)
                .map_or(Scope::One, |c| c.item)
        };

        let mut steps = Vec::new();
        for step in Step::ALL {
            let times = counts.times(step);
            if times == 0 {
                continue;
            }
            let visitors = counts.visitors_of(step);
            let records: Vec<&CallRecord> = counts
                .wire
                .get(&step)
                .map(|r| r.iter().collect())
                .unwrap_or_default();
            let mut calls: BTreeMap<String, f64> = BTreeMap::new();
            for record in &records {
                *calls.entry(record.operation.clone()).or_default() += 1.0 / times as f64;
            }
            let mut by_class: BTreeMap<(&str, bool), ClassCost> = BTreeMap::new();
            for record in records.iter().filter(|r| charged(r)) {
                let mut seen_in_call: BTreeSet<(&str, bool)> = BTreeSet::new();
                for touch in &record.touches {
                    let name = touch.class.name;
                    // Per-visitor items, and the index entries their writes change, scale
                    // with the visitors a step acts on; everything else with the step.
                    let per_visitor = scope_of(name) == Scope::PerVisitor
                        || (is_index(touch) && touch.write_units > 0.0);
                    let per = if per_visitor && step.acts_on_visitors() && visitors > 0 {
                        Per::Visitor
                    } else {
                        Per::Occurrence
                    };
                    let slot = (name, per == Per::Visitor);
                    let cost = by_class.entry(slot).or_insert_with(|| ClassCost {
                        class: name.to_owned(),
                        per,
                        read_units: 0.0,
                        write_units: 0.0,
                        item_read_units: 0.0,
                        item_write_units: 0.0,
                        busiest_item_write_units: 0.0,
                        transactions: 0.0,
                        operations: BTreeMap::new(),
                    });
                    cost.read_units += touch.read_units;
                    cost.write_units += touch.write_units;
                    if touch.item.is_some() {
                        cost.item_read_units += touch.read_units;
                        cost.item_write_units += touch.write_units;
                        cost.busiest_item_write_units =
                            cost.busiest_item_write_units.max(touch.write_units);
                    }
                    if seen_in_call.insert(slot) {
                        *cost.operations.entry(record.operation.clone()).or_default() += 1.0;
                        if record.is_transaction() && touch.item.is_some() {
                            cost.transactions += 1.0;
                        }
                    }
                }
            }
            let classes = by_class
                .into_values()
                .map(|mut cost| {
                    let units = match cost.per {
                        Per::Occurrence => times,
                        Per::Visitor => visitors,
                    } as f64;
                    for value in [
                        &mut cost.read_units,
                        &mut cost.write_units,
                        &mut cost.item_read_units,
                        &mut cost.item_write_units,
                        &mut cost.transactions,
                    ] {
                        *value /= units;
                    }
                    for value in cost.operations.values_mut() {
                        *value /= units;
                    }
                    cost
                })
                .collect();
            steps.push(StepCost {
                step,
                times,
                visitors,
                calls,
                classes,
            });
        }

        let polls = counts.times(Step::Poll)
            + counts.times(Step::ServedPoll)
            + counts.times(Step::UnplacedPoll);
        let poll_records: Vec<(Step, &CallRecord)> = all
            .iter()
            .filter(|(step, _)| matches!(step, Step::Poll | Step::ServedPoll | Step::UnplacedPoll))
            .copied()
            .collect();
        Measured {
            command,
            store: "DynamoDB wire protocol (moto); units computed from item sizes".into(),
            settings: settings.clone(),
            visitors: counts.visitors,
            admitted: counts.admitted,
            polls,
            simulated_secs: counts.simulated_secs,
            summary: Summary {
                per_admitted: loads(&all, counts.admitted),
                per_poll: loads(&poll_records, polls),
            },
            classes,
            steps,
        }
    }

    pub fn step(&self, step: Step) -> Option<&StepCost> {
        self.steps.iter().find(|s| s.step == step)
    }

    pub fn class(&self, name: &str) -> Option<&ClassLoad> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Every (step, operation, class) the measurement prices.
    pub fn priced(&self) -> BTreeSet<(Step, String, String)> {
        self.steps
            .iter()
            .flat_map(|step| {
                step.classes.iter().flat_map(move |cost| {
                    cost.operations
                        .keys()
                        .map(move |op| (step.step, op.clone(), cost.class.clone()))
                })
            })
            .collect()
    }

    /// The per-item table, as `store-calls` prints it.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (title, loads) in [
            (
                "per admitted visitor, whole journey",
                &self.summary.per_admitted,
            ),
            (
                "per look-up (GET /status, placed or not)",
                &self.summary.per_poll,
            ),
        ] {
            out.push_str(&format!("{title:<72} {:>9} {:>9}\n", "RCU", "WCU"));
            for load in loads {
                out.push_str(&format!(
                    "  {:<70} {:>9.3} {:>9.3}\n",
                    load.name, load.read_units, load.write_units
                ));
            }
        }
        out.push_str(&format!(
            "({} admitted visitors, {} look-ups; strongly consistent RCU per 4 KB, WCU per 1 KB, transactions twice, one index write per entry added or removed)\n",
            self.admitted, self.polls
        ));
        out
    }
}

/// The busiest item, the busiest table partition, every index partition and the table's
/// total, in units per `per`. The busiest is the one closest to its own limit (3,000 reads/s,
/// 1,000 writes/s).
fn loads(records: &[(Step, &CallRecord)], per: u64) -> Vec<Load> {
    let per = per.max(1) as f64;
    let mut items: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut partitions: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut index_partitions: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let mut table = (0.0, 0.0);
    for (_, record) in records {
        for touch in &record.touches {
            let add = |slot: &mut (f64, f64)| {
                slot.0 += touch.read_units;
                slot.1 += touch.write_units;
            };
            if is_index(touch) {
                add(index_partitions
                    .entry((touch.class.name.to_owned(), touch.partition.clone()))
                    .or_default());
                continue;
            }
            add(&mut table);
            add(partitions
                .entry(format!("{} {}", touch.class.name, touch.partition))
                .or_default());
            if let Some(item) = &touch.item {
                add(items
                    .entry(format!("{} {item}", touch.class.name))
                    .or_default());
            }
        }
    }
    let weight = |(r, w): &(f64, f64)| r / 3_000.0 + w / 1_000.0;
    let busiest = |map: &BTreeMap<String, (f64, f64)>| {
        map.iter()
            .max_by(|a, b| weight(a.1).total_cmp(&weight(b.1)))
            .map(|(name, units)| (name.clone(), *units))
    };
    let mut out = Vec::new();
    let mut push = |name: String, (r, w): (f64, f64)| {
        out.push(Load {
            name,
            read_units: r / per,
            write_units: w / per,
        });
    };
    if let Some((name, units)) = busiest(&items) {
        push(format!("busiest item: {name}"), units);
    }
    if let Some((name, units)) = busiest(&partitions) {
        push(format!("busiest partition: {name}"), units);
    }
    for ((index, partition), units) in index_partitions {
        push(format!("{index} partition {partition}"), units);
    }
    push("table total (without indexes)".into(), table);
    out
}

#[cfg(test)]
mod tests {
    use waiting_room_core::adapters::{AwsConfig, DynamoStore};

    use super::*;
    use crate::flow::{Backend, count_store_calls};

    #[test]
    fn the_checked_in_measurement_covers_every_step_of_the_journey() {
        let measured = Measured::checked_in().unwrap();
        for step in Step::ALL {
            assert!(
                measured.step(step).is_some(),
                "{CHECKED_IN_PATH} has no {step:?}"
            );
        }
        assert!(measured.command.contains("infra/capacity/measure.sh"));
        // A claim writes the visitor's own item and, today, the shared ones it names.
        let token = measured.step(Step::Token).unwrap();
        assert!(
            token
                .classes
                .iter()
                .any(|c| c.class == "request" && c.per == Per::Visitor)
        );
    }

    /// The model prices what the measurement saw; when the store starts making a call the
    /// measurement does not have (a new operation, a new kind of item, a new step), this fails
    /// until `bash infra/capacity/measure.sh` is run again. Needs moto (`WR_TEST_AWS_ENDPOINT`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_call_the_store_makes_has_a_measured_cost() {
        let Some(endpoint) =
            waiting_room_core::adapters::aws::test_endpoint("capacity measurement")
        else {
            return;
        };
        let table = format!("wr-capacity-{}", std::process::id());
        let store = DynamoStore::new(&AwsConfig::local(&endpoint), table);
        store.create_table().await.expect("moto reachable");
        let settings = FlowSettings {
            visitors: 40,
            arrivals_per_sec: 20,
            ..FlowSettings::default()
        };
        let counts = count_store_calls(&settings, Backend::DynamoDb(store.clone())).await;
        store.delete_table().await.unwrap();
        let fresh = Measured::from_run(&counts, &settings, "test".into());
        let checked_in = Measured::checked_in().unwrap();
        let missing: Vec<_> = fresh
            .priced()
            .difference(&checked_in.priced())
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "calls with no measured cost (run bash infra/capacity/measure.sh): {missing:?}"
        );
        for class in &fresh.classes {
            let known = checked_in
                .class(&class.name)
                .expect("a class the model knows");
            assert_eq!((known.item, known.partition), (class.item, class.partition));
        }
    }
}
