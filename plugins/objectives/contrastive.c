/*
** contrastive.c: ContrastiveNeuronObjective, the most discriminative
** stimulus of a cluster of neurons against others (openretina.insilico.
** stimulus_optimization.objective.ContrastiveNeuronObjective; Burg et al.,
** "Most discriminative stimuli for functional cell type clustering").
**
**   score     = response_reducer(model(stimulus, data_key).squeeze(0))
**   on        = score[on_cluster_idc].mean()
**   off_j     = score[off_cluster_idc_list[j]].mean()
**   objective = on/t - logsumexp([on, off_1, ..., off_k]/t) + log(k + 1)
**
** i.e. the log of the softmax probability of the on cluster at temperature
** t, shifted so that equal scores give 0.  log(k + 1) is rounded to float
** as openretina computes it from a default-dtype tensor.
*/
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "objective_common.h"

#define NAME "ContrastiveNeuronObjective"

typedef struct cluster {
	size_t n;
	int64_t *idx;
} cluster;

typedef struct contrastive {
	/* the options; the nodes are valid during create() */
	const fv_config_node *on_cluster_idc;
	const fv_config_node *off_cluster_idc_list;
	const char *data_key; /* NULL: none */
	const fv_config_node *response_reducer;
	double temperature;
	/* what create() builds */
	size_t n_clusters;   /* [0] is the on cluster, then the off clusters */
	cluster *clusters;
	fv_module *reducer;  /* child "response_reducer" */
} contrastive;

static const fv_option contrastive_options[] = {
	FV_OPT("on_cluster_idc", NODE, contrastive, on_cluster_idc, NULL,
	       "indices of the neurons of the cluster to drive", .flags = FV_OPT_REQUIRED),
	FV_OPT("off_cluster_idc_list", NODE, contrastive, off_cluster_idc_list, NULL,
	       "a list of index lists, one per cluster to discriminate against",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("data_key", STRING, contrastive, data_key, NULL,
	       "the session the neurons belong to (null: the model's default output)",
	       .flags = FV_OPT_REQUIRED | FV_OPT_NULLABLE),
	FV_OPT("response_reducer", NODE, contrastive, response_reducer, NULL,
	       "a reducer spec (e.g. SliceMeanReducer over time) giving one score per neuron",
	       .flags = FV_OPT_REQUIRED),
	FV_OPT("temperature", FLOAT, contrastive, temperature, "1.6", "softmax temperature (> 0)"),
	{0},
};

/* The cluster index lists, which the plugin allocated. */
static void contrastive_destroy(fv_module *m)
{
	contrastive *o = fv_module_priv(m);
	for (size_t i = 0; i < o->n_clusters; i++)
		free(o->clusters[i].idx);
	free(o->clusters);
}

static fv_status read_clusters(contrastive *o)
{
	const fv_config_node *off = o->off_cluster_idc_list;
	if (fv_node_kind(off) != FV_NODE_SEQ || fv_node_size(off) == 0)
		return fv_error_at(off, FV_ERR_CONFIG,
		                   NAME ": off_cluster_idc_list: expected a non-empty list of index lists");
	size_t n = fv_node_size(off) + 1;
	o->clusters = calloc(n, sizeof *o->clusters);
	if (o->clusters == NULL)
		return fv_error(FV_ERR_NOMEM, NAME ": out of memory");
	o->n_clusters = n;
	fv_status st = obj_int_list(o->on_cluster_idc, NAME, "on_cluster_idc", &o->clusters[0].idx,
	                            &o->clusters[0].n);
	for (size_t j = 1; j < n && st == FV_OK; j++)
		st = obj_int_list(fv_node_at(off, j - 1), NAME, "off_cluster_idc_list",
		                  &o->clusters[j].idx, &o->clusters[j].n);
	return st;
}

static fv_status contrastive_create(fv_module *m, const void *opts, const fv_build_args *args)
{
	(void)opts;
	contrastive *o = fv_module_priv(m);
	if (!(o->temperature > 0))
		return fv_error(FV_ERR_CONFIG, NAME ": temperature must be > 0, got %g", o->temperature);
	fv_status st = read_clusters(o);
	if (st != FV_OK)
		return st;
	return obj_build_reducer(m, NAME, o->response_reducer, args, &o->reducer);
}

/* log(sum(exp(a))) over a 1-D tensor, shifted by its (constant) maximum so
** that exp cannot overflow; the gradient is softmax(a), as torch's. */
static fv_tensor *logsumexp(fv_ctx *ctx, fv_tensor *a)
{
	if (a == NULL)
		return NULL;
	double mx = -INFINITY;
	for (int64_t i = 0; i < a->numel; i++)
		mx = a->data[i] > mx ? a->data[i] : mx;
	if (!isfinite(mx))
		mx = 0;
	fv_tensor *s = fv_sum_all(ctx, fv_exp(ctx, fv_add_scalar(ctx, a, -mx)));
	return fv_add_scalar(ctx, fv_log(ctx, s), mx);
}

static fv_tensor *contrastive_objective(fv_module *m, fv_ctx *ctx, fv_model *model,
                                        fv_tensor *stimulus)
{
	const contrastive *o = fv_module_priv(m);
	fv_tensor *responses = obj_model_forward(ctx, NAME, model, stimulus, o->data_key);
	fv_tensor *score = obj_reduce(ctx, NAME, o->reducer, responses);
	if (score == NULL)
		return NULL;
	fv_tensor **means = fv_ctx_alloc(ctx, o->n_clusters * sizeof *means);
	if (means == NULL)
		return NULL;
	const int64_t one = 1;
	for (size_t j = 0; j < o->n_clusters; j++) {
		const cluster *c = &o->clusters[j];
		fv_tensor *sel = obj_select(ctx, NAME, "neuron", score, 0, c->n, c->idx);
		if (sel == NULL)
			return NULL;
		/* score[idc].mean(): over everything left, whatever the reducer kept */
		means[j] = fv_reshape(ctx, fv_mean_all(ctx, sel), 1, &one);
	}
	double inv_t = 1.0 / o->temperature;
	fv_tensor *all = fv_concat(ctx, (int)o->n_clusters, means, 0);
	fv_tensor *on = fv_mul_scalar(ctx, means[0], inv_t);
	fv_tensor *lse = logsumexp(ctx, fv_mul_scalar(ctx, all, inv_t));
	double log_k = (float)log((double)o->n_clusters);
	return fv_reshape(ctx, fv_add_scalar(ctx, fv_sub(ctx, on, lse), log_k), 0, NULL);
}

static const char *const contrastive_names[] = {
	NAME,
	"openretina.insilico.stimulus_optimization.objective.ContrastiveNeuronObjective",
	"openretina.insilico.ContrastiveNeuronObjective",
	NULL,
};

static const fv_component contrastive_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_OBJECTIVE,
	.names = contrastive_names,
	.doc = "most discriminative stimulus: softmax log-probability of one neuron cluster "
	       "against others",
	.options = contrastive_options,
	.priv_size = sizeof(contrastive),
	.create = contrastive_create,
	.destroy = contrastive_destroy,
	.objective = contrastive_objective,
};

FV_PLUGIN_DEFINE("objectives-contrastive", &contrastive_component);
