#!/usr/bin/env python3
"""optuna_bridge.py: Optuna's samplers for `fovea sweep`, by ask and tell.

`fovea sweep` runs this with Debian's python3 when the config's
hydra.sweeper.sampler names a sampler it does not build in (TPE, CMA-ES,
QMC, NSGA-II, ...).  The study lives in Optuna's own storage, so it can be
inspected with Optuna's tools; this process only asks for trials and tells
their outcomes, as Hydra's Optuna sweeper does in its loop:

    study = optuna.create_study(study_name, storage, sampler, directions,
                                load_if_exists=True)
    trials = [study.ask() for _ in range(batch)]
    trial._suggest(name, distribution)       # each search-space entry, in order
    trial.set_user_attr(name, value)         # each fixed entry
    study.tell(trial, values=[v]) or study.tell(trial, state=FAIL)

Protocol: one JSON object per line on stdin, one reply per line on stdout.
The first request opens the study:
    {"storage": URL, "study_name": S, "direction": "minimize"|"maximize",
     "sampler_yaml": hydra.sweeper.sampler as YAML, "seed": int or null,
     "space": [{"key", "kind": "fixed"|"choice"|"range"|"interval",
                "choices": [text], "lo", "hi", "step", "integer", "log"}]}
    -> {"ok": true, "sampler": class name, "n_existing": trials in the study}
then
    {"op": "ask", "count": k} -> {"ok": true, "trials": [{"number": n,
                                   "params": {key: text}}]}
    {"op": "tell", "number": n, "value": v}   (or "state": "fail")
                              -> {"ok": true}
    {"op": "count"}           -> {"ok": true, "n_trials": trials in the study}
Any failure replies {"ok": false, "error": message} and the process ends.
"""
import importlib
import json
import math
import sys


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def hydra_value(text):
    """A choice element as Hydra's override grammar reads it: int, float,
    bool, null, a quoted or a plain string."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    for cast in (int, float):
        try:
            v = cast(t)
            if cast is float and not math.isfinite(v) and low not in ("inf", "-inf", "nan"):
                break
            return v
        except ValueError:
            pass
    return t


def distribution(optuna, p):
    """hydra-optuna-sweeper's create_optuna_distribution_from_override."""
    d = optuna.distributions
    if p["kind"] == "choice":
        return d.CategoricalDistribution([hydra_value(c) for c in p["choices"]])
    lo, hi = p["lo"], p["hi"]
    if p["kind"] == "range":
        if p["integer"]:
            return d.IntDistribution(int(lo), int(hi), step=int(p["step"]))
        return d.FloatDistribution(float(lo), float(hi), step=float(p["step"]))
    if p["integer"]:
        return d.IntDistribution(int(lo), int(hi), log=p["log"])
    return d.FloatDistribution(float(lo), float(hi), log=p["log"])


def make_sampler(optuna, text, seed):
    import yaml

    spec = yaml.safe_load(text) if text else None
    if not spec:
        return optuna.samplers.TPESampler(seed=seed)  # the sweeper's default
    spec = dict(spec)
    target = spec.pop("_target_")
    module, _, name = target.rpartition(".")
    if not module.startswith("optuna"):
        raise ValueError(f"hydra.sweeper.sampler._target_ '{target}' is not an Optuna sampler")
    cls = getattr(importlib.import_module(module), name)
    spec = {k: v for k, v in spec.items() if not k.startswith("_")}
    if "seed" in spec or seed is not None:
        spec["seed"] = seed
    return cls(**spec)


def as_text(v):
    """The override value Hydra's sweeper writes: f"{name}={val}"."""
    return str(v)


class Bridge:
    def __init__(self, req):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.space = [(p["key"], distribution(optuna, p)) for p in req["space"] if p["kind"] != "fixed"]
        self.fixed = [(p["key"], p["choices"][0]) for p in req["space"] if p["kind"] == "fixed"]
        self.sampler = make_sampler(optuna, req.get("sampler_yaml"), req.get("seed"))
        self.study = optuna.create_study(
            study_name=req["study_name"],
            storage=req["storage"],
            sampler=self.sampler,
            direction=req["direction"],
            load_if_exists=True,
        )
        self.asked = {}

    def ask(self, count):
        out = []
        for _ in range(count):
            trial = self.study.ask()
            for key, dist in self.space:
                trial._suggest(key, dist)
            for key, value in self.fixed:
                trial.set_user_attr(key, value)
            self.asked[trial.number] = trial
            params = {key: as_text(trial.params[key]) for key, _ in self.space}
            params.update({key: value for key, value in self.fixed})
            out.append({"number": trial.number, "params": params})
        return out

    def tell(self, number, value, failed):
        trial = self.asked.pop(number)
        if failed:
            self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, values=[value])


def main():
    bridge = None
    for line in sys.stdin:
        try:
            req = json.loads(line)
            if bridge is None:
                bridge = Bridge(req)
                reply({"ok": True, "sampler": type(bridge.sampler).__name__,
                       "n_existing": len(bridge.study.trials)})
            elif req["op"] == "ask":
                reply({"ok": True, "trials": bridge.ask(int(req["count"]))})
            elif req["op"] == "tell":
                bridge.tell(int(req["number"]), req.get("value"), req.get("state") == "fail")
                reply({"ok": True})
            elif req["op"] == "count":
                reply({"ok": True, "n_trials": len(bridge.study.trials)})
            else:
                raise ValueError(f"unknown request {req['op']!r}")
        except Exception as e:  # reported by fovea, naming the config key
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
