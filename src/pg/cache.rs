//! Backend-local cache of decoded models.
//!
//! Decoding a 100-tree forest takes milliseconds; a query scoring one row per call must not pay
//! that per row, nor per query. Entries are keyed by model id *and* the row's physical version
//! (`xmin`/`ctid`): a version's model bytes never change, but its row is rewritten when `deploy`
//! flips its `deployed` flag or `restrict_model` changes its access list, and any rewrite is
//! decoded afresh rather than trusted. The cache is small and evicts the least recently used
//! model.

use std::cell::RefCell;
use std::rc::Rc;

use crate::engine::codec::ModelArtifact;

const CAPACITY: usize = 32;

struct Entry {
    id: i64,
    row_version: String,
    model: Rc<ModelArtifact>,
}

thread_local! {
    static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

pub fn get(id: i64, row_version: &str) -> Option<Rc<ModelArtifact>> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let pos = cache
            .iter()
            .position(|e| e.id == id && e.row_version == row_version)?;
        // most recently used last
        let entry = cache.remove(pos);
        let model = Rc::clone(&entry.model);
        cache.push(entry);
        Some(model)
    })
}

pub fn put(id: i64, row_version: &str, model: Rc<ModelArtifact>) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.retain(|e| e.id != id);
        if cache.len() >= CAPACITY {
            cache.remove(0);
        }
        cache.push(Entry {
            id,
            row_version: row_version.to_string(),
            model,
        });
    })
}
