#!/usr/bin/env python3
"""make_ckpt_meta_seeds.py: the seed corpus of fuzz_ckpt_meta (corpus/ckpt_meta/).

Each seed is a byte of present keys (bit 0 format, bit 1 data_info, bit 2
trainer_state, bit 3 a foreign format) and then data_info and
trainer_state separated by a NUL, as fuzz_ckpt_meta.c reads them.  The
values are those of a checkpoint `fovea train` wrote for the tests' tiny
data set, and the reproducers of issue 12 items 2 and 3 (no data_info,
`sessions: []`).

    python3 tests/fuzz/make_ckpt_meta_seeds.py tests/fuzz/corpus/ckpt_meta
"""
import json
import os
import sys

INFO = {
    "sessions": ["session_0", "session_1"],
    "n_neurons_dict": {"session_0": 3, "session_1": 4},
    "mean_activity_dict": {"session_0": [0.958, 0.996, 0.917],
                           "session_1": [1.054, 0.954, 1.071, 1.096]},
    "input_shape": [1, 6, 5],
    "stim_mean": 0.0,
    "stim_std": 1.0,
}
STATE = {
    "epochs_done": 3, "global_step": 12, "seed": 42, "lr": 0.02,
    "best_value": 0.0358, "best_epoch": 2, "stopped": False,
    "scheduler": {"last_epoch": 3, "num_bad_epochs": 0, "cooldown_counter": 0, "best": 0.0358},
    "early_stopping": {"wait_count": 0, "best": None},
}


def seed(keys, info, state):
    return bytes([keys]) + info.encode() + b"\0" + state.encode()


def main(out):
    os.makedirs(out, exist_ok=True)
    info, state = json.dumps(INFO), json.dumps(STATE)
    empty = dict(INFO, sessions=[], n_neurons_dict={}, mean_activity_dict={})
    session_info = dict(INFO, sessions_kwargs={"session_0": {"roi_ids": [1, 2, 3]}})
    seeds = {
        "trained": seed(7, info, state),
        "no_data_info": seed(5, "", state),          # issue 12 item 2
        "no_sessions": seed(7, json.dumps(empty), state),  # issue 12 item 3
        "sessions_only": seed(3, json.dumps({"sessions": []}), ""),
        "session_info": seed(3, json.dumps(session_info), ""),
        "format_only": seed(1, "", ""),
        "foreign_format": seed(15, info, state),
        "state_nulls": seed(5, "", json.dumps(dict(STATE, lr=None, best_value=None))),
        "state_huge_epoch": seed(5, "", json.dumps(dict(STATE, epochs_done=2**63 - 1))),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "corpus/ckpt_meta")
