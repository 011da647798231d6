/*
** cmd_mds.c: `fovea mds CHECKPOINT --session S --on 1,2 --off 3,4 [--off
** 5,6 ...]`, the most discriminative stimulus of a cluster of neurons
** against others (ContrastiveNeuronObjective).  The work is libfovea's
** fv_optimize_from_config.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insilico_cli.h"

#define MAX_OFF 64

typedef struct mds_args {
	ins_args common;
	const char *on, *off[MAX_OFF], *temperature;
	int n_off;
	char set_temperature[256]; /* the override --temperature becomes */
} mds_args;

static int set_option(void *ud, const char *name, const char *value)
{
	mds_args *a = ud;
	if (strcmp(name, "--on") == 0)
		a->on = value;
	else if (strcmp(name, "--temperature") == 0)
		a->temperature = value;
	else if (a->n_off == MAX_OFF)
		return cli_usage_error(&cli_cmd_mds, "at most %d --off clusters", MAX_OFF);
	else
		a->off[a->n_off++] = value;
	return CLI_OK;
}

static int parse_args(int argc, char **argv, mds_args *a, fv_indices *on, fv_indices *off)
{
	static const char *const names[] = {"--on", "--off", "--temperature", NULL};
	const cli_cmd *self = &cli_cmd_mds;
	ins_own own = {names, set_option, a, NULL};
	int rc = ins_parse(&a->common, argc, argv, &own);
	if (rc == CLI_OK && a->common.session == NULL)
		rc = cli_usage_error(self, "--session is required (whose readout to use)");
	if (rc == CLI_OK && (a->on == NULL || a->n_off == 0))
		rc = cli_usage_error(self, "--on and at least one --off cluster are required");
	if (rc == CLI_OK)
		rc = ins_parse_indices(self, "--on", "neuron", a->on, false, on);
	for (int k = 0; rc == CLI_OK && k < a->n_off; k++)
		rc = ins_parse_indices(self, "--off", "neuron", a->off[k], false, &off[k]);
	/* the flag wins over the config's temperature, as an override given last */
	char *set_t = a->set_temperature;
	size_t n = sizeof a->set_temperature;
	if (rc == CLI_OK && a->temperature != NULL) {
		if (snprintf(set_t, n, "++objective.temperature=%s", a->temperature) >= (int)n)
			return cli_usage_error(self, "--temperature: '%s' is not a number", a->temperature);
		a->common.overrides[a->common.n_overrides++] = set_t;
	}
	return rc;
}

static int run_mds(int argc, char **argv)
{
	mds_args a = {.common = {.cmd = &cli_cmd_mds}};
	fv_indices off[MAX_OFF] = {{0}};
	fv_insilico_job job = {.kind = FV_INSILICO_MDS, .off = off};
	int rc = parse_args(argc, argv, &a, &job.on, off);
	job.n_off = (size_t)a.n_off;
	if (rc == CLI_OK)
		rc = ins_run(&a.common, &job);
	free((void *)job.on.v);
	for (int k = 0; k < a.n_off; k++)
		free((void *)off[k].v);
	ins_args_free(&a.common);
	return rc;
}

const cli_cmd cli_cmd_mds = {
	.name = "mds",
	.summary = "most discriminative stimulus of a cluster of neurons",
	.usage = "fovea mds CHECKPOINT --session S --on LIST --off LIST [--off LIST ...]\n"
	         "          [--temperature T] [CONFIG.yaml] [key=value ...]\n"
	         "\n"
	         "Optimise a stimulus that drives the ON cluster of neurons of session S\n"
	         "more than every OFF cluster (ContrastiveNeuronObjective: on/T -\n"
	         "logsumexp([on, off_1..k]/T) + log(k+1), each cluster's score the mean of\n"
	         "its neurons' reduced responses).  Writes DIR/mds_S_ON.{npy,png,json}\n"
	         "(ON with '-' for ','), as `fovea mei` writes its files; the JSON records\n"
	         "the clusters.\n"
	         "\n"
	         "  --session S        the session (readout) whose neurons are compared\n"
	         "  --on LIST          neuron indices of the cluster to drive, e.g. 1,2\n"
	         "  --off LIST         a cluster to discriminate against (repeatable)\n"
	         "  --temperature T    the softmax temperature (default 1.6)\n"
	         INS_COMMON_USAGE,
	.run = run_mds,
	.max_memory = true,
};
