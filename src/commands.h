/* SPDX-License-Identifier: MIT */
/* The flowpin subcommands. Each returns the process exit status. */
#ifndef FLOWPIN_COMMANDS_H
#define FLOWPIN_COMMANDS_H

int cmd_check(int argc, char **argv);	/* src/cmd_check.c */
int cmd_table(int argc, char **argv);	/* src/cmd_table.c */
int cmd_lb(int argc, char **argv);	/* src/cmd_lb.c: up, down, reload, stats, flows, ... */
int cmd_replay(int argc, char **argv);	/* src/cmd_replay.c */
int cmd_backend(int argc, char **argv); /* src/cmd_backend.c: up, down, stats */
int cmd_quiclb(int argc, char **argv);	/* src/cmd_quiclb.c: encode, decode */
int cmd_sim(int argc, char **argv);	/* src/cmd_sim.c: the fleet simulator */
int cmd_fleet(int argc, char **argv);	/* src/cmd_fleet.c: status, push */

#endif
