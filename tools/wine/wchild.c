/* wchild: a flag-driven child program for warden's Windows process tests under Wine.
 *
 * (tools/test-child is the portable Rust one; this one is C so that the tests of the
 * process layer do not depend on it, and so that console and window behaviour is exactly
 * what the Win32 calls below say.)
 *
 *   wchild exit CODE            exit with CODE
 *   wchild echo WORDS...        write WORDS to stdout (one line), "err" to stderr, exit 0
 *   wchild args ARGS...         write each argument (as the CRT parsed it) on its own line
 *   wchild env NAME             write the value of NAME (or "<unset>")
 *   wchild cwd                  write the current directory
 *   wchild lines N              write N numbered lines to stdout
 *   wchild sleep MS             sleep MS milliseconds, then exit 0
 *   wchild grandchild MS        start "wchild sleep MS" (it inherits nothing), write
 *                               "grandchild PID", then sleep MS as well
 *   wchild orphan MS            start "wchild sleep MS", write "grandchild PID", exit 0
 *   wchild ctrlc FILE [MS]      install a console control handler, write "ready", sleep;
 *                               on CTRL_C write "got ctrl-c" to FILE and exit 0
 *                               (CTRL_BREAK: "got ctrl-break", exit 0); with MS, a
 *                               cleanup of MS milliseconds first: "got ctrl-c", then after
 *                               MS "got ctrl-c, cleaned up", then exit 0
 *   wchild window FILE          create a top-level window, write "ready", run a message
 *                               loop; on WM_CLOSE write "got wm_close" to FILE, exit 0
 *   wchild console              write "console yes" if it has a console, else "console no"
 *   wchild busy MS              write "busy", then spin on the CPU for MS milliseconds
 *   wchild alloc MB MS          commit and touch MB MiB, write "allocated", sleep MS
 *   wchild alloc-tree MB MS     start "wchild alloc MB MS" (it shares this stdout), then
 *                               do the same itself: two "allocated" lines, 2 x MB MiB
 *
 * Output is written with WriteFile to the standard handles and flushed at once.
 * Built with -municode so that wmain gets the arguments parsed by the CRT (MSVC rules). */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static const wchar_t *marker_path;
static DWORD cleanup_ms;

static void write_handle(DWORD which, const char *s, DWORD len)
{
    HANDLE h = GetStdHandle(which);
    DWORD done;
    if (h == NULL || h == INVALID_HANDLE_VALUE)
        return;
    while (len > 0) {
        if (!WriteFile(h, s, len, &done, NULL))
            return;
        s += done;
        len -= done;
    }
}

static void out(const char *s) { write_handle(STD_OUTPUT_HANDLE, s, (DWORD)strlen(s)); }

static void outw(const wchar_t *w)
{
    char buf[4096];
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof buf - 2, NULL, NULL);
    if (n <= 0)
        n = 1;
    buf[n - 1] = '\n';
    write_handle(STD_OUTPUT_HANDLE, buf, (DWORD)n);
}

static void write_marker(const char *text)
{
    HANDLE f = CreateFileW(marker_path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD done;
    if (f == INVALID_HANDLE_VALUE)
        return;
    WriteFile(f, text, (DWORD)strlen(text), &done, NULL);
    CloseHandle(f);
}

static BOOL WINAPI on_ctrl(DWORD type)
{
    if (type == CTRL_C_EVENT) {
        write_marker("got ctrl-c");
        if (cleanup_ms > 0) {
            Sleep(cleanup_ms);
            write_marker("got ctrl-c, cleaned up");
        }
        ExitProcess(0);
    }
    if (type == CTRL_BREAK_EVENT) {
        write_marker("got ctrl-break");
        ExitProcess(0);
    }
    return FALSE;
}

static LRESULT CALLBACK wndproc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
    if (msg == WM_CLOSE) {
        write_marker("got wm_close");
        DestroyWindow(hwnd);
        return 0;
    }
    if (msg == WM_DESTROY) {
        PostQuitMessage(0);
        return 0;
    }
    return DefWindowProcW(hwnd, msg, wp, lp);
}

static DWORD start_sleeper(const wchar_t *ms)
{
    wchar_t self[MAX_PATH], cmdline[MAX_PATH + 64];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    GetModuleFileNameW(NULL, self, MAX_PATH);
    swprintf(cmdline, sizeof cmdline / sizeof cmdline[0], L"\"%ls\" sleep %ls", self, ms);
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessW(self, cmdline, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        out("spawn failed\n");
        ExitProcess(3);
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return pi.dwProcessId;
}

/* Commit and touch `mb` MiB (every page written, so it is in the working set), then say so. */
static void allocate(int mb)
{
    size_t bytes = (size_t)mb << 20;
    char *p = VirtualAlloc(NULL, bytes, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (p == NULL) {
        out("alloc failed\n");
        ExitProcess(3);
    }
    for (size_t i = 0; i < bytes; i += 4096)
        p[i] = (char)i | 1;
    out("allocated\n");
}

/* Start "wchild alloc MB MS" sharing this process's standard handles. */
static void start_allocator(const wchar_t *mb, const wchar_t *ms)
{
    wchar_t self[MAX_PATH], cmdline[MAX_PATH + 64];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    GetModuleFileNameW(NULL, self, MAX_PATH);
    swprintf(cmdline, sizeof cmdline / sizeof cmdline[0], L"\"%ls\" alloc %ls %ls", self, mb, ms);
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    if (!CreateProcessW(self, cmdline, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        out("spawn failed\n");
        ExitProcess(3);
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
}

int wmain(int argc, wchar_t **argv)
{
    char buf[256];
    const wchar_t *mode = argc > 1 ? argv[1] : L"";

    if (!wcscmp(mode, L"exit") && argc > 2)
        return _wtoi(argv[2]);
    if (!wcscmp(mode, L"echo")) {
        for (int i = 2; i < argc; i++) {
            char w[1024];
            WideCharToMultiByte(CP_UTF8, 0, argv[i], -1, w, sizeof w, NULL, NULL);
            if (i > 2)
                out(" ");
            out(w);
        }
        out("\n");
        write_handle(STD_ERROR_HANDLE, "err\n", 4);
        return 0;
    }
    if (!wcscmp(mode, L"args")) {
        for (int i = 2; i < argc; i++)
            outw(argv[i]);
        return 0;
    }
    if (!wcscmp(mode, L"env") && argc > 2) {
        const wchar_t *v = _wgetenv(argv[2]);
        outw(v ? v : L"<unset>");
        return 0;
    }
    if (!wcscmp(mode, L"cwd")) {
        wchar_t d[MAX_PATH];
        GetCurrentDirectoryW(MAX_PATH, d);
        outw(d);
        return 0;
    }
    if (!wcscmp(mode, L"lines") && argc > 2) {
        int n = _wtoi(argv[2]);
        for (int i = 1; i <= n; i++) {
            snprintf(buf, sizeof buf, "line %d\n", i);
            out(buf);
        }
        return 0;
    }
    if (!wcscmp(mode, L"sleep") && argc > 2) {
        Sleep((DWORD)_wtoi(argv[2]));
        return 0;
    }
    if ((!wcscmp(mode, L"grandchild") || !wcscmp(mode, L"orphan")) && argc > 2) {
        DWORD pid = start_sleeper(argv[2]);
        snprintf(buf, sizeof buf, "grandchild %lu\n", (unsigned long)pid);
        out(buf);
        if (!wcscmp(mode, L"orphan"))
            return 0;
        Sleep((DWORD)_wtoi(argv[2]));
        return 0;
    }
    if (!wcscmp(mode, L"ctrlc") && argc > 2) {
        marker_path = argv[2];
        if (argc > 3)
            cleanup_ms = (DWORD)_wtoi(argv[3]);
        if (!SetConsoleCtrlHandler(on_ctrl, TRUE)) {
            out("handler failed\n");
            return 3;
        }
        out("ready\n");
        Sleep(600000);
        return 4;
    }
    if (!wcscmp(mode, L"window") && argc > 2) {
        WNDCLASSW wc;
        MSG msg;
        HWND hwnd;
        marker_path = argv[2];
        ZeroMemory(&wc, sizeof wc);
        wc.lpfnWndProc = wndproc;
        wc.hInstance = GetModuleHandleW(NULL);
        wc.lpszClassName = L"wchild";
        if (!RegisterClassW(&wc)) {
            out("register failed\n");
            return 3;
        }
        hwnd = CreateWindowExW(0, L"wchild", L"wchild", WS_OVERLAPPEDWINDOW, 0, 0, 100, 100,
                               NULL, NULL, wc.hInstance, NULL);
        if (!hwnd) {
            out("window failed\n");
            return 3;
        }
        out("ready\n");
        while (GetMessageW(&msg, NULL, 0, 0) > 0) {
            TranslateMessage(&msg);
            DispatchMessageW(&msg);
        }
        return 0;
    }
    if (!wcscmp(mode, L"console")) {
        out(GetConsoleWindow() != NULL || GetConsoleCP() != 0 ? "console yes\n" : "console no\n");
        return 0;
    }
    if (!wcscmp(mode, L"busy") && argc > 2) {
        ULONGLONG end = GetTickCount64() + (ULONGLONG)_wtoi(argv[2]);
        volatile unsigned long spin = 0;
        out("busy\n");
        while (GetTickCount64() < end)
            for (int i = 0; i < 100000; i++)
                spin++;
        return 0;
    }
    if (!wcscmp(mode, L"alloc") && argc > 3) {
        allocate(_wtoi(argv[2]));
        Sleep((DWORD)_wtoi(argv[3]));
        return 0;
    }
    if (!wcscmp(mode, L"alloc-tree") && argc > 3) {
        start_allocator(argv[2], argv[3]);
        allocate(_wtoi(argv[2]));
        Sleep((DWORD)_wtoi(argv[3]));
        return 0;
    }
    out("usage: wchild MODE ARGS (see tools/wine/wchild.c)\n");
    return 2;
}
