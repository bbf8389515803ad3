//! Balancing strategies: which of the instances with a free slot takes a request.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::settings::Weights;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Each request to the next instance in turn.
    RoundRobin,
    /// Always the first free instance in start order: work packs onto the fewest
    /// instances, so the others can idle out.
    Fifo,
    /// The instance with the fewest requests in flight.
    LeastLoaded,
    /// The instance with the lowest score of smoothed CPU, memory and IO samples.
    Weighted,
}

impl Strategy {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "round-robin" | "rr" | "round_robin" => Strategy::RoundRobin,
            "fifo" => Strategy::Fifo,
            "least-loaded" | "least_loaded" => Strategy::LeastLoaded,
            "weighted" => Strategy::Weighted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Fifo => "fifo",
            Strategy::LeastLoaded => "least-loaded",
            Strategy::Weighted => "weighted",
        }
    }
}

/// What a strategy sees of one eligible instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub in_flight: usize,
    pub load: Load,
}

/// Smoothed resource samples: CPU in cores, memory as a fraction of the limit, IO in
/// MiB/s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub cpu: f64,
    pub memory: f64,
    pub io: f64,
}

impl Load {
    /// Folds a new sample in: `factor·new + (1 - factor)·old`.
    pub fn smoothed(self, sample: Load, factor: f64) -> Load {
        let mix = |old: f64, new: f64| factor * new + (1.0 - factor) * old;
        Load {
            cpu: mix(self.cpu, sample.cpu),
            memory: mix(self.memory, sample.memory),
            io: mix(self.io, sample.io),
        }
    }
}

/// The weighted strategy's score; lower is better.
pub fn score(load: &Load, weights: &Weights) -> f64 {
    weights.cpu * load.cpu + weights.memory * load.memory + weights.io * load.io
}

/// The index (into `candidates`, which are in start order) of the instance to use.
pub fn pick(
    strategy: Strategy,
    candidates: &[Candidate],
    next: &AtomicUsize,
    weights: &Weights,
) -> Option<usize> {
    if candidates.is_empty() {
        return None;
    }
    Some(match strategy {
        Strategy::RoundRobin => next.fetch_add(1, Ordering::Relaxed) % candidates.len(),
        Strategy::Fifo => 0,
        Strategy::LeastLoaded => (0..candidates.len()).min_by_key(|&i| candidates[i].in_flight)?,
        Strategy::Weighted => (0..candidates.len()).min_by(|&a, &b| {
            let (sa, sb) = (
                score(&candidates[a].load, weights),
                score(&candidates[b].load, weights),
            );
            sa.total_cmp(&sb)
                .then(candidates[a].in_flight.cmp(&candidates[b].in_flight))
        })?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle(n: usize) -> Vec<Candidate> {
        vec![
            Candidate {
                in_flight: 0,
                load: Load::default()
            };
            n
        ]
    }

    #[test]
    fn round_robin_cycles_and_fifo_sticks_to_the_first() {
        let next = AtomicUsize::new(0);
        let w = Weights::default();
        let picks: Vec<_> = (0..6)
            .map(|_| pick(Strategy::RoundRobin, &idle(3), &next, &w).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert!((0..5).all(|_| pick(Strategy::Fifo, &idle(3), &next, &w) == Some(0)));
        assert_eq!(pick(Strategy::Fifo, &[], &next, &w), None);
    }

    #[test]
    fn least_loaded_takes_the_fewest_in_flight() {
        let mut c = idle(3);
        c[0].in_flight = 2;
        c[1].in_flight = 1;
        c[2].in_flight = 3;
        assert_eq!(
            pick(
                Strategy::LeastLoaded,
                &c,
                &AtomicUsize::new(0),
                &Weights::default()
            ),
            Some(1)
        );
    }

    #[test]
    fn the_weighted_score_follows_the_seed_formula() {
        let w = Weights::default();
        let load = Load {
            cpu: 0.8,
            memory: 0.5,
            io: 0.1,
        };
        assert!((score(&load, &w) - (0.5 * 0.8 + 0.3 * 0.5 + 0.2 * 0.1)).abs() < 1e-12);
        // A busy CPU outweighs a fuller memory.
        let mut c = idle(3);
        c[0].load = Load {
            cpu: 0.9,
            memory: 0.1,
            io: 0.0,
        }; // 0.48
        c[1].load = Load {
            cpu: 0.1,
            memory: 0.6,
            io: 0.0,
        }; // 0.23
        c[2].load = Load {
            cpu: 0.3,
            memory: 0.3,
            io: 0.5,
        }; // 0.34
        assert_eq!(
            pick(Strategy::Weighted, &c, &AtomicUsize::new(0), &w),
            Some(1)
        );
        // Equal scores: fewer in flight wins.
        let mut c = idle(2);
        c[0].in_flight = 1;
        assert_eq!(
            pick(Strategy::Weighted, &c, &AtomicUsize::new(0), &w),
            Some(1)
        );
    }

    #[test]
    fn samples_are_smoothed_with_the_ema_factor() {
        let old = Load {
            cpu: 1.0,
            memory: 0.0,
            io: 0.0,
        };
        let new = Load {
            cpu: 0.0,
            memory: 1.0,
            io: 0.5,
        };
        let s = old.smoothed(new, 0.7);
        assert!((s.cpu - 0.3).abs() < 1e-12);
        assert!((s.memory - 0.7).abs() < 1e-12);
        assert!((s.io - 0.35).abs() < 1e-12);
    }
}
