//! The join challenge as an operator sets it, and how hard it is: a proof of work a joining
//! page solves (in a worker, in about a second on a phone at the default difficulty) and a
//! script joining in a loop pays for every place.

use serde::{Deserialize, Serialize};

use super::event::check_count;
use crate::error::Error;

/// When joins need a solved challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeMode {
    /// Never (the AWS solution's clients join as they always did).
    #[default]
    Off,
    /// Every join.
    On,
    /// Joins while the event's join pressure is past its threshold, and joins from an address
    /// that joined many times lately.
    Adaptive,
}

/// Leading zero bits of a solution's SHA-256 at the default difficulty: 262,144 tries on
/// average, a quarter of a second in a laptop's browser (about a million a second), about a
/// second on a phone.
pub const DEFAULT_DIFFICULTY: u8 = 18;
/// Hardest base difficulty an operator may set, and the cap of the raised one: beyond it a
/// phone would work for hours.
pub const MAX_DIFFICULTY: u8 = 28;
/// Most bits join pressure adds (each doubling of the joins past the threshold adds one).
const MAX_PRESSURE_BITS: u8 = 6;
/// Most bits one address's joins add (each doubling past [`ADDRESS_FREE_JOINS`] adds one).
const MAX_ADDRESS_BITS: u8 = 8;
/// Recent joins from one address (see [`ADDRESS_FADE_PER_SEC`]) taken as one household or
/// a shared address's ordinary share, before the address alone raises the challenge.
pub const ADDRESS_FREE_JOINS: f64 = 10.0;
/// How fast an address's join count fades: ten a minute.
pub const ADDRESS_FADE_PER_SEC: f64 = 10.0 / 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeSettings {
    #[serde(default)]
    pub mode: ChallengeMode,
    /// Leading zero bits asked for when nothing raises it.
    #[serde(default = "default_difficulty")]
    pub difficulty: u8,
    /// Joins per second (as one process of the room sees them) past which the adaptive mode
    /// asks for a challenge and every mode makes it harder.
    #[serde(default = "default_pressure")]
    pub pressure_joins_per_sec: u64,
}

fn default_difficulty() -> u8 {
    DEFAULT_DIFFICULTY
}

fn default_pressure() -> u64 {
    50
}

impl Default for ChallengeSettings {
    fn default() -> Self {
        Self {
            mode: ChallengeMode::Off,
            difficulty: DEFAULT_DIFFICULTY,
            pressure_joins_per_sec: default_pressure(),
        }
    }
}

/// One bit per doubling of `value` past `base`, at most `cap`.
fn doublings(value: f64, base: f64, cap: u8) -> u8 {
    if value <= base || base <= 0.0 {
        return 0;
    }
    ((value / base).log2().floor() as u8)
        .saturating_add(1)
        .min(cap)
}

impl ChallengeSettings {
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_DIFFICULTY).contains(&self.difficulty) {
            return Err(Error::Invalid(format!(
                "challenge.difficulty must be between 1 and {MAX_DIFFICULTY}"
            )));
        }
        check_count(
            "challenge.pressure_joins_per_sec",
            self.pressure_joins_per_sec,
            1,
        )
    }

    /// Whether a join needs a solved challenge, given the event's joins per second and the
    /// joining address's recent joins.
    pub fn required(&self, pressure: f64, address_joins: f64) -> bool {
        match self.mode {
            ChallengeMode::Off => false,
            ChallengeMode::On => true,
            ChallengeMode::Adaptive => {
                pressure > self.pressure_joins_per_sec as f64 || address_joins > ADDRESS_FREE_JOINS
            }
        }
    }

    /// Leading zero bits to ask for: the base, raised with the join pressure and with the
    /// address's recent joins.
    pub fn difficulty(&self, pressure: f64, address_joins: f64) -> u8 {
        let raised = self.difficulty
            + doublings(
                pressure,
                self.pressure_joins_per_sec as f64,
                MAX_PRESSURE_BITS,
            )
            + doublings(address_joins, ADDRESS_FREE_JOINS, MAX_ADDRESS_BITS);
        raised.min(MAX_DIFFICULTY)
    }
}

/// Challenges of an event as one process counted them (the control panel shows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ChallengeCounts {
    pub issued: u64,
    pub solved: u64,
    pub refused: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modes_ask_for_a_challenge_when_they_say() {
        let mut settings = ChallengeSettings::default();
        assert!(!settings.required(1e6, 1e6));
        settings.mode = ChallengeMode::On;
        assert!(settings.required(0.0, 0.0));
        settings.mode = ChallengeMode::Adaptive;
        assert!(!settings.required(50.0, 10.0));
        assert!(settings.required(51.0, 0.0), "pressure past the threshold");
        assert!(settings.required(0.0, 11.0), "one address joining a lot");
    }

    #[test]
    fn difficulty_rises_with_pressure_and_with_one_address_and_stays_capped() {
        let settings = ChallengeSettings::default();
        assert_eq!(settings.difficulty(0.0, 0.0), 18);
        assert_eq!(settings.difficulty(100.0, 0.0), 20);
        assert_eq!(settings.difficulty(0.0, 20.0), 20);
        assert_eq!(settings.difficulty(0.0, 1e9), 26);
        assert_eq!(settings.difficulty(1e9, 1e9), MAX_DIFFICULTY);
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let mut settings = ChallengeSettings {
            difficulty: 0,
            ..Default::default()
        };
        assert!(settings.validate().is_err());
        settings.difficulty = MAX_DIFFICULTY + 1;
        assert!(settings.validate().is_err());
        settings.difficulty = 12;
        settings.pressure_joins_per_sec = 0;
        assert!(settings.validate().is_err());
    }
}
