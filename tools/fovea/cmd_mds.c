/*
** cmd_mds.c: `fovea mds CHECKPOINT --session S --on 1,2 --off 3,4 [--off
** 5,6 ...]`, the most discriminative stimulus of a cluster of neurons
** against others (ContrastiveNeuronObjective).  The work is in
** insilico_cli.c.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "insilico_cli.h"

static const char objective_default[] =
	"{_target_: ContrastiveNeuronObjective, response_reducer: {_target_: SliceMeanReducer, "
	"axis: 0, start: 10, length: 10}}";

#define MAX_OFF 64

typedef struct mds_args {
	ins_args common;
	const char *on, *off[MAX_OFF], *temperature;
	int n_off;
} mds_args;

static int parse_args(int argc, char **argv, void *args)
{
	mds_args *a = args;
	const cli_cmd *self = &cli_cmd_mds;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool ours = strcmp(s, "--on") == 0 || strcmp(s, "--off") == 0 ||
		            strcmp(s, "--temperature") == 0;
		if (ours && i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		if (strcmp(s, "--on") == 0)
			a->on = argv[++i];
		else if (strcmp(s, "--temperature") == 0)
			a->temperature = argv[++i];
		else if (strcmp(s, "--off") == 0 && a->n_off == MAX_OFF)
			return cli_usage_error(self, "at most %d --off clusters", MAX_OFF);
		else if (strcmp(s, "--off") == 0)
			a->off[a->n_off++] = argv[++i];
		else {
			int rc = ins_parse_common(&a->common, argc, argv, &i);
			if (rc != CLI_OK)
				return rc;
		}
	}
	int rc = ins_check_args(&a->common);
	if (rc == CLI_OK && (a->on == NULL || a->n_off == 0))
		rc = cli_usage_error(self, "--on and at least one --off cluster are required");
	return rc;
}

/* Check a cluster's indices and append them to `buf` as "[1, 2]". */
static int append_cluster(ins_session *s, const char *text, char *buf, size_t size)
{
	int64_t *idx = NULL;
	int n = 0;
	int rc = ins_parse_indices(&cli_cmd_mds, "cluster", text, &idx, &n);
	size_t len = strlen(buf);
	for (int k = 0; rc == CLI_OK && k < n; k++) {
		rc = ins_check_neuron(s, idx[k], "cluster neuron");
		len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%lld", k ? ", " : "[",
		                        (long long)idx[k]);
	}
	if (rc == CLI_OK)
		len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "]");
	free(idx);
	if (rc == CLI_OK && len >= size)
		rc = cli_fail("the clusters are too long");
	return rc;
}

static int run_clusters(ins_session *s, const void *args)
{
	const mds_args *a = args;
	char on[2048] = "", off[8192] = "[", set_on[2100], set_off[8300], set_key[600], set_t[128];
	char stem[2600], title[2600], extra[10500];
	int rc = append_cluster(s, a->on, on, sizeof on);
	for (int k = 0; rc == CLI_OK && k < a->n_off; k++) {
		if (k > 0)
			strcat(off, ", ");
		rc = append_cluster(s, a->off[k], off, sizeof off - 2);
	}
	if (rc != CLI_OK)
		return rc;
	strcat(off, "]");
	snprintf(set_on, sizeof set_on, "++objective.on_cluster_idc=%s", on);
	snprintf(set_off, sizeof set_off, "++objective.off_cluster_idc_list=%s", off);
	snprintf(set_key, sizeof set_key, "++objective.data_key='%s'", a->common.session);
	snprintf(set_t, sizeof set_t, "++objective.temperature=%s", a->temperature ? a->temperature : "");
	const char *const overrides[] = {set_on, set_off, set_key, set_t};
	/* the stem names the ON cluster: mds_S_1-2 */
	snprintf(stem, sizeof stem, "mds_%s_%s", a->common.session, a->on);
	for (char *p = stem; *p; p++)
		*p = *p == ',' ? '-' : *p;
	snprintf(title, sizeof title, "MDS %s on %s", a->common.session, on);
	snprintf(extra, sizeof extra, "\"on_cluster\": %s,\n  \"off_clusters\": %s", on, off);
	ins_job job = {.stem = stem, .title = title, .objective_overrides = overrides,
	               .n_objective_overrides = a->temperature ? 4 : 3, .neuron = -1,
	               .json_extra = extra};
	return ins_run(s, &job);
}

static int run_mds(int argc, char **argv)
{
	mds_args a = {.common = {.cmd = &cli_cmd_mds}};
	return ins_main(argc, argv, &a.common, &a, objective_default, parse_args, run_clusters);
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
	         "  --on LIST          neuron indices of the cluster to drive, e.g. 1,2\n"
	         "  --off LIST         a cluster to discriminate against (repeatable)\n"
	         "  --temperature T    the softmax temperature (default 1.6)\n"
	         INS_COMMON_USAGE,
	.run = run_mds,
};
