//! The crate's allocator: blocks of [`BIG`] bytes or more are mapped from the kernel and
//! returned to it when freed; smaller ones come from the system allocator.
//!
//! Why: training holds a few large buffers (the feature matrix, the library's bins and
//! gradients) for seconds, some of them on the boosting library's threads. glibc serves a
//! block from its heaps once it has raised its mmap threshold (it does so after freeing a
//! mapped block, up to 32 MiB), and keeps freed heap memory in the heap of the thread that
//! used it. A backend then holds tens of MiB it no longer uses until it exits, and a training's
//! peak counts freed buffers on top of live ones (measured: 25–30 MiB of the peak of a gbm fit
//! on 800k rows). Mapping the large blocks ourselves frees them when Rust frees them, and leaves
//! Postgres' own use of malloc as it is (the threshold stays a process-wide setting we do not
//! touch).

use std::alloc::{GlobalAlloc, Layout, System};

/// The smallest block mapped directly. Every mapping starts with fresh pages, whose faults cost
/// time: at 1 MiB the boosting library's per-round buffers of a few MiB were mapped afresh each
/// round, and gbm training on 800k rows took 10–15 % longer than at 4 MiB, whose peak is
/// 5 MiB higher (of 120).
pub const BIG: usize = 1 << 22;

/// Alignment a mapping always has (a page; pages are at least 4 KiB on every platform
/// Postgres runs on).
const MAPPING_ALIGN: usize = 4096;

/// See the module documentation.
pub struct BigBlocks;

fn is_big(layout: Layout) -> bool {
    cfg!(target_os = "linux") && layout.size() >= BIG && layout.align() <= MAPPING_ALIGN
}

#[cfg(target_os = "linux")]
mod mapping {
    /// A fresh zeroed private mapping of `size` bytes, or null.
    pub unsafe fn map(size: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// Unmaps a mapping [`map`] or [`remap`] returned for `size` bytes.
    pub unsafe fn unmap(p: *mut u8, size: usize) {
        // SAFETY: the caller passes a mapping of `size` bytes it owns and no longer uses.
        unsafe { libc::munmap(p.cast(), size) };
    }

    /// The mapping at `p` resized from `old` to `new` bytes (moved if need be, its contents
    /// kept), or null (the old mapping is then untouched).
    pub unsafe fn remap(p: *mut u8, old: usize, new: usize) -> *mut u8 {
        // SAFETY: the caller passes a mapping of `old` bytes it owns.
        let q = unsafe { libc::mremap(p.cast(), old, new, libc::MREMAP_MAYMOVE) };
        if q == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            q.cast()
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod mapping {
    // never called: `is_big` is false off Linux
    pub unsafe fn map(_: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
    pub unsafe fn unmap(_: *mut u8, _: usize) {}
    pub unsafe fn remap(_: *mut u8, _: usize, _: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
}

// SAFETY: a block is big or not by its layout, which the caller passes unchanged to dealloc
// and realloc, so every block is freed by the allocator that made it; mappings are page
// aligned, which satisfies every layout `is_big` accepts, and start zeroed.
unsafe impl GlobalAlloc for BigBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_big(layout) {
            unsafe { mapping::map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_big(layout) {
            unsafe { mapping::map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_big(layout) {
            unsafe { mapping::unmap(ptr, layout.size()) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees new_size, rounded up to the alignment, fits isize
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_big(layout), is_big(new_layout)) {
            (true, true) => unsafe { mapping::remap(ptr, layout.size(), new_size) },
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    let kept = layout.size().min(new_size);
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, kept);
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_small_and_big_keep_their_contents_across_every_resize() {
        let sizes = [8, BIG - 1, BIG, 3 * BIG + 5, 100, 2 * BIG];
        for align in [8, 64, 4096, 8192] {
            let layout = Layout::from_size_align(sizes[0], align).unwrap();
            let mut p = unsafe { BigBlocks.alloc_zeroed(layout) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            let mut size = sizes[0];
            for &next in &sizes[1..] {
                // fill what the block holds, resize, check what was kept
                let kept = size.min(next);
                for i in 0..size {
                    unsafe { *p.add(i) = (i % 251) as u8 };
                }
                let old = Layout::from_size_align(size, align).unwrap();
                p = unsafe { BigBlocks.realloc(p, old, next) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "align {align}, size {next}");
                for i in (0..kept).step_by(997) {
                    assert_eq!(unsafe { *p.add(i) }, (i % 251) as u8);
                }
                size = next;
            }
            unsafe { BigBlocks.dealloc(p, Layout::from_size_align(size, align).unwrap()) };
        }
    }

    #[test]
    fn big_zeroed_blocks_start_zeroed() {
        let layout = Layout::from_size_align(2 * BIG + 3, 16).unwrap();
        let p = unsafe { BigBlocks.alloc_zeroed(layout) };
        assert!(!p.is_null());
        let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
        assert!(bytes.iter().all(|&b| b == 0));
        unsafe { BigBlocks.dealloc(p, layout) };
    }
}
