//! Implementations of the ports. The memory ones run the local server and the fast tests.

pub mod buffer;
pub mod clock;
pub mod instrumented;
pub mod memory;

pub use buffer::MemoryBuffer;
pub use clock::{ManualClock, SystemClock};
pub use instrumented::InstrumentedStore;
pub use memory::MemoryStore;
