//! Store calls per admitted visitor: 10,000 visitors through enqueue → position → polls of
//! `/status` → token on the memory store, counted by `InstrumentedStore`.
//!
//! `cargo run --release -p waiting-room-capacity --bin store-calls [-- VISITORS]`

use waiting_room_capacity::flow::{FlowSettings, Step, count_store_calls, is_write};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let visitors = match std::env::args().nth(1) {
        Some(raw) => raw.parse().expect("VISITORS must be a whole number"),
        None => 10_000,
    };
    let settings = FlowSettings {
        visitors,
        ..FlowSettings::default()
    };
    let counts = count_store_calls(&settings).await;
    println!(
        "{} visitors arriving at {}/s, strategy {:?} every {} ms; {} admitted with a token after {:.0} simulated s",
        counts.visitors,
        settings.arrivals_per_sec,
        settings.strategy,
        settings.runner_every_ms,
        counts.admitted,
        counts.simulated_secs
    );
    println!();
    let operations = counts.operations();
    print!("{:<28} {:>8}", "step", "times");
    for operation in &operations {
        print!(" {operation:>17}");
    }
    println!();
    for step in Step::ALL {
        print!("{:<28} {:>8}", step.label(), counts.times(step));
        for operation in &operations {
            let per = counts.per(step, operation);
            if per == 0.0 {
                print!(" {:>17}", "-");
            } else {
                print!(" {per:>17.4}");
            }
        }
        println!();
    }
    println!("(store calls per occurrence of the step; writes: {})", {
        let writes: Vec<&str> = operations
            .iter()
            .copied()
            .filter(|op| is_write(op))
            .collect();
        writes.join(", ")
    });
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
}
