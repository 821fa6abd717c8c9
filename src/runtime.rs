//! The lean runtime the npm package ships with: `lol_alloc`'s free-list allocator and a panic
//! handler that traps without formatting a message. No panic is expected (the workspace lints
//! forbid unwrap, expect and panic), and leaving out the formatting machinery a message needs
//! keeps kilobytes out of the download.
//!
//! The allocator is a first-fit free list sorted by address that merges neighbours on free:
//! about 4 KB smaller than `dlmalloc` (what `std` uses on wasm), at the price of allocations and
//! frees that walk the free list (linear in the number of free blocks, not constant time).

/// A spin lock around the free list; on single-threaded wasm the lock is never contended.
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
