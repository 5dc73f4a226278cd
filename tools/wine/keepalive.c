/* Keeps Wine's wineserver and its service processes alive while tests run.
 *
 * Wine ends its service processes (and, after a delay, wineserver) once no ordinary Wine
 * process is left; between two test binaries that would happen and cost a restart each time.
 * tools/wine/test.sh starts this in the background and kills it at the end. */
#include <windows.h>

int main(void)
{
    for (;;)
        Sleep(INFINITE);
}
