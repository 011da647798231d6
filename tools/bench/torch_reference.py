#!/usr/bin/env python3
"""PyTorch's side of fovea-bench: openretina's own modules, timed the same way.

    /usr/bin/python3 tools/bench/torch_reference.py --openretina SRC \
        --workload hoefling,gru --task fwd,train,stim --threads 1,2

SRC is a checkout of openretina's source (the directory holding the
`openretina` package), imported without installing it.  Its training-only
dependencies (Lightning, Hydra, OmegaConf, jaxtyping, matplotlib) are not
needed to build a core and a readout; where they are missing, an inert
stand-in module is put in their place so that the imports succeed.

Each workload is fovea-bench's configs/bench/NAME.yaml (or a path): the
model is built from its `model` spec as UnifiedCoreReadout does (core
channels (in_shape[0], *hidden_channels), the readout's in_shape from a
forward of the core), on a random batch of `batch` clips.  The tasks are
fovea-bench's:
  fwd    eval-mode forward of one session under torch.no_grad()
  train  train-mode forward, PoissonLoss3d + core and readout regularizers,
         backward, gradient-norm clipping to 1.0, AdamW step, zero_grad
  stim   batch 1, eval mode: forward, the mean response of the session's
         first neuron, gradient with respect to the stimulus only, an Adam
         step on the stimulus
Medians in milliseconds, one line per workload, task and thread count.
"""
import argparse
import importlib
import importlib.abc
import importlib.machinery
import os
import statistics
import sys
import time
import types

import yaml

# Top-level packages openretina imports that building its modules never uses.
STAND_INS = ("matplotlib", "jaxtyping", "lightning", "hydra", "omegaconf", "einops",
             "seaborn", "wandb", "mlflow", "tqdm", "h5py", "huggingface_hub")


class _Anything(types.ModuleType):
    """A module, a class, a decorator and a type annotation at once."""

    def __init__(self, name="stand_in"):
        super().__init__(name)
        self.__path__ = []

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        value = _Anything(f"{self.__name__}.{name}")
        setattr(self, name, value)
        return value

    def __getitem__(self, item):
        return self

    def __call__(self, *args, **kwargs):
        # Used as a decorator: keep the decorated function.
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return self

    def __or__(self, other):  # `Float[...] | None` in annotations
        return self

    __ror__ = __or__

    def __mro_entries__(self, bases):
        return (object,)


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top not in STAND_INS:
            return None
        if not isinstance(sys.modules.get(top, _Anything()), _Anything):
            return None
        try:  # the real package wins where it is installed
            sys.meta_path.remove(self)
            if top not in sys.modules and importlib.util.find_spec(top) is not None:
                return None
        finally:
            sys.meta_path.insert(0, self)
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return _Anything(spec.name)

    def exec_module(self, module):
        pass


def import_openretina(src):
    """Make openretina's source at `src` importable, with stand-ins for what
    building its modules does not need."""
    sys.path.insert(0, src)
    if not any(isinstance(f, _StandInFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _StandInFinder())


def load_class(target):
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def component_args(spec):
    return {k: v for k, v in spec.items() if k not in ("_target_", "_convert_")}


def build_model(model_spec, torch):
    in_shape = tuple(model_spec["in_shape"])
    neurons = dict(model_spec["n_neurons_dict"])
    core_args = component_args(model_spec["core"])
    core_args["channels"] = (in_shape[0], *model_spec["hidden_channels"])
    core = load_class(model_spec["core"]["_target_"])(**core_args, n_neurons_dict=neurons)
    with torch.no_grad():
        core_out = core(torch.zeros((1,) + in_shape)).shape[1:]
    readout_args = component_args(model_spec["readout"])
    readout_args["in_shape"] = tuple(core_out)
    readout = load_class(model_spec["readout"]["_target_"])(
        **readout_args, n_neurons_dict=neurons)
    return core, readout


def median_ms(fn, repeats):
    fn()  # the first call allocates; it is not timed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_workload(path, tasks, threads, repeats, torch):
    with open(path) as f:
        spec = yaml.safe_load(f)
    model_spec, batch, session = spec["model"], spec["batch"], spec["session"]
    from openretina.modules.losses import PoissonLoss3d

    torch.manual_seed(0)
    core, readout = build_model(model_spec, torch)
    params = list(core.parameters()) + list(readout.parameters())
    opt = model_spec["optimizer"]
    optimizer = torch.optim.AdamW(params, lr=opt["lr"], betas=tuple(opt["betas"]),
                                  eps=opt["eps"], weight_decay=opt["weight_decay"])
    loss_fn = PoissonLoss3d()
    in_shape = tuple(model_spec["in_shape"])
    x = torch.randn((batch,) + in_shape)
    with torch.no_grad():
        t_out = readout(core(x[:1]), data_key=session).shape[1]
    n = model_spec["n_neurons_dict"][session]
    y = torch.poisson(torch.ones(batch, t_out, n))

    def forward():
        core.eval(), readout.eval()
        with torch.no_grad():
            readout(core(x), data_key=session)

    def train():
        core.train(), readout.train()
        out = readout(core(x), data_key=session)
        loss = loss_fn(out, y) + core.regularizer() + readout.regularizer(session)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    stim = torch.randn((1,) + in_shape, requires_grad=True)
    stim_opt = torch.optim.Adam([stim], lr=0.1)

    def stimulus():
        core.eval(), readout.eval()
        for p in params:
            p.requires_grad_(False)
        out = readout(core(stim), data_key=session)
        (-out[..., 0].mean()).backward()
        stim_opt.step()
        stim_opt.zero_grad(set_to_none=True)
        for p in params:
            p.requires_grad_(True)

    name = os.path.splitext(os.path.basename(path))[0]
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for task in tasks:
            fn = {"fwd": forward, "train": train, "stim": stimulus}[task]
            ms = median_ms(fn, repeats if task != "stim" else 5 * repeats)
            print(f"torch {torch.__version__} {name:10s} {task:6s} threads {n_threads}  "
                  f"{ms:9.2f} ms", flush=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--openretina", required=True, help="openretina source directory")
    ap.add_argument("--workload", default="hoefling,gru")
    ap.add_argument("--task", default="fwd,train,stim")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.openretina, "openretina")):
        sys.exit(f"torch_reference: {args.openretina}: expected openretina's source directory "
                 "(one holding the 'openretina' package)")
    import_openretina(args.openretina)
    import torch

    tasks = args.task.split(",")
    for t in tasks:
        if t not in ("fwd", "train", "stim"):
            sys.exit(f"torch_reference: --task {t}: expected fwd, train or stim")
    threads = [int(t) for t in args.threads.split(",")]
    for w in args.workload.split(","):
        path = w if w.endswith(".yaml") else os.path.join(here, "..", "..", "configs", "bench",
                                                          w + ".yaml")
        if not os.path.isfile(path):
            sys.exit(f"torch_reference: --workload {w}: no such file {path}")
        run_workload(path, tasks, threads, args.repeats, torch)


if __name__ == "__main__":
    main()
