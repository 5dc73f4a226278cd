//! Newline search over byte slices (`memchr` is not a dependency): 16 bytes at a time with
//! SSE2 on `x86_64` (always there), a word at a time elsewhere and for the last bytes.
//!
//! The hot path of a pump only needs the last newline of a chunk ([`rfind_nl`]) and the
//! number of newlines in it ([`count_nl`]). The release profile (`opt-level = "s"`) does not
//! vectorize loops, so the SSE2 forms are written out: they take about a fifth of an
//! instruction per byte where the word-at-a-time forms take one to two (the guard's flood
//! counts every byte of the output once in [`count_nl`]).

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const NL: u64 = LO * b'\n' as u64;

/// Whether any byte of `w` is a newline.
#[inline]
fn has_nl(w: u64) -> bool {
    let x = w ^ NL;
    (x.wrapping_sub(LO) & !x & HI) != 0
}

#[inline]
fn word(c: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    u64::from_ne_bytes(a)
}

/// The index of the first `\n` in `hay`.
pub(crate) fn find_nl(hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every `x86_64` processor.
    return unsafe { sse2::find_nl(hay) };
    #[cfg(not(target_arch = "x86_64"))]
    find_nl_swar(hay)
}

/// The index of the last `\n` in `hay`.
pub(crate) fn rfind_nl(hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every `x86_64` processor.
    return unsafe { sse2::rfind_nl(hay) };
    #[cfg(not(target_arch = "x86_64"))]
    rfind_nl_swar(hay)
}

/// How many `\n` are in `hay`.
pub(crate) fn count_nl(hay: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of every `x86_64` processor.
    return unsafe { sse2::count_nl(hay) };
    #[cfg(not(target_arch = "x86_64"))]
    count_nl_swar(hay)
}

/// [`find_nl`], a word at a time.
fn find_nl_swar(hay: &[u8]) -> Option<usize> {
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        if has_nl(word(c)) {
            return c.iter().position(|&b| b == b'\n').map(|p| base + p);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| base + p)
}

/// [`rfind_nl`], a word at a time.
fn rfind_nl_swar(hay: &[u8]) -> Option<usize> {
    let mut chunks = hay.rchunks_exact(8);
    let mut end = hay.len();
    for c in &mut chunks {
        end -= 8;
        if has_nl(word(c)) {
            return c.iter().rposition(|&b| b == b'\n').map(|p| end + p);
        }
    }
    chunks.remainder().iter().rposition(|&b| b == b'\n')
}

/// [`count_nl`], a word at a time: for each byte of a word, one bit that says
/// whether it is a newline, summed in byte lanes (up to 255 words per lane before they are
/// added up). About one instruction per byte; the release profile (`opt-level = "s"`) does
/// not vectorize the naive loop, which took seven.
#[allow(
    clippy::naive_bytecount,
    reason = "bytecount is not a dependency; only the last 7 bytes are counted one by one"
)]
fn count_nl_swar(hay: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const PAIRS: u64 = 0x00ff_00ff_00ff_00ff;
    let mut chunks = hay.chunks_exact(8);
    let mut total = 0;
    loop {
        // Each byte lane counts at most 255 newlines before the lanes are summed.
        let mut lanes = 0u64;
        let mut words = 0;
        for c in chunks.by_ref() {
            let x = word(c) ^ NL;
            // The high bit of each byte that is zero in `x` (a newline in `c`), exactly:
            // adding 0x7f to the low seven bits carries into the high bit unless they are 0.
            let zero = !(((x & LOW7) + LOW7) | x) & HI;
            lanes += zero >> 7;
            words += 1;
            if words == 255 {
                break;
            }
        }
        // Eight lanes of up to 255: add them in pairs into 16-bit lanes, then those.
        let pairs = (lanes & PAIRS) + ((lanes >> 8) & PAIRS);
        total += (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as usize;
        if words < 255 {
            break;
        }
    }
    // At most 7 bytes.
    total + chunks.remainder().iter().filter(|&&b| b == b'\n').count()
}

/// The SSE2 forms (SSE2 is part of `x86_64`): 16 bytes compared at once, the word-at-a-time
/// forms for the last 15.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_loadu_si128,
        _mm_movemask_epi8, _mm_sad_epu8, _mm_set1_epi8, _mm_setzero_si128, _mm_sub_epi8,
        _mm_unpackhi_epi64,
    };

    /// 0xff in each byte of `c` that is a newline.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn newlines(c: &[u8]) -> __m128i {
        assert!(c.len() >= 16);
        // SAFETY: `c` has at least 16 bytes (checked above); `loadu` needs no alignment.
        let v = unsafe { _mm_loadu_si128(c.as_ptr().cast()) };
        _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8))
    }

    /// One bit per byte of `c`, set where it is a newline.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn mask(c: &[u8]) -> u32 {
        _mm_movemask_epi8(newlines(c)) as u32
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn find_nl(hay: &[u8]) -> Option<usize> {
        let mut chunks = hay.chunks_exact(16);
        let mut base = 0;
        for c in &mut chunks {
            let m = mask(c);
            if m != 0 {
                return Some(base + m.trailing_zeros() as usize);
            }
            base += 16;
        }
        super::find_nl_swar(chunks.remainder()).map(|p| base + p)
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn rfind_nl(hay: &[u8]) -> Option<usize> {
        let mut chunks = hay.rchunks_exact(16);
        let mut end = hay.len();
        for c in &mut chunks {
            end -= 16;
            let m = mask(c);
            if m != 0 {
                return Some(end + 31 - m.leading_zeros() as usize);
            }
        }
        super::rfind_nl_swar(chunks.remainder())
    }

    /// Each compare gives -1 in a newline's byte lane: subtracting it counts up to 255 per
    /// lane, then the lanes are summed (`sad` against zero) and the count starts again.
    /// 64 bytes a step (four compares into the same lanes: at most 4 a step, so 63 steps
    /// before a sum), then 16 at a time, then the word-at-a-time form for the last 15.
    #[target_feature(enable = "sse2")]
    pub(super) fn count_nl(hay: &[u8]) -> usize {
        let mut total = 0;
        let mut blocks = hay.chunks_exact(64);
        loop {
            let mut lanes = _mm_setzero_si128();
            let mut n = 0;
            for block in blocks.by_ref() {
                // Written out, not as a loop over an array of the four: the release profile
                // (`opt-level = "s"`) kept that array on the stack, and the subtractions
                // from it, each waiting for the store before, were two thirds of the time.
                let (x, y) = block.split_at(32);
                let first = _mm_add_epi8(newlines(x), newlines(&x[16..]));
                let second = _mm_add_epi8(newlines(y), newlines(&y[16..]));
                lanes = _mm_sub_epi8(lanes, first);
                lanes = _mm_sub_epi8(lanes, second);
                n += 1;
                if n == 63 {
                    break;
                }
            }
            total += sum(lanes);
            if n < 63 {
                break;
            }
        }
        let mut lanes = _mm_setzero_si128();
        let mut chunks = blocks.remainder().chunks_exact(16);
        for c in &mut chunks {
            lanes = _mm_sub_epi8(lanes, newlines(c));
        }
        total + sum(lanes) + super::count_nl_swar(chunks.remainder())
    }

    /// The sum of the 16 byte lanes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn sum(lanes: __m128i) -> usize {
        let sums = _mm_sad_epu8(lanes, _mm_setzero_si128());
        let (lo, hi) = (
            _mm_cvtsi128_si64(sums),
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums)),
        );
        (lo + hi) as usize
    }
}

/// The lines of `data` (each without its `\n`); a last piece without `\n` is yielded too.
pub(crate) fn lines(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let (line, rest) = match find_nl(data) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &data[data.len()..]),
        };
        data = rest;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_like_the_naive_search() {
        let mut hay = Vec::new();
        for len in 0..72 {
            for at in 0..len {
                hay.clear();
                hay.resize(len, b'x');
                hay[at] = b'\n';
                if at + 3 < len {
                    hay[at + 3] = b'\n';
                }
                let first = hay.iter().position(|&b| b == b'\n');
                let last = hay.iter().rposition(|&b| b == b'\n');
                assert_eq!(find_nl(&hay), first, "len {len} at {at}");
                assert_eq!(rfind_nl(&hay), last, "len {len} at {at}");
                assert_eq!(find_nl_swar(&hay), first, "len {len} at {at}");
                assert_eq!(rfind_nl_swar(&hay), last, "len {len} at {at}");
            }
            hay.clear();
            hay.resize(len, 0x8a);
            assert_eq!(find_nl(&hay), None);
            assert_eq!(rfind_nl(&hay), None);
            assert_eq!(find_nl_swar(&hay), None);
            assert_eq!(rfind_nl_swar(&hay), None);
        }
    }

    #[test]
    #[allow(clippy::naive_bytecount, reason = "the naive count is the reference")]
    fn counts_like_the_naive_count() {
        // Lengths around the word and the 255-word lane limits, newlines anywhere, and bytes
        // that differ from '\n' in one bit (0x0b, 0x8a) or only above it.
        let mut hay = Vec::new();
        for (len, step) in [
            (0, 1),
            (7, 1),
            (8, 3),
            (63, 5),
            (2040, 1),
            (2041, 7),
            (16, 1),
            (31, 2),
            (4080, 1),
            (4081, 3),
            (4100, 2),
            (9000, 1),
        ] {
            hay.clear();
            for i in 0..len {
                hay.push(match i % (step + 3) {
                    0 => b'\n',
                    1 => 0x0b,
                    2 => 0x8a,
                    _ if i % step == 0 => b'\n',
                    _ => b'x',
                });
            }
            let naive = hay.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(count_nl(&hay), naive, "len {len} step {step}");
            assert_eq!(count_nl_swar(&hay), naive, "len {len} step {step}");
        }
        // Every lane full (255 compares) and more, in both forms.
        assert_eq!(count_nl(&[b'\n'; 5000]), 5000);
        assert_eq!(count_nl_swar(&[b'\n'; 5000]), 5000);
        assert_eq!(count_nl(&[0xffu8; 5000]), 0);
        assert_eq!(count_nl_swar(&[0xffu8; 5000]), 0);
    }

    #[test]
    fn splits_lines() {
        let got: Vec<&[u8]> = lines(b"a\n\nbc\nd").collect();
        assert_eq!(got, vec![&b"a"[..], b"", b"bc", b"d"]);
        assert_eq!(count_nl(b"a\n\nbc\nd"), 3);
    }
}
