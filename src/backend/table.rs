//! The table of buffers every backend keeps: buffers by id (ids handed out in order, never
//! reused) with their sizes, and the lookup of a view's buffer with its bounds checked.
use std::collections::HashMap;

use super::view_checks::{self, Checked};
use super::{BufId, View};

pub struct BufferTable<B> {
    buffers: HashMap<u32, (B, usize)>,
    next_id: u32,
}

impl<B> Default for BufferTable<B> {
    fn default() -> Self {
        BufferTable { buffers: HashMap::new(), next_id: 0 }
    }
}

impl<B> BufferTable<B> {
    /// Adds `buffer` of `bytes` bytes under a new id.
    pub fn insert(&mut self, buffer: B, bytes: usize) -> Checked<BufId> {
        let id = self.next_id;
        self.next_id = id.checked_add(1).ok_or("alloc: all 2^32 buffer ids used")?;
        self.buffers.insert(id, (buffer, bytes));
        Ok(BufId(id))
    }

    /// Removes a buffer; an unknown id is ignored (`Backend::free` cannot fail).
    pub fn remove(&mut self, buf: BufId) {
        self.buffers.remove(&buf.0);
    }

    /// Every buffer with its size in bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&B, usize)> {
        self.buffers.values().map(|(buffer, bytes)| (buffer, *bytes))
    }

    /// The buffer of `view`, after checking that it exists, that the view's offset is aligned
    /// for its dtype, and that all its bytes lie inside the buffer.
    pub fn get(&self, op: &str, field: &str, view: &View) -> Checked<&B> {
        let (buffer, bytes) = self.buffers.get(&view.buf.0).ok_or_else(|| view_checks::unknown_buffer(op, field, view))?;
        view_checks::in_buffer(op, field, view, *bytes)?;
        Ok(buffer)
    }
}
