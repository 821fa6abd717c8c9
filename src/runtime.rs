//! The lean runtime the npm package ships with: `dlmalloc` as the allocator (what `std` would use
//! on wasm too) and a panic handler that traps without formatting a message. No panic is expected
//! (the workspace lints forbid unwrap, expect and panic), and leaving out the formatting
//! machinery a message needs keeps kilobytes out of the download.

#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
