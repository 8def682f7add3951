//! Implementations of the ports. The memory ones run the local server and the fast tests; the
//! DynamoDB and SQS ones run on AWS (or against moto); the durable one keeps the local server's
//! state in a data directory. SDK types stay inside `aws`,
//! `dynamodb` and `sqs`.

pub mod aws;
pub mod buffer;
pub mod clock;
pub mod durable;
pub mod dynamodb;
pub mod instrumented;
pub mod memory;
pub mod pass_keys;
pub mod secrets;
pub mod sqs;

pub use aws::{AwsConfig, AwsSettings};
pub use buffer::MemoryBuffer;
pub use clock::{ManualClock, SystemClock};
pub use durable::{DurableBuffer, DurableStore};
pub use dynamodb::DynamoStore;
pub use instrumented::{Fault, InstrumentedStore};
pub use memory::MemoryStore;
pub use pass_keys::PassKeyStore;
pub use secrets::SecretKeys;
pub use sqs::SqsBuffer;
