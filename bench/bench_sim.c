// SPDX-License-Identifier: MIT
/*
 * The fleet simulator's run time and memory, and how they grow with flows and with
 * sites (docs/sim.md). Each size runs in a child process of its own (wait4() gives its
 * CPU time and peak RSS alone), one after the other, with the default causes and a
 * day of simulated time. Prints a markdown section for bench/results.md.
 * BENCH_SIM_QUICK=1: the small sizes only (a look, not the table).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <flowpin/sim.h>

struct size {
	unsigned long long flows;
	unsigned sites, servers;
};

static const struct size sizes[] = {
	{ 1000000, 300, 10000 }, { 3000000, 300, 10000 }, { 10000000, 300, 10000 },
	{ 1000000, 30, 1000 },	 { 1000000, 100, 3300 },
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
	bool quick = getenv("BENCH_SIM_QUICK") != NULL;

	printf("## Fleet simulator (bench/bench_sim.c)\n\n"
	       "`flowpin sim` with the default causes over 24 simulated hours (docs/sim.md), "
	       "one run per row in a child process of its own: CPU seconds (user + system), "
	       "wall seconds (on this shared machine, wall is CPU plus waiting for a core) and "
	       "peak RSS of the child, the tables built and the most flows alive at once.\n\n"
	       "| flows | sites | servers | CPU s | wall s | peak RSS MiB | tables built | peak "
	       "live "
	       "flows |\n|---|---|---|---|---|---|---|---|\n");
	fflush(stdout);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct size z = sizes[i];
		int fd[2], status;
		struct rusage ru;
		double t0 = now();
		pid_t pid;

		if (quick) {
			z.flows /= 100;
			z.sites /= 10;
			z.servers /= 10;
		}
		if (pipe(fd))
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			struct fp_sim_params p;
			struct fp_sim_result *r = calloc(1, sizeof(*r));
			unsigned long long out[2] = { 0, 0 };

			close(fd[0]);
			fp_sim_params_default(&p);
			p.flows = z.flows;
			p.sites = z.sites;
			p.servers = z.servers;
			if (!r || fp_sim_fleet_run(&p, r, NULL))
				_exit(1);
			out[0] = r->table_builds;
			out[1] = r->peak_flows;
			if (write(fd[1], out, sizeof(out)) != (ssize_t)sizeof(out))
				_exit(1);
			_exit(0);
		}
		close(fd[1]);
		unsigned long long got[2] = { 0, 0 };
		ssize_t n = read(fd[0], got, sizeof(got));

		close(fd[0]);
		if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) ||
		    n != (ssize_t)sizeof(got)) {
			printf("| %llu | %u | %u | failed | | | | |\n", z.flows, z.sites,
			       z.servers);
			return 1;
		}
		printf("| %llu | %u | %u | %.1f | %.0f | %.0f | %llu | %llu |\n", z.flows, z.sites,
		       z.servers,
		       (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
			       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
		       now() - t0, (double)ru.ru_maxrss / 1024, got[0], got[1]);
		fflush(stdout);
	}
	printf("\nGrowth: run time follows the table builds (one per server or LB change and "
	       "site: a day of deploys at 10,000 servers is about 30,000 Maglev builds of 65,537 "
	       "buckets) more than the flows; memory follows the sites' tables (each site "
	       "keeps its nodes' tables and its last plan), not the flows, which live only "
	       "while they last.\n\n");
	return 0;
}
