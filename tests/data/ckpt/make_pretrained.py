#!/usr/bin/env python3
# make_pretrained.py: writes pretrained_performance.ckpt, a copy of
# hoefling_low_res_gmask.ckpt whose hyper_parameters.data_info also holds
# what openretina's BaseCoreReadout.test_step adds to it (openretina
# 0aadd97, openretina/models/core_readout.py):
#   pretrained_performance_metric  "test CorrelationLoss3d"
#   pretrained_performance         {session: per-neuron correlations, a
#                                  float32 tensor (n,); or, for a loss
#                                  without them, a 0-dim tensor}
#   model_cut_frames               30
# Plain Python, no torch: the items are spliced into the pickle right after
# the data_info dict is created (MARK ... SETITEMS, no memo opcodes, so the
# memo indices of the rest stay valid), the tensors written as torch writes
# them (_rebuild_tensor_v2 over a persistent FloatStorage record).
#
#   python3 make_pretrained.py   (in tests/data/ckpt)
import pickletools
import struct
import zipfile

SRC, DST = "hoefling_low_res_gmask.ckpt", "pretrained_performance.ckpt"
PERF = {
    "session_1_ventral1_20200226": [k / 16 - 0.25 for k in range(14)],
    "session_2_ventral2_20200626": [0.5 - k / 32 for k in range(27)],
    "session_3_dorsal1_20201021": 0.375,  # a 0-dim tensor
}


def text(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def small(n):
    return b"K" + bytes([n])


def int_tuple(xs):
    return b"(" + b"".join(small(x) for x in xs) + b"t"


def tensor(key, values):
    shape = [] if isinstance(values, float) else [len(values)]
    numel = 1 if not shape else shape[0]
    pid = b"(" + text("storage") + b"ctorch\nFloatStorage\n" + text(key) + text("cpu") + small(numel) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"Q" + small(0) + int_tuple(shape)
            + int_tuple([1] * len(shape)) + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"tR")


def items(records):
    out = b"(" + text("pretrained_performance_metric") + text("test CorrelationLoss3d")
    out += text("model_cut_frames") + small(30)
    out += text("pretrained_performance") + b"}("
    for i, (session, values) in enumerate(PERF.items()):
        key = str(900 + i)
        vals = [values] if isinstance(values, float) else values
        records[key] = struct.pack(f"<{len(vals)}f", *vals)
        out += text(session) + tensor(key, values)
    return out + b"u" + b"u"


def splice(pkl, records):
    ops = list(pickletools.genops(pkl))
    # hyper_parameters' data_info is the last 'data_info' key followed by a new dict
    at = [i for i, (op, arg, _) in enumerate(ops)
          if arg == "data_info" and ops[i + 2][0].name == "EMPTY_DICT"][-1]
    pos = ops[at + 4][2]  # after EMPTY_DICT and its memo put
    return pkl[:pos] + items(records) + pkl[pos:]


src = zipfile.ZipFile(SRC)
prefix = next(n for n in src.namelist() if n.endswith("/data.pkl"))[: -len("data.pkl")]
records = {}
with zipfile.ZipFile(DST, "w", zipfile.ZIP_STORED) as dst:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename == prefix + "data.pkl":
            data = splice(data, records)
        dst.writestr(info.filename, data)
    for key, data in records.items():
        dst.writestr(prefix + "data/" + key, data)
