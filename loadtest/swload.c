#include <stdio.h>
int main(void) { puts("swload placeholder"); return 0; }
