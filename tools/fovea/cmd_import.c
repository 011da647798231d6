/*
** cmd_import.c: `fovea import MODEL.ckpt [-o MODEL.safetensors]`, an
** openretina PyTorch Lightning checkpoint converted into a fovea checkpoint.
**
** Every command that takes a checkpoint also takes a .ckpt directly; import
** is for keeping the converted file, and for SingleCellSeparatedLNP files,
** which hold no hyper_parameters and need the model's constructor
** arguments from --model.  The model is built and loaded before anything is
** written, so a checkpoint of a model fovea cannot build (an unknown core
** or readout) is refused with the missing component named, and no file
** appears.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fovea/trainer.h"

typedef struct import_args {
	const char *ckpt, *output, *model;
} import_args;

static int parse_args(int argc, char **argv, import_args *a)
{
	const cli_cmd *self = &cli_cmd_import;
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool takes_value = strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0 ||
		                   strcmp(s, "--model") == 0;
		if (takes_value && i + 1 >= argc)
			return cli_usage_error(self, "%s needs a value", s);
		if (strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0)
			a->output = argv[++i];
		else if (strcmp(s, "--model") == 0)
			a->model = argv[++i];
		else if (s[0] == '-' && s[1] != '\0')
			return cli_usage_error(self, "unknown option '%s'", s);
		else if (a->ckpt == NULL)
			a->ckpt = s;
		else
			return cli_usage_error(self, "unexpected argument '%s'", s);
	}
	if (a->ckpt == NULL)
		return cli_usage_error(self, "expected a .ckpt file");
	return CLI_OK;
}

/* MODEL.ckpt -> MODEL.safetensors (malloc'd). */
static char *default_output(const char *ckpt)
{
	size_t n = strlen(ckpt);
	if (n > 5 && strcmp(ckpt + n - 5, ".ckpt") == 0)
		n -= 5;
	char *out = malloc(n + sizeof ".safetensors");
	if (out != NULL)
		snprintf(out, n + sizeof ".safetensors", "%.*s.safetensors", (int)n, ckpt);
	return out;
}

static int count_param(void *ud, const char *name, fv_tensor *t, bool is_param)
{
	(void)name;
	if (is_param)
		*(int64_t *)ud += t->numel;
	return 0;
}

static int import(fv_registry *reg, const import_args *a, const char *out)
{
	fv_checkpoint *c = fv_checkpoint_import(a->ckpt, a->model);
	if (c == NULL)
		return cli_fail("%s", fv_errmsg());
	fv_config *cfg = NULL;
	fv_module *model = fv_model_load(reg, c, &cfg);
	int rc = model != NULL ? CLI_OK : cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK && fv_checkpoint_write(c, out) != FV_OK)
		rc = cli_fail("%s", fv_errmsg());
	if (rc == CLI_OK) {
		const fv_data_info *info = fv_checkpoint_data_info(c);
		const fv_config_node *target = fv_node_path(fv_config_root(cfg), "model._target_");
		int64_t n_params = 0, n_neurons = 0;
		fv_module_foreach_tensor(model, count_param, &n_params);
		for (size_t i = 0; i < info->n_sessions; i++)
			n_neurons += info->n_neurons[i];
		printf("%s: %s\n", a->ckpt, target != NULL ? fv_node_text(target) : "UnifiedCoreReadout");
		printf("  input (channels, height, width): %s\n", fv_shape_str(3, info->input_shape));
		printf("  %zu session%s, %lld neurons:\n", info->n_sessions,
		       info->n_sessions == 1 ? "" : "s", (long long)n_neurons);
		for (size_t i = 0; i < info->n_sessions; i++)
			printf("    %s: %lld\n", info->sessions[i], (long long)info->n_neurons[i]);
		printf("  %lld parameters\n", (long long)n_params);
		if (fv_safetensors_meta(fv_checkpoint_tensors(c), "pretrained_performance") != NULL)
			printf("  openretina's test performance kept (metadata pretrained_performance)\n");
		printf("wrote %s\n", out);
	}
	fv_module_free(model);
	fv_config_free(cfg);
	fv_checkpoint_close(c);
	return rc;
}

static int run_import(int argc, char **argv)
{
	import_args a = {0};
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc;
	char *out = a.output != NULL ? NULL : default_output(a.ckpt);
	if (a.output == NULL && out == NULL)
		return cli_fail("out of memory");
	fv_registry *reg = cli_load_registry();
	rc = reg != NULL ? import(reg, &a, a.output != NULL ? a.output : out) : CLI_FAILED;
	fv_registry_free(reg);
	free(out);
	return rc;
}

const cli_cmd cli_cmd_import = {
	.name = "import",
	.summary = "convert an openretina .ckpt into a fovea checkpoint",
	.usage = "fovea import MODEL.ckpt [-o MODEL.safetensors] [--model MODEL.yaml]\n"
	         "\n"
	         "Read an openretina PyTorch Lightning checkpoint without executing anything\n"
	         "in it, rebuild its model, and write it as a fovea checkpoint (default: the\n"
	         "same name ending in .safetensors).  Prints the model class, its sessions\n"
	         "and neurons and its parameter count.  Every command that takes a checkpoint\n"
	         "also takes a .ckpt as it is; import keeps the conversion.  MODEL.ckpt may\n"
	         "also be the name of one of openretina's published models (`fovea models`).\n"
	         "\n"
	         "  --model MODEL.yaml  the model's constructor arguments as a _target_ map,\n"
	         "                      for a checkpoint without hyper_parameters\n"
	         "                      (openretina's SingleCellSeparatedLNP saves none)\n",
	.run = run_import,
};
