/*
** cli_checkpoint.c: the checkpoint argument the commands share.  It is a
** fovea checkpoint (.safetensors), an openretina Lightning .ckpt, or the
** name of one of openretina's published models (`fovea models`), which
** libfovea resolves in openretina's cache and downloads when absent.  A
** .ckpt without hyper_parameters (openretina's SingleCellSeparatedLNP) needs
** its model from --model MODEL.yaml.
*/
#include "cmd.h"

fv_checkpoint *cli_open_checkpoint(const char *path, const char *model_yaml)
{
	fv_checkpoint *c = model_yaml != NULL ? fv_checkpoint_import(path, model_yaml)
	                                      : fv_checkpoint_open(path);
	if (c == NULL)
		cli_fail("%s", fv_errmsg());
	return c;
}
