//! Data-parallel micro-batches inside one training step.
//!
//! A step's batch is cut into micro-batches (`--micro-batches`, default 2). Each runs forward
//! and backward on its own fork of the model, and the gradients are summed, each weighted by its
//! micro-batch's share of the loss, so the step's gradient is the whole batch's (up to float
//! summation order). Why forks: burn's autodiff keeps graphs that share nodes under one mutex,
//! so two backwards through the same parameter tensors would run one after the other; a fork
//! has its own leaves (same `ParamId`s, so the gradients map back onto the model).
//!
//! On the CPU backend (burn Flex) the micro-batches run on parallel threads, each in a thread
//! pool of its own (see [`run`]): Flex runs most element-wise ops on one thread, so a single step
//! kept ~1.1 of 2 cores busy. On a GPU, [`run`] runs them in turn (the device is parallel
//! already); the language-model and reward-model steps do not split there at all but run the
//! whole batch in one pass (`stages::lm_train::batch_grads`, `stages::rm::step`). Dropout masks
//! come from `(seed, step, micro-batch, element)` (`model::dropout`) however the batch is laid
//! out, so the result does not depend on the thread schedule and a resumed run still ends
//! bitwise where an uninterrupted one does.

use anyhow::{anyhow, Context, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rayon::ThreadPool;
use std::sync::{Arc, Mutex};

/// True for the CPU backend (also behind autodiff), where micro-batches get their own threads.
pub fn is_cpu(device: &Device) -> bool {
    // device equality ignores autodiff
    *device == Device::flex()
}

/// Runs `f(i)` for every micro-batch `i < n` — on parallel threads on the CPU backend, in turn
/// elsewhere — and returns the results in micro-batch order (the first error, if any).
///
/// On the CPU each micro-batch runs inside a thread pool of its own, with its share of the cores
/// (one each on a 2-core machine for 2 micro-batches). The kernels and burn Flex spread their
/// work over "the" pool they are called from: from a plain thread that is the global pool,
/// whose workers the micro-batches would share, each call then a hand-off to another thread and
/// back (futex waits and wake-ups, measured at ~10% of a step on the tiny model); inside a
/// pool of one thread the same call runs in place. The kernels give the same bits on any thread
/// count, so this changes no result. A `run` inside a micro-batch runs its parts in turn.
pub fn run<T: Send>(
    n: usize,
    device: &Device,
    f: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if n <= 1 || !is_cpu(device) || IN_SHARD.with(|c| c.get()) {
        return (0..n).map(&f).collect();
    }
    let pools = pools(n)?;
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = pools
            .iter()
            .enumerate()
            .map(|(i, pool)| {
                s.spawn(move || {
                    pool.install(|| {
                        let _in_shard = InShard::enter();
                        f(i)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow!("a micro-batch thread panicked"))?
            })
            .collect()
    })
}

thread_local! {
    /// True on a thread running a micro-batch for [`run`].
    static IN_SHARD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as running a micro-batch until dropped (also when `f` unwinds).
struct InShard;

impl InShard {
    fn enter() -> Self {
        IN_SHARD.with(|c| c.set(true));
        InShard
    }
}

impl Drop for InShard {
    fn drop(&mut self) {
        IN_SHARD.with(|c| c.set(false));
    }
}

/// `n` thread pools with an equal share of the global pool's threads (at least one each), made
/// once per share and kept: building a pool starts its threads.
fn pools(n: usize) -> Result<Vec<Arc<ThreadPool>>> {
    static POOLS: Mutex<Vec<(usize, Arc<ThreadPool>)>> = Mutex::new(Vec::new());
    let threads = (rayon::current_num_threads() / n).max(1);
    let mut kept = POOLS
        .lock()
        .map_err(|_| anyhow!("the thread-pool list was poisoned"))?;
    let mut out: Vec<_> = kept
        .iter()
        .filter(|(t, _)| *t == threads)
        .map(|(_, p)| p.clone())
        .take(n)
        .collect();
    while out.len() < n {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("micro-batch-{i}"))
            .build()
            .context("starting the threads of a micro-batch")?;
        let pool = Arc::new(pool);
        kept.push((threads, pool.clone()));
        out.push(pool);
    }
    Ok(out)
}

/// Cuts `0..len` into at most `n` contiguous ranges ([`ranges`]), runs `f(i, range_i)` on each
/// as [`run`] does, and concatenates the results in order: inference over a list in parallel
/// pieces.
pub fn concat_ranges<T: Send>(
    len: usize,
    n: usize,
    device: &Device,
    f: impl Fn(usize, std::ops::Range<usize>) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let rs = ranges(len, n);
    Ok(run(rs.len(), device, |i| f(i, rs[i].clone()))?
        .into_iter()
        .flatten()
        .collect())
}

/// Cuts `0..len` into at most `n` contiguous ranges of near-equal size (none empty).
pub fn ranges(len: usize, n: usize) -> Vec<std::ops::Range<usize>> {
    let n = n.clamp(1, len.max(1));
    (0..n)
        .map(|i| (i * len / n)..((i + 1) * len / n))
        .filter(|r| !r.is_empty())
        .collect()
}

struct Combine<'a> {
    parts: &'a mut [(GradientsParams, f64)],
    out: GradientsParams,
}

impl ModuleVisitor for Combine<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let mut acc: Option<Tensor<D>> = None;
        for (g, w) in self.parts.iter_mut() {
            if let Some(t) = g.remove::<D>(param.id) {
                let t = t.mul_scalar(*w);
                acc = Some(match acc.take() {
                    Some(a) => a + t,
                    None => t,
                });
            }
        }
        if let Some(a) = acc {
            self.out.register::<D>(param.id, a);
        }
    }
}

/// `Σ wᵢ·gᵢ` per parameter of `module` over the micro-batches' gradients `(gᵢ, wᵢ)`.
pub fn combine<M: Module>(module: &M, mut parts: Vec<(GradientsParams, f64)>) -> GradientsParams {
    if parts.len() == 1 && parts[0].1 == 1.0 {
        return parts.remove(0).0;
    }
    let mut c = Combine {
        parts: &mut parts,
        out: GradientsParams::new(),
    };
    module.visit(&mut c);
    c.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(ranges(16, 2), vec![0..8, 8..16]);
        assert_eq!(ranges(5, 2), vec![0..2, 2..5]);
        assert_eq!(ranges(1, 2), vec![0..1]);
        assert_eq!(ranges(7, 3), vec![0..2, 2..4, 4..7]);
        assert_eq!(ranges(0, 2), Vec::<std::ops::Range<usize>>::new());
    }

    #[test]
    fn each_micro_batch_runs_in_a_pool_with_its_share_of_the_threads() {
        let d = Device::flex();
        let share = (rayon::current_num_threads() / 2).max(1);
        let seen = run(2, &d, |_| {
            // a run inside a micro-batch takes its parts in turn, on this thread
            let here = std::thread::current().id();
            let inner = run(2, &d, |_| Ok(std::thread::current().id() == here))?;
            Ok((rayon::current_num_threads(), inner))
        })
        .unwrap();
        assert_eq!(seen, vec![(share, vec![true, true]); 2]);
        assert!(!IN_SHARD.with(|c| c.get()), "the caller is not marked");
    }

    #[test]
    fn run_keeps_order_and_reports_errors() {
        let d = Device::flex();
        let v = run(3, &d, |i| Ok(i * 10)).unwrap();
        assert_eq!(v, vec![0, 10, 20]);
        let e = run(2, &d, |i| if i == 1 { Err(anyhow!("boom")) } else { Ok(i) });
        assert!(e.unwrap_err().to_string().contains("boom"));
    }
}
