#!/usr/bin/env python3
"""tb_decode.py: an independent reader of TensorBoard event files, for the
logger tests: TFRecord framing with masked CRC-32C checked, and the
protobuf wire format of Event/Summary decoded by hand (no protobuf-c, no
TensorBoard).  Prints one line per record:

    version brain.Event:2
    scalar STEP TAG VALUE

and exits 1 on any framing, CRC or wire-format error.
"""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def fields(buf):
    """(field number, wire type, value) of a message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(buf, i)
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield num, wire, v


def records(data):
    i = 0
    while i < len(data):
        if len(data) - i < 12:
            raise ValueError("truncated record header")
        head = data[i:i + 8]
        (n,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        if hcrc != masked(crc32c(head)):
            raise ValueError("bad length CRC")
        body = data[i + 12:i + 12 + n]
        (dcrc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if len(body) != n or dcrc != masked(crc32c(body)):
            raise ValueError("bad data CRC")
        yield body
        i += 16 + n


def main(path):
    with open(path, "rb") as f:
        data = f.read()
    for body in records(data):
        step = 0
        for num, wire, v in fields(body):
            if num == 2 and wire == 0:
                step = v
            elif num == 3 and wire == 2:
                print("version", v.decode())
            elif num == 5 and wire == 2:
                for snum, swire, sv in fields(v):
                    if snum != 1 or swire != 2:
                        continue
                    tag, value = None, None
                    for vnum, vwire, vv in fields(sv):
                        if vnum == 1 and vwire == 2:
                            tag = vv.decode()
                        elif vnum == 2 and vwire == 5:
                            (value,) = struct.unpack("<f", vv)
                    print("scalar", step, tag, repr(value))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (ValueError, IndexError, struct.error) as e:
        print(f"tb_decode: {sys.argv[1]}: {e}", file=sys.stderr)
        sys.exit(1)
