//! Newline search over byte slices, a word at a time (`memchr` is not a dependency).
//!
//! The hot path of a pump only needs the last newline of a chunk ([`rfind_nl`]) and the
//! number of newlines in it ([`count_nl`], which the compiler vectorizes).

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

/// The index of the last `\n` in `hay`.
pub(crate) fn rfind_nl(hay: &[u8]) -> Option<usize> {
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

/// How many `\n` are in `hay`, a word at a time: for each byte of a word, one bit that says
/// whether it is a newline, summed in byte lanes (up to 255 words per lane before they are
/// added up). About one instruction per byte; the release profile (`opt-level = "s"`) does
/// not vectorize the naive loop, which took seven.
#[allow(
    clippy::naive_bytecount,
    reason = "bytecount is not a dependency; only the last 7 bytes are counted one by one"
)]
pub(crate) fn count_nl(hay: &[u8]) -> usize {
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
        for len in 0..40 {
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
            }
            hay.clear();
            hay.resize(len, 0x8a);
            assert_eq!(find_nl(&hay), None);
            assert_eq!(rfind_nl(&hay), None);
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
            (4100, 2),
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
        }
        assert_eq!(count_nl(&[b'\n'; 5000]), 5000);
        assert_eq!(count_nl(&[0xffu8; 5000]), 0);
    }

    #[test]
    fn splits_lines() {
        let got: Vec<&[u8]> = lines(b"a\n\nbc\nd").collect();
        assert_eq!(got, vec![&b"a"[..], b"", b"bc", b"d"]);
        assert_eq!(count_nl(b"a\n\nbc\nd"), 3);
    }
}
