/*
** mse.c: openretina's MSE3d (openretina.modules.losses.mse): the summed
** squared error between output and the lagged target,
** sum((output - target[:, lag:])^2) over every element.  No options.
*/
#include <stddef.h>

#include <fovea/plugin.h>

#include "lagged_target.h"

static fv_tensor *mse_loss(fv_module *m, fv_ctx *ctx, fv_tensor *output, fv_tensor *target)
{
	(void)m;
	if (loss_args_missing("MSE3d", output, target))
		return NULL;
	fv_tensor *t = lagged_target(ctx, "MSE3d", output, target);
	if (t == NULL)
		return NULL;
	return fv_sum_all(ctx, fv_square(ctx, fv_sub(ctx, output, t)));
}

static const char *const mse_names[] = {
	"MSE3d",
	"openretina.modules.losses.mse.MSE3d",
	"openretina.modules.losses.MSE3d",
	NULL,
};

static const fv_component mse_component = {
	.struct_size = sizeof(fv_component),
	.kind = FV_KIND_LOSS,
	.names = mse_names,
	.doc = "summed squared error between output and lagged target",
	.loss = mse_loss,
};

FV_PLUGIN_DEFINE("losses-mse", &mse_component);
