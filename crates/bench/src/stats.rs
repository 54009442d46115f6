//! Latency samples and error counts per step, merged across virtual users.
use std::collections::BTreeMap;

use serde::Serialize;

/// The steps reported, in order. `login` and `consent` are the form posts inside `authorize`
/// (their time is part of `authorize` too); `flow` is the whole flow.
pub const STEPS: [&str; 7] = [
    "authorize",
    "login",
    "consent",
    "token",
    "refresh",
    "introspect",
    "flow",
];

#[derive(Default, Debug)]
pub struct StepSamples {
    /// Latencies in microseconds.
    pub micros: Vec<u32>,
    pub errors: u64,
    /// A few error messages with how often each was seen.
    pub messages: BTreeMap<String, u64>,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub steps: BTreeMap<&'static str, StepSamples>,
    pub flows: u64,
    pub requests: u64,
}

impl Stats {
    pub fn sample(&mut self, step: &'static str, micros: u64) {
        self.steps
            .entry(step)
            .or_default()
            .micros
            .push(micros.min(u32::MAX as u64) as u32);
    }

    pub fn error(&mut self, step: &'static str, message: String) {
        let s = self.steps.entry(step).or_default();
        s.errors += 1;
        if s.messages.len() < 8 || s.messages.contains_key(&message) {
            *s.messages.entry(message).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Stats) {
        self.flows += other.flows;
        self.requests += other.requests;
        for (k, v) in other.steps {
            let s = self.steps.entry(k).or_default();
            s.micros.extend(v.micros);
            s.errors += v.errors;
            for (m, n) in v.messages {
                if s.messages.len() < 8 || s.messages.contains_key(&m) {
                    *s.messages.entry(m).or_default() += n;
                }
            }
        }
    }
}

/// Latencies of one step, in milliseconds.
#[derive(Debug, Serialize, Clone)]
pub struct Summary {
    pub n: usize,
    pub errors: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_messages: BTreeMap<String, u64>,
}

pub fn summarize(s: &mut StepSamples) -> Summary {
    s.micros.sort_unstable();
    let v = &s.micros;
    let ms = |x: u32| x as f64 / 1000.0;
    let pct = |q: f64| {
        if v.is_empty() {
            0.0
        } else {
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            ms(v[rank - 1])
        }
    };
    Summary {
        n: v.len(),
        errors: s.errors,
        mean: if v.is_empty() {
            0.0
        } else {
            v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1000.0
        },
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: v.last().copied().map(ms).unwrap_or(0.0),
        error_messages: s.messages.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut s = StepSamples {
            micros: (1..=100).rev().map(|x| x * 1000).collect(),
            ..Default::default()
        };
        let sum = summarize(&mut s);
        assert_eq!(sum.n, 100);
        assert_eq!(sum.p50, 50.0);
        assert_eq!(sum.p90, 90.0);
        assert_eq!(sum.p99, 99.0);
        assert_eq!(sum.max, 100.0);
        assert!((sum.mean - 50.5).abs() < 1e-9);
    }
}
