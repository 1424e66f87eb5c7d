//! The price of a lease (SPEC §3), in integer micro-USDC.

/// Bytes in the "GB" of `micros_per_gb_day`.
const BYTES_PER_GB: u128 = 1_000_000_000;
/// Seconds in the "day" of `micros_per_gb_day`.
const SECONDS_PER_DAY: u128 = 86_400;

/// Tariff parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tariff {
    /// Price of holding one GB for one day.
    pub micros_per_gb_day: u64,
    /// Floor of every charge.
    pub minimum_charge_micros: u64,
}

impl Default for Tariff {
    fn default() -> Self {
        Self { micros_per_gb_day: 1_000, minimum_charge_micros: 29 }
    }
}

impl Tariff {
    /// `max(minimum, ceil(size × duration × rate / (1e9 × 86400)))`, exact in integers.
    ///
    /// Never overflows: the product is split into whole and remainder parts of the divisor
    /// so that no intermediate exceeds `u128`; a result beyond `u64` saturates.
    pub fn cost_micros(&self, size_bytes: u64, duration_seconds: u64) -> u64 {
        let divisor = BYTES_PER_GB * SECONDS_PER_DAY;
        let rate = u128::from(self.micros_per_gb_day);
        let byte_seconds = u128::from(size_bytes) * u128::from(duration_seconds);
        let (whole, rest) = (byte_seconds / divisor, byte_seconds % divisor);
        // rest < 8.64e13 < 2^47 and rate < 2^64, so rest × rate < 2^111.
        let fractional = (rest * rate).div_ceil(divisor);
        let cost = whole.saturating_mul(rate).saturating_add(fractional);
        u64::try_from(cost).unwrap_or(u64::MAX).max(self.minimum_charge_micros)
    }
}

/// Formats micros as a decimal USDC string (`29` → `"0.000029"`).
pub fn micros_to_usdc(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn one_mib_for_an_hour_costs_the_minimum() {
        assert_eq!(Tariff::default().cost_micros(MIB, 3600), 29);
    }

    #[test]
    fn zero_bytes_cost_the_minimum() {
        assert_eq!(Tariff::default().cost_micros(0, 3600), 29);
    }

    #[test]
    fn exactly_one_gb_day_costs_the_rate() {
        let t = Tariff { micros_per_gb_day: 1000, minimum_charge_micros: 0 };
        assert_eq!(t.cost_micros(1_000_000_000, 86_400), 1000);
    }

    #[test]
    fn any_fraction_of_a_micro_rounds_up() {
        let t = Tariff { micros_per_gb_day: 1000, minimum_charge_micros: 0 };
        // One byte-second more than exactly 1000 micros.
        assert_eq!(t.cost_micros(1_000_000_000 * 86_400 + 1, 1), 1001);
        // 1 byte for 1 second is a tiny fraction of a micro: rounds up to 1.
        assert_eq!(t.cost_micros(1, 1), 1);
        // 86.4 GB-seconds... exactly one micro, no rounding.
        assert_eq!(t.cost_micros(86_400_000, 1000), 1);
        assert_eq!(t.cost_micros(86_400_001, 1000), 2);
    }

    #[test]
    fn the_minimum_applies_just_below_and_not_just_above() {
        let t = Tariff::default();
        // 29 micros = 2.5056e12 byte-seconds exactly; one byte-second more is 30.
        let at_29 = 29 * 86_400_000_000_000u64 / 1000;
        assert_eq!(t.cost_micros(at_29, 1), 29);
        assert_eq!(t.cost_micros(at_29 + 1, 1), 30);
    }

    #[test]
    fn five_gib_for_thirty_days() {
        // 5 GiB × 30 days = 5.36870912 GB × 30 days × 1000 = 161061.2736 → 161062.
        assert_eq!(Tariff::default().cost_micros(5 * GIB, 30 * 86_400), 161_062);
    }

    #[test]
    fn huge_inputs_saturate_without_overflow() {
        let t = Tariff { micros_per_gb_day: u64::MAX, minimum_charge_micros: 29 };
        assert_eq!(t.cost_micros(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(Tariff::default().cost_micros(u64::MAX, u64::MAX), u64::MAX);
        let modest = Tariff::default().cost_micros(u64::MAX, 1);
        assert_eq!(modest, 213_503_983); // ceil((2^64-1) × 1000 / 8.64e13)
    }

    #[test]
    fn usdc_strings_have_six_decimals() {
        assert_eq!(micros_to_usdc(29), "0.000029");
        assert_eq!(micros_to_usdc(1_000_000), "1.000000");
        assert_eq!(micros_to_usdc(12_345_678), "12.345678");
    }
}
