//! `workgroupBarrier` for the interpreted invocations: std's `Barrier`, except that an
//! invocation that fails poisons it, so the others stop instead of waiting for it forever.
use std::sync::{Condvar, Mutex};

use super::Fault;

pub(super) struct Barrier {
    parties: usize,
    /// (arrived in this generation, generation, poisoned)
    state: Mutex<(usize, u64, bool)>,
    turned: Condvar,
}

impl Barrier {
    pub fn new(parties: usize) -> Self {
        Barrier { parties, state: Mutex::new((0, 0, false)), turned: Condvar::new() }
    }

    pub fn wait(&self) -> Result<(), Fault> {
        let poisoned = || Fault("another invocation failed".into());
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.2 {
            return Err(poisoned());
        }
        s.0 += 1;
        if s.0 == self.parties {
            s.0 = 0;
            s.1 += 1;
            self.turned.notify_all();
            return Ok(());
        }
        let generation = s.1;
        while s.1 == generation && !s.2 {
            s = self.turned.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.1 == generation {
            return Err(poisoned());
        }
        Ok(())
    }

    /// How many times every invocation has met at the barrier.
    pub fn passed(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1
    }

    pub fn poison(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).2 = true;
        self.turned.notify_all();
    }
}
