#!/usr/bin/env python3
"""optuna_replay.py SWEEP_DIR BATCH SEED STARTUP: checks a `fovea sweep`
with Optuna's TPESampler against Optuna run here, independently of fovea.

A fresh in-memory study with TPESampler(seed=SEED, n_startup_trials=STARTUP)
is asked for trials in batches of BATCH (Hydra's Optuna sweeper with
n_jobs = BATCH; fovea's batch is its number of ranks), suggesting the
search space of tests/cli/mpi_test.sh in order, and told the objective (or
the failure) fovea recorded for the trial of that number.  Every trial's
parameters must be the ones fovea ran, and Optuna's storage (the summary's
`storage`) must hold the same trials with the same states and values.
"""
import json
import math
import sys

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

optuna.logging.set_verbosity(optuna.logging.WARNING)
sweep_dir, batch, seed, startup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
summary = json.load(open(sweep_dir + "/summary.json"))
records = summary["trials"]
space = {  # as mpi_test.sh's sweep_optuna case writes it
    "optimizer.lr": CategoricalDistribution([0.01, "fast", 0.003]),
    "optimizer.weight_decay": FloatDistribution(1e-4, 1e-1, log=True),
    "seed": IntDistribution(1, 3, step=1),
}
study = optuna.create_study(
    sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
    direction=summary["direction"],
)
assert [r["number"] for r in records] == list(range(len(records))), records
for first in range(0, len(records), batch):
    group = records[first : first + batch]
    asked = [study.ask() for _ in group]
    for trial, record in zip(asked, group):
        for key, dist in space.items():
            trial._suggest(key, dist)
        got = {k: str(v) for k, v in trial.params.items()}
        assert got == record["params"], (trial.number, got, record["params"])
    for trial, record in zip(asked, group):
        if record["status"] == "complete":
            study.tell(trial, values=[record["objective"]])
        else:
            assert record["status"] == "failed", record
            study.tell(trial, state=optuna.trial.TrialState.FAIL)

stored = optuna.load_study(study_name=summary["study_name"], storage=summary["storage"]).trials
assert len(stored) == len(records), (len(stored), len(records))
for t, record in zip(stored, records):
    want = "COMPLETE" if record["status"] == "complete" else "FAIL"
    assert t.state.name == want, (t.number, t.state.name, want)
    assert {k: str(v) for k, v in t.params.items()} == record["params"], t.number
    if want == "COMPLETE":
        assert math.isclose(t.value, record["objective"], rel_tol=1e-12), (t.value, record)
print(f"{len(records)} trials, batches of {batch}: fovea's parameters are Optuna's; "
      f"{sum(r['status'] == 'failed' for r in records)} failed")
