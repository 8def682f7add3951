//! Store calls per admitted visitor: visitors go through join → look-ups at the page's pace →
//! admission → token → session end (or expiry), counted by `InstrumentedStore` on the memory
//! store, or on DynamoDB (moto or AWS), where every DynamoDB call is also recorded on the wire
//! with the items it touched and the capacity it took.
//!
//! `cargo run --release -p waiting-room-capacity --bin store-calls [-- VISITORS]    (memory store)`
//! `bash infra/capacity/measure.sh` (the DynamoDB run on moto that writes the model's input)
//!
//! moto copies the whole table for every transaction, so its memory and time grow with the
//! table: runs on moto stay at a few hundred visitors (2,000 exhausted 24 GiB).

use std::path::PathBuf;

use clap::Parser;
use waiting_room_capacity::flow::{Backend, FlowCounts, FlowSettings, Step, is_write};
use waiting_room_capacity::measured::Measured;
use waiting_room_core::adapters::{AwsConfig, DynamoStore};

#[derive(Parser)]
#[command(about = "Store calls per admitted visitor, on the memory store or on DynamoDB")]
struct Args {
    /// Visitors to take through the journey.
    #[arg(default_value_t = 10_000)]
    visitors: u64,
    /// Visitors arriving per second; the consumer takes one batch per second of arrivals.
    #[arg(long, default_value_t = 1_000)]
    arrivals_per_sec: u64,
    /// Run on DynamoDB at this endpoint (moto: http://127.0.0.1:4566, dummy credentials) in a
    /// table created for the run and deleted after it.
    #[arg(long)]
    dynamodb: Option<String>,
    /// With --dynamodb: write the per-step, per-class costs here (the capacity model's input).
    #[arg(long)]
    write: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Args::parse();
    let settings = FlowSettings {
        visitors: args.visitors,
        arrivals_per_sec: args.arrivals_per_sec.max(1),
        ..FlowSettings::default()
    };
    if args.write.is_some() && args.dynamodb.is_none() {
        return Err("--write needs --dynamodb: the model's costs come from the wire".into());
    }
    let dynamo = args.dynamodb.as_deref().map(|endpoint| {
        let table = format!("store-calls-{}", std::process::id());
        DynamoStore::new(&AwsConfig::local(endpoint), table)
    });
    let backend = match &dynamo {
        Some(store) => {
            store
                .create_table()
                .await
                .map_err(|e| format!("create the table: {e}"))?;
            Backend::DynamoDb(store.clone())
        }
        None => Backend::Memory,
    };
    let started = std::time::Instant::now();
    let counts = waiting_room_capacity::flow::count_store_calls(&settings, backend).await;
    println!(
        "{} visitors arriving at {}/s, strategy {:?} every {} ms; {} admitted with a token after {:.0} simulated s ({:.0} s real, {})",
        counts.visitors,
        settings.arrivals_per_sec,
        settings.strategy,
        settings.runner_every_ms,
        counts.admitted,
        counts.simulated_secs,
        started.elapsed().as_secs_f64(),
        if dynamo.is_some() {
            "DynamoDB"
        } else {
            "memory store"
        },
    );
    println!(
        "one in {} served visitors never claims; one in {} sessions expires, the others end by update_session after {} s",
        settings.abandon_every, settings.expire_every, settings.session_secs
    );
    println!();
    let operations: Vec<String> = counts.operations().iter().map(|o| o.to_string()).collect();
    table(&counts, &operations, |step, op| counts.per(step, op));
    println!("(store calls per occurrence of the step)");
    println!();
    println!(
        "store writes per admitted visitor  {:.4}",
        counts.writes_per_admitted()
    );
    println!(
        "store reads per admitted visitor   {:.4}",
        counts.reads_per_admitted()
    );
    println!(
        "look-ups per admitted visitor      {:.4}",
        counts.polls_per_admitted()
    );
    if let Some(store) = dynamo {
        println!();
        println!("DynamoDB calls on the wire, per occurrence of the step:");
        table(&counts, &counts.wire_operations(), |step, op| {
            counts.wire_per(step, op)
        });
        let command = format!(
            "bash infra/capacity/measure.sh {} (store-calls -- {} --arrivals-per-sec {} --dynamodb MOTO_URL --write {})",
            args.visitors,
            args.visitors,
            args.arrivals_per_sec,
            waiting_room_capacity::measured::CHECKED_IN_PATH
        );
        let measured = Measured::from_run(&counts, &settings, command);
        println!();
        println!("DynamoDB capacity units on the wire:");
        print!("{}", measured.table());
        println!();
        println!("per step and item class (units per occurrence, or per visitor it acted on):");
        for step in &measured.steps {
            for cost in &step.classes {
                println!(
                    "  {:<28} {:<26} per {:<10} RCU {:>8.3}  WCU {:>8.3}  transactions {:>6.3}",
                    step.step.label(),
                    cost.class,
                    format!("{:?}", cost.per).to_lowercase(),
                    cost.read_units,
                    cost.write_units,
                    cost.transactions
                );
            }
        }
        if let Some(path) = &args.write {
            let json = serde_json::to_string_pretty(&measured).map_err(|e| e.to_string())?;
            std::fs::write(path, json + "\n")
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!();
            println!("written to {}", path.display());
        }
        store
            .delete_table()
            .await
            .map_err(|e| format!("delete the table: {e}"))?;
    }
    Ok(())
}

/// One row per step, one column per operation: calls per occurrence of the step.
fn table(counts: &FlowCounts, operations: &[String], per: impl Fn(Step, &str) -> f64) {
    print!("{:<28} {:>8}", "step", "times");
    for operation in operations {
        let mark = if is_write(operation) { "*" } else { "" };
        print!(" {:>19}", format!("{operation}{mark}"));
    }
    println!();
    for step in Step::ALL {
        print!("{:<28} {:>8}", step.label(), counts.times(step));
        for operation in operations {
            let value = per(step, operation);
            if value == 0.0 {
                print!(" {:>19}", "-");
            } else {
                print!(" {value:>19.4}");
            }
        }
        println!();
    }
    println!("(* writes)");
}
