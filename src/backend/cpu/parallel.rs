//! Data-parallel loops on the rayon pool, sized so small ops do not pay for scheduling.
use rayon::prelude::*;

/// Elements of work below which a rayon task is not worth splitting further.
const MIN_TASK_WORK: usize = 1 << 14;

fn min_items(work_per_item: usize) -> usize {
    (MIN_TASK_WORK / work_per_item.max(1)).max(1)
}

/// Runs `f(&mut scratch, i)` for every `i < count` in parallel; `work_per_item` is about how
/// many elements one item touches. `init` makes one scratch value per task.
pub(super) fn for_each_index<S>(count: usize, work_per_item: usize, init: impl Fn() -> S + Send + Sync, f: impl Fn(&mut S, usize) + Send + Sync) {
    (0..count).into_par_iter().with_min_len(min_items(work_per_item)).for_each_init(init, f);
}
