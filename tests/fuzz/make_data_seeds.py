#!/usr/bin/env python3
"""make_data_seeds.py: the seed corpus of fuzz_data (corpus/data/).

Each seed is the header fuzz_data.c reads (see its top comment) and, for
some, values; without values the target writes a fixed varying sequence,
which makes a valid data set.  The seeds are a normal directory of each
layout and the reproducers of issue 12: a training chunk longer than the
training movie (item 1), a NaN in the responses and in the stimulus
(item 7), no validation clips (item 8), duplicated validation clip
indices (item 10), responses one frame short of their movie.

    python3 tests/fuzz/make_data_seeds.py tests/fuzz/corpus/data
"""
import os
import sys

OVER, F64, IN_SESSION, SHAPE = 4, 1, 2, 8
F32_RESP, BY_TRIAL, TRIALS, INFO = 16, 32, 64, 128
NAN = 0xF0


def header(sessions=2, channels=1, frames=100, test_frames=30, height=2, width=3,
           flags=OVER | TRIALS, batch=4, chunk=20, clip=25, val_clips=1, clips=(), seed=7):
    return bytes([sessions - 1, channels - 1, frames - 1, test_frames - 1, height - 1,
                  width - 1, flags, batch - 1, chunk - 1, clip - 1, val_clips, len(clips)] +
                 list(clips) + [seed])


def movies(n, bad=None):
    """n movie values (varying), one of them NaN at index bad."""
    return bytes(NAN if i == bad else 0x70 + (i * 5) % 17 for i in range(n))


# the default 1 x 100 x 2 x 3 train and 1 x 30 x 2 x 3 test movies
MOVIE_VALUES = 600 + 180

SEEDS = {
    "valid": header(),
    "valid_f32_in_session_by_trial_info": header(
        sessions=1, flags=OVER | IN_SESSION | SHAPE | F32_RESP | BY_TRIAL | INFO),
    "valid_f64_no_boundaries": header(flags=F64),
    "chunk_longer_than_movie": header(sessions=1, frames=40, chunk=60, batch=1, clip=20),
    "chunk_longer_no_boundaries": header(sessions=1, frames=40, chunk=60, batch=1, clip=20,
                                         flags=0),
    "no_validation": header(val_clips=0),
    "duplicate_validation_clips": header(clips=(1, 1)),
    "nan_in_stimulus": header(sessions=1) + movies(MOVIE_VALUES, bad=5),
    # after the movies, the session's bytes (3 neurons, 3 trials, frames as
    # the movie's), then its first response
    "nan_in_responses": header(sessions=1) + movies(MOVIE_VALUES) + bytes([2, 1, 0, NAN]),
    "responses_one_frame_short": header(sessions=1) + movies(MOVIE_VALUES) + bytes([2, 1, 1]),
}


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
