#!/usr/bin/env python3
# tests/fuzz/make_ckpt_seeds.py: (re)make the seed corpus of fuzz_ckpt in
# tests/fuzz/corpus/ckpt/.  Run from the top of the tree:
#     python3 tests/fuzz/make_ckpt_seeds.py tests/fuzz/corpus/ckpt
# Seeds: the small fixture checkpoints (zip mode) and their data.pkl (pickle
# mode); plain data pickled by Python itself in protocols 0 to 5; torch- and
# numpy-style pickles in protocols 2, 4 and 5 made through stand-in modules
# that carry the real names (Python's pickler only needs them importable),
# with storage keys that fit fuzz_ckpt's made-up records (key k has 8*(k+1)
# bytes).  Python only writes pickles here; nothing is ever unpickled.
import pickle, sys, types, zipfile, collections, os, struct
out = sys.argv[1]
def w(name, data):
    open(os.path.join(out, name), 'wb').write(data)

# data.pkl of real checkpoints (pickle-only mode) and small zips (zip mode)
for stem in ['single_cell_lnp', 'lnp_dummy_core']:
    z = zipfile.ZipFile(f'tests/data/ckpt/{stem}.ckpt')
    w(f'{stem}.pkl', z.read('archive/data.pkl'))
import shutil
shutil.copy('tests/data/ckpt/single_cell_lnp.ckpt', os.path.join(out, 'single_cell_lnp.ckpt'))
for f in ['build_unexpected_class', 'builtins_eval', 'dunder_import', 'legacy_format',
          'reduce_posix_system', 'storage_numel_past_record', 'tensor_view_past_storage',
          'truncated', 'truncated_eocd', 'zip_bomb_declared']:
    shutil.copy(f'tests/data/ckpt/hostile/{f}.ckpt', os.path.join(out, f'hostile_{f}.ckpt'))
for f in ['reduce_posix_system', 'tensor_view_past_storage', 'storage_numel_past_record']:
    z = zipfile.ZipFile(f'tests/data/ckpt/hostile/{f}.ckpt')
    w(f'hostile_{f}.pkl', z.read('archive/data.pkl'))

# Plain data in every protocol, written by Python's own pickler.
data = {'a': [1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63 - 1, -2**63],
        'f': (0.5, -1e-8, float('inf'), 1e300), 'b': b'\x00\xffab', 'ba': bytearray(b'xyz'),
        's': {1, 2}, 'fs': frozenset(['x']), 'sl': slice(1, 9, 2), 'n': None, 't': True,
        'u': 'caf\u00e9 \U0001f600', 'od': collections.OrderedDict([('k', 1)]),
        'dd': collections.defaultdict(list, {'q': [3]}), 'nest': [[[[]]]], 'tup': (), 'e': {}}
shared = [1, 2]
data['shared'] = (shared, shared)
for proto in range(0, 6):
    w(f'plain_p{proto}.pkl', pickle.dumps(data, protocol=proto))

# torch- and numpy-style pickles in protocols 2, 4 and 5, through fake modules
# that carry the real names (the pickler only needs them importable).
def mod(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        v.__module__ = name
        v.__qualname__ = k
        setattr(m, k, v)
    sys.modules[name] = m
    return m
def _rebuild_tensor_v2(*a): pass
def _rebuild_parameter(*a): pass
class FloatStorage: pass
class HalfStorage: pass
class LongStorage: pass
class BoolStorage: pass
mod('torch._utils', _rebuild_tensor_v2=_rebuild_tensor_v2, _rebuild_parameter=_rebuild_parameter)
mod('torch', FloatStorage=FloatStorage, HalfStorage=HalfStorage, LongStorage=LongStorage, BoolStorage=BoolStorage)
def _reconstruct(*a): pass
def scalar(*a): pass
class ndarray: pass
class dtype:
    def __init__(self, code, endian='<'): self.code, self.endian = code, endian
    def __reduce__(self): return (dtype, (self.code, False, True), (3, self.endian, None, None, None, -1, -1, 0))
mod('numpy.core.multiarray', _reconstruct=_reconstruct, scalar=scalar)
mod('numpy', ndarray=ndarray, dtype=dtype)
class Storage:
    def __init__(self, t, key, n): self.t, self.key, self.n = t, key, n
class Tensor:
    def __init__(self, st, off, size, stride): self.a = (st, off, size, stride, False, collections.OrderedDict())
    def __reduce__(self): return (_rebuild_tensor_v2, self.a)
class Param:
    def __init__(self, t): self.t = t
    def __reduce__(self): return (_rebuild_parameter, (self.t, True, collections.OrderedDict()))
class Arr:
    def __init__(self, shape, dt, raw): self.s = (1, shape, dt, False, raw)
    def __reduce__(self): return (_reconstruct, (ndarray, (0,), b'b'), self.s)
class Scalar:
    def __init__(self, dt, raw): self.a = (dt, raw)
    def __reduce__(self): return (scalar, self.a)
class P(pickle.Pickler):
    def persistent_id(self, o):
        if isinstance(o, Storage):
            return ('storage', o.t, o.key, 'cpu', o.n)
        return None
import io
s0, s1, s2, s3 = Storage(FloatStorage, '5', 12), Storage(HalfStorage, '1', 8), Storage(LongStorage, '1', 2), Storage(BoolStorage, '0', 4)
ckpt = {'epoch': 3, 'state_dict': collections.OrderedDict([
            ('w', Tensor(s0, 2, (2, 3), (1, 2))), ('h', Tensor(s1, 0, (8,), (1,))),
            ('n', Tensor(s2, 1, (), ())), ('b', Tensor(s3, 0, (2, 2), (2, 1))),
            ('p', Param(Tensor(s0, 0, (3,), (4,))))]),
        'hyper_parameters': {'data_info': {'x': Arr((2,), dtype('i8'), struct.pack('<2q', 5, -6)),
                                           'y': Scalar(dtype('f8', '>'), struct.pack('>d', 0.25))},
                             'lr': '${model.learning_rate}', 'm': '???'}}
for proto in (2, 4, 5):
    b = io.BytesIO()
    P(b, protocol=proto).dump(ckpt)
    w(f'torchlike_p{proto}.pkl', b.getvalue())
# a deep list (refused by max_depth) and a self-containing one
w('deep.pkl', b'\x80\x02' + b']' * 300 + b'a' * 299 + b'.')
w('cycle.pkl', b'\x80\x02]q\x00h\x00a.')
