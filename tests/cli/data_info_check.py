#!/usr/bin/env python3
"""data_info_check.py DATA_DIR H5_DIR DUMP_DIR OPTIONS_JSON

Check `fovea data-info --dump` against what openretina's generic HDF5
reader, multiple_movies_dataloaders, compute_data_info and LongCycler give,
recomputed here with numpy from the data directory's files: the stimuli
from DATA_DIR/stimuli/*.npy and every HDF5 dataset as H5_DIR/<session>/<key>.npy
(written by h5_to_npy with libhdf5, not by fovea).  OPTIONS_JSON holds
clip_length, num_val_clips, dataloader_seed, seed, train_chunk_size,
batch_size, test_names, norm_mean, norm_std, allow_over_boundaries.
Prints each mismatch and exits 1 if there is any.
"""
import bisect
import json
import os
import random
import sys

import numpy as np

data_dir, h5_dir, dump_dir, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
clip, chunk, bs = opts["clip_length"], opts["train_chunk_size"], opts["batch_size"]
failures = []


def check(name, got, want, exact=False):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        failures.append(f"{name}: shape {got.shape}, expected {want.shape}")
    elif exact and not np.array_equal(got, want):
        failures.append(f"{name}: differs (max {np.abs(got - want).max()})")
    elif not exact and not np.allclose(got, want, rtol=1e-5, atol=1e-5):
        failures.append(f"{name}: differs (max {np.abs(got - want).max()})")


def movie(name):
    m = np.load(os.path.join(data_dir, "stimuli", name + ".npy")).astype(np.float32)
    return (m - np.float32(opts["norm_mean"])) / np.float32(opts["norm_std"])


def split_name(name):
    return "test" if name == "test" else "test_" + name


sessions = sorted(os.listdir(h5_dir))
train_frames, n_batches, mean_activity = {}, {}, {}
for s in sessions:
    sdir = os.path.join(h5_dir, s)
    names = sorted(f[len("responses_"):-4] for f in os.listdir(sdir) if f.startswith("responses_"))
    train_m, train_r = [], []
    for n in names:
        r = np.load(os.path.join(sdir, "responses_" + n + ".npy"))
        avg = r.mean(axis=0) if r.ndim == 3 else r
        if n in opts["test_names"]:
            out = os.path.join(dump_dir, s)
            check(f"{s} test {n} stimulus", np.load(f"{out}/stimulus_{split_name(n)}.npy"), movie(n))
            check(f"{s} test {n} responses", np.load(f"{out}/responses_{split_name(n)}.npy"), avg)
            trials = r if r.ndim == 3 else None
            if trials is None and os.path.exists(os.path.join(sdir, "by_trial_" + n + ".npy")):
                trials = np.load(os.path.join(sdir, "by_trial_" + n + ".npy"))
            if trials is not None:
                check(f"{s} test {n} by trial",
                      np.load(f"{out}/responses_{split_name(n)}_by_trial.npy"), trials)
        else:
            train_m.append(movie(n))
            train_r.append(avg)
    m, r = np.concatenate(train_m, axis=1), np.concatenate(train_r, axis=1)
    mean_activity[s] = np.float32(r.mean(axis=1))
    n_clips = m.shape[1] // clip
    val = np.random.RandomState(opts["dataloader_seed"]).choice(
        n_clips, opts["num_val_clips"], replace=False)
    keep = [c for c in range(n_clips) if c not in val]
    out = os.path.join(dump_dir, s)
    check(f"{s} validation stimulus", np.load(f"{out}/stimulus_validation.npy"),
          np.concatenate([m[:, c * clip:(c + 1) * clip] for c in val], axis=1))
    check(f"{s} validation responses", np.load(f"{out}/responses_validation.npy"),
          np.concatenate([r[:, c * clip:(c + 1) * clip] for c in val], axis=1))
    check(f"{s} train stimulus", np.load(f"{out}/stimulus_train.npy"),
          np.concatenate([m[:, c * clip:(c + 1) * clip] for c in keep], axis=1))
    mask = np.ones(r.shape[1], dtype=bool)
    for c in val:
        mask[c * clip:(c + 1) * clip] = False
    check(f"{s} train responses", np.load(f"{out}/responses_train.npy"), r[:, mask])
    train_frames[s] = len(keep) * clip
    n_batches[s] = len(range(0, train_frames[s], chunk)) // bs

# compute_data_info
info = json.load(open(os.path.join(dump_dir, "data_info.json")))
check("n_neurons_dict", [info["n_neurons_dict"][s] for s in sessions],
      [len(mean_activity[s]) for s in sessions], exact=True)
for s in sessions:
    check(f"mean_activity_dict[{s}]", np.float32(info["mean_activity_dict"][s]), mean_activity[s],
          exact=True)
    info_dir = os.path.join(h5_dir, s, "session_info")
    keys = sorted(f[:-4] for f in os.listdir(info_dir)) if os.path.isdir(info_dir) else []
    if sorted(info["sessions_kwargs"][s]) != keys:
        failures.append(f"sessions_kwargs[{s}]: keys {sorted(info['sessions_kwargs'][s])}, expected {keys}")
    for k in keys:
        check(f"sessions_kwargs[{s}][{k}]", info["sessions_kwargs"][s].get(k, []),
              np.load(os.path.join(info_dir, k + ".npy")), exact=True)
first = np.load(os.path.join(dump_dir, sessions[0], "stimulus_train.npy"))
check("input_shape", info["input_shape"], [first.shape[0], first.shape[2], first.shape[3]], exact=True)
check("stim_mean, stim_std", [info["stim_mean"], info["stim_std"]],
      [opts["norm_mean"], opts["norm_std"]], exact=True)


# LongCycler(shuffle=True) over MovieSampler loaders after seed_everything(seed)
def gen_shifts_with_boundaries(bounds, starts, size):
    shifts = np.random.randint(0, size // 2, len(starts))
    out = []
    for i, s in enumerate(starts):
        nb = bounds[min(bisect.bisect_right(bounds, s), len(bounds) - 1)]
        if s + shifts[i] + size < nb:
            out.append(s + shifts[i])
        elif s + size > nb:
            out.append(nb - size)
        else:
            out.append(s)
    if out[-1] + size > bounds[-1]:
        out[-1] = bounds[-1] - size
    return out


def sampler_pass(frames):
    starts = np.arange(0, frames, chunk)
    if clip == chunk:
        return starts
    if opts["allow_over_boundaries"]:
        shifted = np.minimum(starts + np.random.randint(0, chunk, len(starts)), frames - chunk)
    else:
        shifted = gen_shifts_with_boundaries(list(np.arange(0, frames + 1, clip)), starts, chunk)
    return np.array(shifted)[np.random.permutation(len(starts))]


random.seed(opts["seed"])
np.random.seed(opts["seed"])
keys = sorted(sessions)
random.shuffle(keys)
passes, want = {}, []
for i in range(len(keys) * max(n_batches.values())):
    k = keys[i % len(keys)]
    if k not in passes or passes[k][1] >= n_batches[k]:
        passes[k] = [sampler_pass(train_frames[k]), 0]
    order, b = passes[k]
    want.append({"session": k, "starts": [int(x) for x in order[b * bs:(b + 1) * bs]],
                 "length": chunk})
    passes[k][1] += 1
got = json.load(open(os.path.join(dump_dir, "batches.json")))["batches"]
if got != want:
    failures.append(f"batches.json: {len(got)} batches, expected {len(want)}; first difference at "
                    f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")

for f in failures:
    print("FAIL:", f)
print(f"checked {len(sessions)} sessions, {len(want)} batches")
sys.exit(1 if failures else 0)
