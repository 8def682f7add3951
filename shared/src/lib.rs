//! The serverless waiting room: domain, ports, adapters, tokens and HTTP routes. Binaries in
//! `functions/` are thin wrappers around this crate.

pub mod adapters;
pub mod authorizer;
pub mod breaker;
pub mod cache;
pub mod challenge;
pub mod clients;
pub mod domain;
pub mod error;
pub mod gate;
pub mod http;
pub mod i18n;
pub mod lambda;
pub mod listener;
pub mod metrics;
pub mod ports;
pub mod server;
pub mod service;
pub mod token;
pub mod web;

pub use error::Error;
pub use service::WaitingRoom;
