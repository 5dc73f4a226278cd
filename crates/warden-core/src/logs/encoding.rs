//! `log.encoding`: transcode a program's output to UTF-8 before lines are cut.
//!
//! Portable: `utf-16le` (Windows programs that write wide text), `latin1`/`iso-8859-1`,
//! `cp1252`/`windows-1252`. On Windows any other code page (`cp850`, `oem`, `ansi`, `932`)
//! goes through `MultiByteToWideChar`. A decoder keeps what a read split in the middle of a
//! character for the next read, so text is never garbled at read boundaries.

/// The code points of bytes 0x80..=0x9F in windows-1252 (0 = undefined: kept as U+FFFD).
const CP1252_HIGH: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// A stateful decoder to UTF-8.
#[derive(Debug)]
pub enum Decoder {
    Utf16Le {
        /// An odd byte, or a high surrogate waiting for its pair.
        carry: Vec<u8>,
    },
    Latin1,
    Cp1252,
    #[cfg(windows)]
    CodePage {
        page: u32,
        carry: Vec<u8>,
    },
}

/// What an `encoding` value means: `Ok(None)` passes bytes unchanged (`utf-8`).
pub fn decoder_for(name: &str) -> Result<Option<Decoder>, String> {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    match n.as_str() {
        "utf-8" | "utf8" | "cp65001" | "65001" => Ok(None),
        "utf-16le" | "utf16le" | "utf-16" | "ucs-2" | "unicode" => {
            Ok(Some(Decoder::Utf16Le { carry: Vec::new() }))
        }
        "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" | "cp28591" => Ok(Some(Decoder::Latin1)),
        "cp1252" | "windows-1252" | "1252" => Ok(Some(Decoder::Cp1252)),
        other => windows_code_page(other),
    }
}

/// The code page through which Windows writes UTF-8: its characters span reads in a way
/// that `IsDBCSLeadByteEx` does not know, and it needs no decoding.
#[cfg(windows)]
const CP_UTF8: u32 = 65001;

#[cfg(windows)]
fn windows_code_page(name: &str) -> Result<Option<Decoder>, String> {
    use windows_sys::Win32::Globalization::{GetACP, GetOEMCP, IsValidCodePage};
    // SAFETY: plain queries.
    let page = match name {
        "oem" => unsafe { GetOEMCP() },
        "ansi" => unsafe { GetACP() },
        _ => name
            .strip_prefix("cp")
            .unwrap_or(name)
            .parse::<u32>()
            .map_err(|_| unknown(name))?,
    };
    // `oem` or `ansi` on a system set to use UTF-8 for its code pages.
    if page == CP_UTF8 {
        return Ok(None);
    }
    // SAFETY: plain query.
    if unsafe { IsValidCodePage(page) } == 0 {
        return Err(format!("code page {page} is not installed on this system"));
    }
    Ok(Some(Decoder::CodePage {
        page,
        carry: Vec::new(),
    }))
}

#[cfg(not(windows))]
fn windows_code_page(name: &str) -> Result<Option<Decoder>, String> {
    Err(unknown(name))
}

fn unknown(name: &str) -> String {
    let more = if cfg!(windows) {
        ", a code page like \"cp850\", \"oem\", \"ansi\""
    } else {
        ""
    };
    format!(
        "unknown encoding {name:?} (expected \"utf-8\", \"utf-16le\", \"latin1\", \"cp1252\"{more})"
    )
}

impl Decoder {
    /// Decode `input` (a read's bytes) and append UTF-8 to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Decoder::Utf16Le { carry } => {
                let mut bytes = std::mem::take(carry);
                bytes.extend_from_slice(input);
                let mut end = bytes.len() & !1;
                // A high surrogate (0xD800..0xDBFF, its high byte last) waits for its pair.
                if end >= 2 && (0xD8..0xDC).contains(&bytes[end - 1]) {
                    end -= 2;
                }
                let units = bytes[..end]
                    .chunks_exact(2)
                    .map(|p| u16::from_le_bytes([p[0], p[1]]));
                push_utf16(units, out);
                carry.extend_from_slice(&bytes[end..]);
            }
            Decoder::Latin1 => {
                for &b in input {
                    push_char(char::from(b), out);
                }
            }
            Decoder::Cp1252 => {
                for &b in input {
                    let c = match b {
                        0x80..=0x9F => match CP1252_HIGH[usize::from(b - 0x80)] {
                            0 => '\u{FFFD}',
                            u => char::from_u32(u32::from(u)).unwrap_or('\u{FFFD}'),
                        },
                        _ => char::from(b),
                    };
                    push_char(c, out);
                }
            }
            #[cfg(windows)]
            Decoder::CodePage { page, carry } => {
                let mut bytes = std::mem::take(carry);
                bytes.extend_from_slice(input);
                let cut = complete_prefix(*page, &bytes);
                push_utf16(code_page_to_utf16(*page, &bytes[..cut]), out);
                carry.extend_from_slice(&bytes[cut..]);
            }
        }
    }

    /// At EOF: what is left over becomes U+FFFD.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let left = match self {
            Decoder::Utf16Le { carry } => std::mem::take(carry),
            #[cfg(windows)]
            Decoder::CodePage { carry, .. } => std::mem::take(carry),
            Decoder::Latin1 | Decoder::Cp1252 => Vec::new(),
        };
        if !left.is_empty() {
            push_char('\u{FFFD}', out);
        }
    }
}

fn push_char(c: char, out: &mut Vec<u8>) {
    let mut b = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

fn push_utf16(units: impl IntoIterator<Item = u16>, out: &mut Vec<u8>) {
    for c in char::decode_utf16(units) {
        push_char(c.unwrap_or('\u{FFFD}'), out);
    }
}

/// How much of `bytes` ends on a character boundary (a DBCS lead byte at the end waits).
#[cfg(windows)]
fn complete_prefix(page: u32, bytes: &[u8]) -> usize {
    use windows_sys::Win32::Globalization::IsDBCSLeadByteEx;
    let mut i = 0;
    while i < bytes.len() {
        // SAFETY: plain query.
        let lead = unsafe { IsDBCSLeadByteEx(page, bytes[i]) } != 0;
        if lead {
            if i + 1 >= bytes.len() {
                return i;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(windows)]
fn code_page_to_utf16(page: u32, bytes: &[u8]) -> Vec<u16> {
    use windows_sys::Win32::Globalization::MultiByteToWideChar;
    if bytes.is_empty() {
        return Vec::new();
    }
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    // SAFETY: asks for the length only.
    let need =
        unsafe { MultiByteToWideChar(page, 0, bytes.as_ptr(), len, std::ptr::null_mut(), 0) };
    let mut wide = vec![0u16; usize::try_from(need).unwrap_or(0)];
    // SAFETY: `wide` has room for `need` units.
    let got = unsafe { MultiByteToWideChar(page, 0, bytes.as_ptr(), len, wide.as_mut_ptr(), need) };
    wide.truncate(usize::try_from(got).unwrap_or(0));
    wide
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, pieces: &[&[u8]]) -> String {
        let mut d = decoder_for(name).expect("known").expect("a decoder");
        let mut out = Vec::new();
        for p in pieces {
            d.decode(p, &mut out);
        }
        d.finish(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    fn utf16le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn utf16le_survives_any_split() {
        let text = "héllo 😀 wörld\r\nzwei\n";
        let bytes = utf16le(text);
        for cut in 0..bytes.len() {
            assert_eq!(
                run("utf-16le", &[&bytes[..cut], &bytes[cut..]]),
                text,
                "split at {cut}"
            );
        }
        // Byte by byte.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run("UTF-16LE", &singles), text);
    }

    #[test]
    fn a_truncated_end_becomes_a_replacement_char() {
        let mut bytes = utf16le("ok");
        bytes.push(0x41);
        assert_eq!(run("utf-16le", &[&bytes]), "ok\u{FFFD}");
    }

    #[test]
    fn unpaired_surrogates_become_replacement_chars() {
        // A high surrogate then 'A'; a lone low surrogate; a high surrogate at the end.
        let bytes = [0x00, 0xD8, 0x41, 0x00, 0x00, 0xDC, 0x42, 0x00, 0x3D, 0xD8];
        for cut in 0..bytes.len() {
            assert_eq!(
                run("utf-16le", &[&bytes[..cut], &bytes[cut..]]),
                "\u{FFFD}A\u{FFFD}B\u{FFFD}",
                "split at {cut}"
            );
        }
    }

    #[test]
    fn single_byte_pages() {
        assert_eq!(run("latin1", &[b"caf\xe9\n"]), "café\n");
        assert_eq!(
            run("cp1252", &[b"\x80 5 \x93quoted\x94 \x81\n"]),
            "€ 5 \u{201C}quoted\u{201D} \u{FFFD}\n"
        );
    }

    #[test]
    fn names() {
        assert!(decoder_for("utf-8").expect("ok").is_none());
        assert!(decoder_for("cp65001").expect("ok").is_none());
        assert!(decoder_for("Windows-1252").expect("ok").is_some());
        let err = decoder_for("klingon").expect_err("unknown");
        assert!(err.contains("utf-16le"), "{err}");
    }
}
