// SPDX-License-Identifier: MIT
/* Placeholder until its issue lands: fails loudly, never pretends to work. */
#include <stdio.h>
#include "commands.h"

int cmd_lb(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "flowpin lb: not built yet\n");
	return 1;
}
