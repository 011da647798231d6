#!/usr/bin/env python3
# npy_close.py GOT.npy WANT.npy RTOL ATOL: exit 0 when two float32 .npy
# files have the same shape and |got - want| <= atol + rtol*|want|
# elementwise.  Plain Python (struct): the tests need no numpy.
import ast
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: not a .npy file")
    hlen_size = 2 if data[6] == 1 else 4
    hlen = int.from_bytes(data[8:8 + hlen_size], "little")
    header = ast.literal_eval(data[8 + hlen_size:8 + hlen_size + hlen].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        sys.exit(f"{path}: not little-endian C-order float32")
    body = data[8 + hlen_size + hlen:]
    return tuple(header["shape"]), struct.unpack(f"<{len(body) // 4}f", body)


got_shape, got = load(sys.argv[1])
want_shape, want = load(sys.argv[2])
rtol, atol = float(sys.argv[3]), float(sys.argv[4])
if got_shape != want_shape:
    sys.exit(f"shape {got_shape}, expected {want_shape}")
bad = [i for i, (g, w) in enumerate(zip(got, want)) if not abs(g - w) <= atol + rtol * abs(w)]
worst = max(abs(g - w) for g, w in zip(got, want))
if bad:
    sys.exit(f"{len(bad)} of {len(got)} values off (first at {bad[0]}: {got[bad[0]]} vs "
             f"{want[bad[0]]}); max |diff| {worst:.3g}")
print(f"{len(got)} values within tolerance, max |diff| {worst:.3g}")
