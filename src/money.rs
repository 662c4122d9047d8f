//! Money and token accounting. Money is integer micro-dollars (`i64`); token counts are `u64`.
//! Floats appear only where an operator writes a dollar amount, and are converted once.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One millionth of a US dollar.
pub type Micros = i64;

/// Micro-dollars in one dollar.
pub const MICROS_PER_USD: Micros = 1_000_000;

/// Converts an operator-written dollar amount to micro-dollars, rounding to the nearest micro.
/// Refuses negative, NaN and absurd amounts with a sentence.
pub fn usd_to_micros(usd: f64) -> Result<Micros, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!(
            "{usd} is not a usable dollar amount; give a positive number such as 25 or 0.50"
        ));
    }
    if usd > 1e9 {
        return Err(format!(
            "{usd} dollars is more than ecca accepts (at most 1,000,000,000)"
        ));
    }
    Ok((usd * MICROS_PER_USD as f64).round() as Micros)
}

/// Parses an operator-written dollar amount (`12.50`, `$12.50`, `1,200`, at most six
/// decimals) to micro-dollars exactly, with no float in between.
pub fn parse_usd(text: &str) -> Result<Micros, String> {
    let bad = || {
        format!(
            "{text:?} is not a dollar amount; write it like 12.50 or $12.50 (at most six \
             decimals, not negative)"
        )
    };
    let t = text.trim();
    let t = t.strip_prefix('$').unwrap_or(t).replace(',', "");
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 6
    {
        return Err(bad());
    }
    let whole: Micros = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    if whole > 1_000_000_000 {
        return Err(format!(
            "{text} is more than ecca accepts (at most 1,000,000,000 dollars)"
        ));
    }
    let frac_micros: Micros = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    Ok(whole * MICROS_PER_USD + frac_micros)
}

/// Formats micro-dollars as dollars with all six decimals, e.g. `$0.004215`.
pub fn format_usd(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!(
        "{sign}${}.{:06}",
        abs / MICROS_PER_USD as u64,
        abs % MICROS_PER_USD as u64
    )
}

/// Token counts reported for one model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_write_tokens: u64,
    pub cache_read_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_write_tokens + self.cache_read_tokens
    }
}

/// Prices of one model in micro-dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub input: Micros,
    pub output: Micros,
    pub cache_write: Micros,
    pub cache_read: Micros,
}

impl Price {
    /// Builds a price from dollars per million tokens.
    pub const fn per_mtok_usd(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Self {
        Price {
            input: (input * 1e6) as Micros,
            output: (output * 1e6) as Micros,
            cache_write: (cache_write * 1e6) as Micros,
            cache_read: (cache_read * 1e6) as Micros,
        }
    }

    /// The cost of a call, rounded up to the next micro-dollar so the ledger never under-counts.
    pub fn cost(&self, usage: &Usage) -> Micros {
        // tokens × micros-per-million is exact in i128; one division at the end.
        let pico: i128 = usage.input_tokens as i128 * self.input as i128
            + usage.output_tokens as i128 * self.output as i128
            + usage.cache_write_tokens as i128 * self.cache_write as i128
            + usage.cache_read_tokens as i128 * self.cache_read as i128;
        let micros = (pico + 999_999) / 1_000_000;
        micros.min(i64::MAX as i128) as Micros
    }

    /// The most a call can cost: every prompt token at the dearer of the input and cache-write
    /// prices, and the whole `max_tokens` at the output price.
    pub fn worst_case(&self, prompt_tokens: u64, max_output_tokens: u64) -> Micros {
        let dearest_input = self.input.max(self.cache_write);
        Price {
            input: dearest_input,
            ..*self
        }
        .cost(&Usage {
            input_tokens: prompt_tokens,
            output_tokens: max_output_tokens,
            ..Usage::default()
        })
    }
}

/// A dollar amount for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd(pub Micros);

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_usd(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rounds_up_to_the_micro() {
        let sonnet = Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30);
        let usage = Usage {
            input_tokens: 1,
            ..Usage::default()
        };
        // 1 token at $3/MTok is 3 micro-dollars exactly.
        assert_eq!(sonnet.cost(&usage), 3);
        let usage = Usage {
            cache_read_tokens: 1,
            ..Usage::default()
        };
        // 0.3 micro-dollars rounds up to 1.
        assert_eq!(sonnet.cost(&usage), 1);
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 500,
            cache_write_tokens: 200,
            cache_read_tokens: 10_000,
        };
        assert_eq!(sonnet.cost(&usage), 3_000 + 7_500 + 750 + 3_000);
    }

    #[test]
    fn worst_case_covers_cache_writes() {
        let sonnet = Price::per_mtok_usd(3.0, 15.0, 3.75, 0.30);
        assert_eq!(sonnet.worst_case(1_000, 1_000), 3_750 + 15_000);
    }

    #[test]
    fn dollars_format_with_six_decimals() {
        assert_eq!(format_usd(4_215), "$0.004215");
        assert_eq!(format_usd(12_000_001), "$12.000001");
        assert_eq!(format_usd(-5), "-$0.000005");
        assert_eq!(usd_to_micros(0.5), Ok(500_000));
        assert_eq!(parse_usd("12.50"), Ok(12_500_000));
        assert_eq!(parse_usd("$1,200"), Ok(1_200_000_000));
        assert_eq!(parse_usd("0.000001"), Ok(1));
        assert_eq!(parse_usd(".5"), Ok(500_000));
        assert!(parse_usd("-3").is_err());
        assert!(parse_usd("1.0000001").is_err());
        assert!(parse_usd("12 dollars").unwrap_err().contains("12.50"));
        assert!(parse_usd("").is_err());
        assert!(usd_to_micros(-1.0).is_err());
        assert!(usd_to_micros(f64::NAN).is_err());
    }
}
