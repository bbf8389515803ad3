// Simple C function example
#include <stdio.h>

int main() {
    printf("Hello from FAAS!\n");
    return 0;
}
