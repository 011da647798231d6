/* fovea.c: the command line program (not written yet). */
#include <stdio.h>
#include "fovea/fovea.h"
int main(void)
{
	puts("fovea " FV_VERSION_STRING);
	return 0;
}
