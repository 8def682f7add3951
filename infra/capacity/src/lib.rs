//! Figures for operators: how many store calls and DynamoDB capacity units a visitor costs,
//! measured on the wire ([`flow`], [`measured`]), and what an event of a given size does to
//! each AWS service, its limits and the bill, and what an idle month costs ([`model`], [`aws`],
//! [`idle`], [`template`], [`chart`]).

pub mod aws;
pub mod chart;
pub mod flow;
pub mod idle;
pub mod measured;
pub mod model;
pub mod quotas;
pub mod simulate;
pub mod template;
