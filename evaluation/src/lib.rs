//! Evaluation benchmark of the risk engine (issue 3): a seeded scenario generator of real
//! users and attackers on real address ranges and user agents, and a harness that drives it
//! through `risk-worker replay` and scores the decisions.

pub mod attacks;
pub mod decision;
pub mod feedback;
pub mod generator;
pub mod geoip_files;
pub mod harness;
pub mod labels;
pub mod networks;
pub mod population;
pub mod report;
pub mod sealing;
pub mod stats;
pub mod timeline;
pub mod user_agents;
