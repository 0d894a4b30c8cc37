/*
 * TEST SCAFFOLDING ONLY: a Nagios-style plugin for the Windows end-to-end
 * test (tests/tests/windows_agent.rs), cross-built with mingw by
 * tests/windows.sh. Never shipped.
 *
 *   flag-plugin.exe FLAG_FILE
 *
 * CRIT (exit 2) while FLAG_FILE exists, printing its first line; OK (exit 0)
 * otherwise. Performance data `flag=0|1` carries the same fact as a metric.
 * The agent runs it directly (no shell), as it runs any plugin on Windows.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        printf("UNKNOWN - usage: flag-plugin.exe FLAG_FILE\n");
        return 3;
    }
    FILE *f = fopen(argv[1], "r");
    if (f == NULL) {
        printf("FLAG OK - no flag at %s|flag=0;;1\n", argv[1]);
        return 0;
    }
    char line[256] = "";
    if (fgets(line, sizeof line, f) == NULL)
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    printf("FLAG CRITICAL - %s|flag=1;;1\n", line);
    return 2;
}
