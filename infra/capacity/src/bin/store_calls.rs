//! Store calls per admitted visitor: visitors go through enqueue → position → polls of
//! `/status` → token, counted by `InstrumentedStore` on the memory store, or on DynamoDB (moto
//! or AWS) where every DynamoDB call is also counted on the wire.
//!
//! `cargo run --release -p waiting-room-capacity --bin store-calls [-- VISITORS]`
//! `cargo run --release -p waiting-room-capacity --bin store-calls -- 600 --arrivals-per-sec 100 --dynamodb http://127.0.0.1:4566`
//!
//! moto copies the whole table for every transaction, so its memory and time grow with the
//! table: runs on moto stay at a few hundred visitors (2,000 exhausted 24 GiB).

use clap::Parser;
use waiting_room_capacity::flow::{Backend, FlowCounts, FlowSettings, Step, is_write};
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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let settings = FlowSettings {
        visitors: args.visitors,
        arrivals_per_sec: args.arrivals_per_sec.max(1),
        ..FlowSettings::default()
    };
    let dynamo = args.dynamodb.as_deref().map(|endpoint| {
        let table = format!("store-calls-{}", std::process::id());
        DynamoStore::new(&AwsConfig::local(endpoint), table)
    });
    let backend = match &dynamo {
        Some(store) => {
            store.create_table().await.expect("create the table");
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
        "polls per admitted visitor         {:.4}",
        counts.polls_per_admitted()
    );
    println!(
        "store reads per poll               {:.4}",
        counts.reads_per_poll()
    );
    if let Some(store) = dynamo {
        println!();
        println!("DynamoDB calls on the wire, per occurrence of the step:");
        table(&counts, &counts.wire_operations(), |step, op| {
            counts.wire_per(step, op)
        });
        let batches = counts.times(Step::Batch);
        let moves = counts
            .queue_counter_moves
            .get(&Step::Batch)
            .copied()
            .unwrap_or(0);
        println!();
        println!("queue counter updates            {moves} in {batches} consumer batches");
        println!(
            "DynamoDB writes per admitted     {:.4}",
            counts.wire_writes_per_admitted()
        );
        println!(
            "DynamoDB calls per admitted      {:.4}",
            counts.wire_calls_per_admitted()
        );
        store.delete_table().await.expect("delete the table");
    }
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
