//! Unmap the code and read-only data that only warden's start used (Linux).
//!
//! A start runs code that a supervisor never runs again (the flag parser, the config reader,
//! the first spawn of every service), and each page fault of a file mapping maps a whole
//! page-cache folio around the faulting address (64 KiB and more on ext4 with large folios;
//! `MADV_RANDOM` does not stop that on current kernels). So after a start nearly the whole
//! binary, and a good part of libc, is counted in warden's resident set, most of it never to
//! be touched again.
//!
//! [`release_startup_pages`] tells the kernel, with `MADV_DONTNEED`, that warden does not
//! need the pages of its *clean* read-only private file mappings (code, read-only data):
//! those that hold no page of their own (`Anonymous: 0 kB` in `/proc/self/smaps`), so each
//! page in them is the page cache's page of the file. This is honest, and lossless:
//! - nothing is freed that warden wrote: a mapping with a single copied-on-write page (the
//!   relocated `.data.rel.ro`, a debugger's breakpoint) is left alone, and so is every
//!   writable one;
//! - the pages stay in the page cache, shared with every other process that maps the file; a
//!   page warden uses again is mapped again from there by a minor fault (no disk read while
//!   the cache holds it), so what stays counted is what warden really runs;
//! - it is what the kernel itself does to such pages under memory pressure (it unmaps clean
//!   file pages and reclaims them), only earlier.

use std::ffi::c_void;

/// One mapping of `/proc/self/smaps` that may be released.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    start: usize,
    end: usize,
}

/// Release the clean read-only file pages of this process (see the module docs). Best
/// effort: a `/proc` that cannot be read releases nothing.
pub(crate) fn release_startup_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
    trim_main_stack(&smaps);
    for r in clean_read_only(&smaps, &exe.to_string_lossy()) {
        // SAFETY: `r` is a whole mapping of this process, read-only, private, file-backed and
        // without a private page: dropping its page-table entries loses nothing, the next
        // access maps the same page-cache page again. No Rust object lives in it.
        unsafe {
            libc::madvise(r.start as *mut c_void, r.end - r.start, libc::MADV_DONTNEED);
        }
    }
}

/// How far below the caller's frame the stack is kept: the frames of the calls made from it
/// (`madvise` and its wrapper take a few hundred bytes) and the red zone, many times over.
const STACK_KEPT_BELOW: usize = 16 * 1024;

/// On the main thread (whose stack is the `[stack]` mapping), drop the pages of its stack
/// below the caller's frame: the start (the flag parser, the config reader) ran deep, and
/// those pages, dead now, stayed resident (0.14 MB); a deeper call later gets fresh zeroed
/// pages. A signal handler runs on them only after the `madvise` has returned.
fn trim_main_stack(smaps: &str) {
    let here = 0u8;
    let sp = std::ptr::from_ref(std::hint::black_box(&here)) as usize;
    if let Some(r) = dead_stack(smaps, sp) {
        // SAFETY: `r` lies below this frame by `STACK_KEPT_BELOW` in this thread's own stack:
        // no live frame and no object is there; the mapping stays, zero-filled on demand.
        unsafe {
            libc::madvise(r.start as *mut c_void, r.end - r.start, libc::MADV_DONTNEED);
        }
    }
}

/// The part of the `[stack]` mapping of `smaps` below `sp - STACK_KEPT_BELOW` (page-aligned),
/// if `sp` lies in that mapping and that part is not empty.
fn dead_stack(smaps: &str, sp: usize) -> Option<Range> {
    const PAGE: usize = 4096;
    let line = smaps
        .lines()
        .find(|l| l.ends_with("[stack]") && l.contains(" rw-p "))?;
    let (start, end) = line.split_ascii_whitespace().next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    if !(start..end).contains(&sp) {
        return None;
    }
    let top = sp.checked_sub(STACK_KEPT_BELOW)? / PAGE * PAGE;
    (top > start).then_some(Range { start, end: top })
}

/// [`release_startup_pages`] from a thread of its own, which ends right after it (see
/// [`crate::process::release_settled_pages`]), after `malloc_trim`.
///
/// A bare `pthread`, not a `std::thread`: what runs after the last `madvise` is mapped
/// again, and a std thread's end (its result, its handle, its thread-locals) ran through
/// eight 64 KiB windows of warden's code; this one returns into glibc (whose pages are
/// shared with every process) from the loop that made the calls. Its stack is small: glibc
/// keeps an ended thread's stack for the next thread, with the pages it touched.
pub(crate) fn release_settled_pages() {
    extern "C" fn run(_: *mut c_void) -> *mut c_void {
        // A panic must not unwind out of this frame (nothing here is expected to panic).
        let _ = std::panic::catch_unwind(|| {
            super::sample::release_free_heap();
            release_startup_pages();
        });
        std::ptr::null_mut()
    }
    // SAFETY: a detached thread with a valid attribute object, destroyed after use; `run`
    // takes no argument and lives as long as the process (a plain function).
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_attr_init(&raw mut attr) != 0 {
            return;
        }
        libc::pthread_attr_setstacksize(&raw mut attr, RELEASE_STACK);
        libc::pthread_attr_setdetachstate(&raw mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut thread: libc::pthread_t = std::mem::zeroed();
        // No thread (out of resources): nothing released, which costs only memory.
        let _ = libc::pthread_create(&raw mut thread, &raw const attr, run, std::ptr::null_mut());
        libc::pthread_attr_destroy(&raw mut attr);
    }
}

/// The stack of the releasing thread: `release_startup_pages` needs a few KiB of it.
const RELEASE_STACK: usize = 64 * 1024;

/// The mappings of `smaps` that are read-only (`r--p`, `r-xp`), private, of the executable
/// `exe` or of a shared object, resident, and hold no anonymous page.
///
/// Only those files: they stay mapped for the life of the process (glibc never unloads the
/// libraries it loads, NSS modules included), so no other thread can unmap one between the
/// read of `smaps` and the `madvise`, and put an anonymous mapping whose data `MADV_DONTNEED`
/// would drop at its address. A file mapped for a moment (`ld.so.cache` during a `dlopen`, a
/// locale archive) is not taken.
fn clean_read_only(smaps: &str, exe: &str) -> Vec<Range> {
    let mut out = Vec::new();
    // The mapping being read: its range, whether it qualifies so far, whether it is resident.
    let mut cur: Option<(Range, bool, bool)> = None;
    let mut flush = |cur: &mut Option<(Range, bool, bool)>| {
        if let Some((r, ok, resident)) = cur.take()
            && ok
            && resident
        {
            out.push(r);
        }
    };
    for line in smaps.lines() {
        if let Some((range, ok)) = header(line, exe) {
            flush(&mut cur);
            cur = Some((range, ok, false));
        } else if let Some((_, ok, resident)) = cur.as_mut() {
            let mut field = line.split_ascii_whitespace();
            let (Some(key), Some(kb)) = (field.next(), field.next()) else {
                continue;
            };
            match key {
                "Rss:" => *resident = kb != "0",
                "Anonymous:" | "AnonHugePages:" | "Locked:" => *ok &= kb == "0",
                _ => {}
            }
        }
    }
    flush(&mut cur);
    out
}

/// A mapping's header line (`start-end perms offset dev inode [path]`): its range, and
/// whether its permissions and file let it be released (see [`clean_read_only`]). `None`
/// for the other lines.
fn header(line: &str, exe: &str) -> Option<(Range, bool)> {
    let mut field = line.split_ascii_whitespace();
    let (start, end) = field.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = field.next()?;
    let _offset = field.next()?;
    let _dev = field.next()?;
    let inode = field.next()?;
    let path = field.next().unwrap_or("");
    let stays = (!exe.is_empty() && path == exe) || shared_object(path);
    let ok = matches!(perms, "r--p" | "r-xp") && inode != "0" && path.starts_with('/') && stays;
    (end > start).then_some((Range { start, end }, ok))
}

/// `libc.so.6`, `ld-linux-x86-64.so.2`, `libfoo.so`: a file name with `.so` at its end or
/// before a version number (not `ld.so.cache`).
fn shared_object(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.match_indices(".so")
        .any(|(i, _)| match name.as_bytes().get(i + 3..) {
            Some([]) => true,
            Some([b'.', d, ..]) => d.is_ascii_digit(),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0170000 r--p 00000000 fe:00 1234 /usr/bin/warden
Size:               1472 kB
Rss:                 896 kB
Anonymous:             0 kB
AnonHugePages:         0 kB
Locked:                0 kB
VmFlags: rd mr mw me
55d0c0170000-55d0c0480000 r-xp 00170000 fe:00 1234 /usr/bin/warden
Rss:                2936 kB
Anonymous:             0 kB
55d0c0480000-55d0c04c4000 r--p 00474000 fe:00 1234 /usr/bin/warden
Rss:                 272 kB
Anonymous:           272 kB
55d0c04c4000-55d0c04c6000 rw-p 004b8000 fe:00 1234 /usr/bin/warden
Rss:                   8 kB
Anonymous:             0 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Rss:                   4 kB
Anonymous:             4 kB
7f0000100000-7f0000200000 r-xp 00028000 fe:00 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 932 kB
Anonymous:             0 kB
7f0000200000-7f0000210000 r--p 00000000 fe:00 98 /usr/lib/locale/C.utf8/LC_CTYPE
Rss:                   0 kB
Anonymous:             0 kB
7f0000280000-7f0000290000 r--p 00000000 fe:00 96 /etc/ld.so.cache
Rss:                  64 kB
Anonymous:             0 kB
7f0000300000-7f0000302000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
7f0000400000-7f0000401000 r-xp 00000000 fe:00 97 /usr/lib/debugged.so
Rss:                   4 kB
Anonymous:             4 kB
";

    #[test]
    fn only_clean_resident_read_only_file_mappings_are_released() {
        let got = clean_read_only(SMAPS, "/usr/bin/warden");
        assert!(
            clean_read_only(SMAPS, "/usr/bin/other").len() == 1,
            "only libc then"
        );
        assert_eq!(
            got,
            vec![
                // The binary's read-only data and its code.
                Range {
                    start: 0x55d0_c000_0000,
                    end: 0x55d0_c017_0000
                },
                Range {
                    start: 0x55d0_c017_0000,
                    end: 0x55d0_c048_0000
                },
                // libc's code. Not: the relocated RELRO (anonymous pages), the writable data,
                // the anonymous heap, a mapping with nothing resident, a file that is not the
                // executable or a library (`ld.so.cache`, mapped only during a `dlopen`), the
                // vdso, a patched code page.
                Range {
                    start: 0x7f00_0010_0000,
                    end: 0x7f00_0020_0000
                },
            ]
        );
    }

    #[test]
    fn the_dead_stack_is_what_lies_below_the_frame_and_its_margin() {
        let smaps = "7ffd00000000-7ffd00040000 rw-p 00000000 00:00 0 [stack]\nRss: 140 kB\n";
        let base = 0x7ffd_0000_0000_usize;
        // 200 KiB up: everything below 184 KiB (rounded down to a page) goes.
        assert_eq!(
            dead_stack(smaps, base + 200 * 1024 + 100),
            Some(Range {
                start: base,
                end: base + 184 * 1024
            })
        );
        // Too close to the bottom, or not this stack (another thread's): nothing.
        assert_eq!(dead_stack(smaps, base + 10 * 1024), None);
        assert_eq!(dead_stack(smaps, 0x5000), None);
        assert_eq!(dead_stack("", base + 100), None);
    }

    #[test]
    fn shared_objects_are_told_by_their_name() {
        for lib in [
            "/lib/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
            "/usr/lib/libfoo.so",
        ] {
            assert!(shared_object(lib), "{lib}");
        }
        for other in [
            "/etc/ld.so.cache",
            "/usr/bin/warden",
            "/data/x.sock",
            "/a.so.d/f",
        ] {
            assert!(!shared_object(other), "{other}");
        }
    }

    /// The resident kB of the mappings that qualify, in this process now.
    fn clean_resident_kb() -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("read smaps");
        let exe = std::fs::read_link("/proc/self/exe").expect("exe");
        let exe = exe.to_string_lossy();
        let mut total = 0;
        let mut counting = false;
        for line in smaps.lines() {
            if let Some((_, ok)) = header(line, &exe) {
                counting = ok;
            } else if counting && let Some(kb) = line.strip_prefix("Rss:") {
                total += kb
                    .trim()
                    .trim_end_matches(" kB")
                    .parse::<u64>()
                    .expect("a number");
            }
        }
        total
    }

    /// The two tests that release pages do not run at once: each sees its own release only.
    static RELEASING: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn releasing_unmaps_clean_pages_and_keeps_code_and_data_intact() {
        let _one = RELEASING.lock();
        // Relocated data (a table of string pointers and vtables) and code are used on both
        // sides of the release; the relocated pages are not released, so nothing changes.
        let names: Vec<String> = (0..64).map(|i| format!("s{i:03}")).collect();
        let before = clean_resident_kb();
        release_startup_pages();
        let after = clean_resident_kb();
        assert_eq!(names.iter().map(String::len).sum::<usize>(), 64 * 4);
        assert_eq!(
            format!("{:?}", std::time::Duration::from_millis(1500)),
            "1.5s"
        );
        // The test binary's code alone is megabytes, most of it mapped by the fault-around of
        // its start; what this test (and the others running beside it) touched again since is
        // far less.
        assert!(
            after < before,
            "resident clean pages {before} kB -> {after} kB"
        );
    }

    #[test]
    fn the_settled_release_runs_on_a_thread_of_its_own() {
        let _one = RELEASING.lock();
        let before = clean_resident_kb();
        release_settled_pages();
        // The thread is detached: its work is seen in smaps.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let now = clean_resident_kb();
            if now < before {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nothing released: {before} kB -> {now} kB"
            );
            std::thread::yield_now();
        }
    }
}
