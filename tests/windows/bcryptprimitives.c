/*
 * TEST SCAFFOLDING ONLY: never shipped, never part of the agent or the MSI.
 *
 * A stand-in for Windows' bcryptprimitives.dll in the Wine prefix the tests
 * use. Rust's std (>= 1.78) imports ProcessPrng from it for random numbers
 * (HashMap seeds and the like); Wine only has it from 8.13, and Debian's
 * Wine is 8.0, so without this DLL every forewarn-agent.exe exits with code
 * 53 before printing anything. Real Windows (10 and later) has the real DLL.
 *
 * ProcessPrng is built on RtlGenRandom (advapi32's SystemFunction036), which
 * Wine implements. tests/windows.sh builds this with mingw and copies it
 * into the test prefix's system32.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
