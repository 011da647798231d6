#!/usr/bin/env python3
"""edit_safetensors.py IN OUT [--nan NAME]... [--info KEY=JSON]... [--drop-info]

Writes a copy of a fovea checkpoint with the damage a test needs: every
value of tensor NAME set to NaN, data_info's KEY set to a JSON value (for
example stim_std=0 or stim_mean=1e308), or data_info removed.  Plain
Python (no numpy), so that the CLI tests need nothing else.
"""
import json
import struct
import sys


def main(argv):
    src, dst, ops = argv[1], argv[2], argv[3:]
    blob = open(src, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = bytearray(blob[8 + n:])
    meta = header["__metadata__"]
    info = json.loads(meta["data_info"]) if "data_info" in meta else None
    i = 0
    while i < len(ops):
        op = ops[i]
        if op == "--nan":
            entry = header[ops[i + 1]]
            begin, end = entry["data_offsets"]
            data[begin:end] = struct.pack("<f", float("nan")) * ((end - begin) // 4)
            i += 2
        elif op == "--info":
            key, value = ops[i + 1].split("=", 1)
            info[key] = json.loads(value)
            i += 2
        elif op == "--drop-info":
            info = None
            i += 1
        else:
            sys.exit("unknown operation " + op)
    if info is None:
        meta.pop("data_info", None)
    else:
        meta["data_info"] = json.dumps(info)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(data))


if __name__ == "__main__":
    main(sys.argv)
