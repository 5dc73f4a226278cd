/* A stand-in bcryptprimitives.dll for Wine 8, which lacks it.
 *
 * Rust's std (1.78+) on Windows gets its random bytes (HashMap keys) from
 * bcryptprimitives!ProcessPrng. Wine 9 has it; Wine 8 (Debian 12) does not, so every Rust
 * program fails to start. This DLL exports ProcessPrng on top of RtlGenRandom
 * (advapi32!SystemFunction036), which Wine has always had.
 *
 * Built by tools/wine/setup.sh and copied into the Wine prefix's system32. Never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
