//! `berth`: runs `berth template` itself, without the agent's libraries, and
//! hands every other command line to `berth-agent` (berth::front).

use std::ffi::OsString;

// Rendering allocates many small, short-lived values; mimalloc serves those
// markedly faster than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args_os();
    let program = args.next().unwrap_or_else(|| OsString::from("berth"));
    let args: Vec<OsString> = args.collect();
    let code = match berth::front::template_args(&args) {
        Some(template) => match berth::template_cmd::run_template(template) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                1
            }
        },
        None => {
            let error = berth::front::exec_agent(&program, &args);
            eprintln!("error: {error}");
            127
        }
    };
    berth::front::exit_flushed(code)
}

/// musl's x86_64 `memcpy` and `memmove` start every copy with `rep movsq`
/// and finish it byte by byte, which made copies 11% of a grafana render
/// (glibc's: 1.5%). On CPUs with fast short `rep movsb` (FSRM, ERMSB) one
/// `rep movsb` is as fast as a vector loop for the short copies a render
/// makes. Only the static musl `berth` exports them in libc's place; elsewhere
/// they are plain functions, so that the unit tests below run on any x86_64.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(target_env = "musl"), allow(dead_code))]
mod musl_copies {
    /// # Safety
    /// The C contract: `dest` and `src` valid for `n` bytes, not overlapping.
    #[cfg_attr(target_env = "musl", unsafe(no_mangle))]
    pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        // SAFETY: the caller's contract; `rep movsb` copies exactly `n` bytes
        // forwards, and the direction flag is clear by the ABI.
        unsafe {
            core::arch::asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dest => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            );
        }
        dest
    }

    /// # Safety
    /// The C contract: `dest` and `src` valid for `n` bytes; they may overlap.
    #[cfg_attr(target_env = "musl", unsafe(no_mangle))]
    pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if dest.cast_const() == src {
            return dest;
        }
        if (dest as usize).wrapping_sub(src as usize) >= n {
            // `dest` is before `src` or past its end: a forward copy never
            // overwrites a byte it has still to read.
            // SAFETY: as for `memcpy`, with the overlap handled above.
            return unsafe { memcpy(dest, src, n) };
        }
        // SAFETY: backwards from the last byte, with the direction flag set
        // for the copy and cleared again as the ABI requires.
        unsafe {
            core::arch::asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dest.add(n).wrapping_sub(1) => _,
                inout("rsi") src.add(n).wrapping_sub(1) => _,
                options(nostack)
            );
        }
        dest
    }

    #[cfg(test)]
    mod tests {
        use super::{memcpy, memmove};

        fn numbered(n: usize) -> Vec<u8> {
            (0..n).map(|i| (i * 7 + 3) as u8).collect()
        }

        #[test]
        fn memcpy_copies_every_length_and_offset() {
            for n in [0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 65, 255, 4096, 4099] {
                for offset in 0..3 {
                    let src = numbered(n + offset);
                    let mut dest = vec![0u8; n + offset];
                    // SAFETY: both buffers hold `n` bytes past `offset` and do not overlap.
                    let returned = unsafe {
                        memcpy(dest.as_mut_ptr().add(offset), src.as_ptr().add(offset), n)
                    };
                    assert_eq!(returned, dest[offset..].as_mut_ptr());
                    assert_eq!(dest[offset..], src[offset..], "n={n} offset={offset}");
                    assert!(dest[..offset].iter().all(|b| *b == 0));
                }
            }
        }

        #[test]
        fn memmove_handles_overlap_both_ways() {
            for n in [1, 2, 8, 9, 33, 1000] {
                for shift in [1, 3, 8, n / 2 + 1] {
                    let original = numbered(n + shift);
                    // Forwards: the copy lands `shift` bytes further on.
                    let mut buf = original.clone();
                    let mut want = original.clone();
                    want.copy_within(0..n, shift);
                    // SAFETY: source and destination lie inside `buf`.
                    unsafe { memmove(buf.as_mut_ptr().add(shift), buf.as_ptr(), n) };
                    assert_eq!(buf, want, "n={n} shift={shift} forwards");
                    // Backwards: the copy lands `shift` bytes earlier.
                    let mut buf = original.clone();
                    let mut want = original.clone();
                    want.copy_within(shift..shift + n, 0);
                    // SAFETY: as above.
                    unsafe { memmove(buf.as_mut_ptr(), buf.as_ptr().add(shift), n) };
                    assert_eq!(buf, want, "n={n} shift={shift} backwards");
                }
            }
            let mut same = numbered(16);
            // SAFETY: a move onto itself, inside `same`.
            unsafe { memmove(same.as_mut_ptr(), same.as_ptr(), 16) };
            assert_eq!(same, numbered(16));
        }
    }
}
