#include <stdio.h>
#include <string.h>
#include "jobd/version.h"
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("jobd %s\n", JOBD_VERSION);
        return 0;
    }
    return 64;
}
