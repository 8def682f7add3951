//! Figures for operators: how many store calls a visitor costs ([`flow`]), and what an event of
//! a given size does to each AWS service and to the bill ([`model`], [`aws`], [`chart`]).

pub mod aws;
pub mod chart;
pub mod flow;
pub mod model;
pub mod simulate;
