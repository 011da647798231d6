#!/usr/bin/env python3
"""make_torch_ckpts.py: Lightning-style checkpoints of openretina's other model
families, written by PyTorch from openretina's own modules, with the outputs
PyTorch computes for them (the expected values of ckpt_test.sh's parity
cases).  Nothing here runs fovea.

    /usr/bin/python3 make_torch_ckpts.py --openretina SRC   (in tests/data/ckpt)

SRC is openretina's source at commit 0aadd97 (the directory holding the
`openretina` package; tools/bench/torch_reference.py explains the import).
For each model NAME it writes NAME.ckpt, NAME.stimulus.npy (a batch of two)
and NAME.expected_<session>.npy (eval-mode model(stimulus, data_key=session)).

The checkpoint holds what UnifiedCoreReadout's save_hyperparameters() and
Lightning's ModelCheckpoint store (epoch, global_step, the Lightning
version, state_dict, hparams_name, hyper_parameters), with plain dicts and
lists where a Hydra run has DictConfig/ListConfig.  Every parameter and
batch-norm statistic is drawn at random first, so that a wrong name, shape
or layout cannot go unnoticed.

  gru_core_readout   ConvGRUCore (use_gru, use_projections) +
                     MultiGaussianMaskReadout, shaped like
                     configs/model/GRU_core_readout.yaml but small; its core
                     spec also carries a key ConvGRUCore only takes through
                     **kwargs (maxpool_every_n_layers), as a spec shared
                     with SimpleCoreWrapper does
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools", "bench"))
from torch_reference import import_openretina, load_class  # noqa: E402

MODELS = {
    "gru_core_readout": {
        "in_shape": [2, 30, 14, 12],
        "hidden_channels": [6, 8],
        "n_neurons_dict": {"session_a": 5, "session_b": 7},
        "core": {
            "_target_": "openretina.modules.core.gru_core.ConvGRUCore",
            "_convert_": "object",
            "temporal_kernel_sizes": [9, 5],
            "spatial_kernel_sizes": [5, 3],
            "gamma_hidden": 0.0,
            "gamma_input": 0.3,
            "gamma_in_sparse": 1.0,
            "gamma_temporal": 40.0,
            "bias": True,
            "input_padding": 0,
            "hidden_padding": [0, 1, 1],
            "use_gru": True,
            "use_projections": True,
            "batch_adaptation": False,
            "convolution_type": "custom_separable",
            "maxpool_every_n_layers": None,
            "gru_kwargs": {"rec_channels": 8, "input_kern": 3, "rec_kern": 3, "groups": 1,
                           "gamma_rec": 1, "pad_input": True},
        },
        "readout": {
            "_target_": "openretina.modules.readout.multi_readout.MultiGaussianMaskReadout",
            "_convert_": "object",
            "scale": True,
            "bias": True,
            "gaussian_mean_scale": 6.0,
            "gaussian_var_scale": 4.0,
            "positive": True,
            "mask_l1_reg": 1.0,
            "feature_weights_l1_reg": 1.0,
            "readout_reg_avg": False,
        },
    },
}


def build(spec, torch):
    in_shape = tuple(spec["in_shape"])
    neurons = spec["n_neurons_dict"]
    core_spec = dict(spec["core"], channels=[in_shape[0], *spec["hidden_channels"]])
    args = {k: v for k, v in core_spec.items() if k not in ("_target_", "_convert_")}
    core = load_class(core_spec["_target_"])(**args, n_neurons_dict=neurons)
    with torch.no_grad():
        readout_in = list(core(torch.zeros((1,) + in_shape)).shape[1:])
    readout_spec = dict(spec["readout"], in_shape=readout_in)
    args = {k: v for k, v in readout_spec.items() if k not in ("_target_", "_convert_")}
    readout = load_class(readout_spec["_target_"])(**args, n_neurons_dict=neurons)
    return core, readout, core_spec, readout_spec


def randomise(modules, torch):
    """Every float parameter and buffer moved off its initial value; the
    batch-norm variances kept positive."""
    with torch.no_grad():
        for m in modules:
            for name, t in list(m.named_parameters()) + list(m.named_buffers()):
                if not t.is_floating_point():
                    continue
                if name.endswith("running_var"):
                    t.copy_(0.5 + torch.rand_like(t))
                else:
                    t.add_(0.1 * torch.randn_like(t))


def write(name, spec, torch):
    torch.manual_seed(20261207)
    core, readout, core_spec, readout_spec = build(spec, torch)
    randomise([core, readout], torch)
    core.eval()
    readout.eval()
    in_shape = tuple(spec["in_shape"])
    stimulus = torch.randn((2,) + in_shape)
    np.save(os.path.join(HERE, f"{name}.stimulus.npy"), stimulus.numpy().astype(np.float32))
    with torch.no_grad():
        for session in spec["n_neurons_dict"]:
            out = readout(core(stimulus), data_key=session)
            np.save(os.path.join(HERE, f"{name}.expected_{session}.npy"),
                    out.numpy().astype(np.float32))
    state = {f"core.{k}": v for k, v in core.state_dict().items()}
    state.update({f"readout.{k}": v for k, v in readout.state_dict().items()})
    neurons = spec["n_neurons_dict"]
    data_info = {
        "n_neurons_dict": dict(neurons),
        "mean_activity_dict": {s: torch.full((n,), 0.5) for s, n in neurons.items()},
        "input_shape": (in_shape[0], in_shape[2], in_shape[3]),
        "sessions_kwargs": {s: {} for s in neurons},
        "stim_mean": 0.0,
        "stim_std": 1.0,
    }
    hyper = {
        "core": core_spec,
        "readout": readout_spec,
        "learning_rate": 0.01,
        "loss": None,
        "evaluation_loss": None,
        "data_info": data_info,
        "in_shape": in_shape,
        "n_neurons_dict": dict(neurons),
        "hidden_channels": tuple(spec["hidden_channels"]),
    }
    ckpt = {"epoch": 0, "global_step": 0, "pytorch-lightning_version": "2.5.0",
            "state_dict": state, "hparams_name": "kwargs", "hyper_parameters": hyper}
    torch.save(ckpt, os.path.join(HERE, f"{name}.ckpt"))
    print(f"wrote {name}.ckpt: {len(state)} tensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openretina", required=True, help="openretina source directory")
    args = ap.parse_args()
    import_openretina(args.openretina)
    import torch

    for name, spec in MODELS.items():
        write(name, spec, torch)


if __name__ == "__main__":
    main()
