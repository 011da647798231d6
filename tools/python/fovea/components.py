"""fovea.plugins() and fovea.describe(): the components libfovea found
(built-in plugins and $FOVEA_PLUGIN_PATH) and their option tables."""
import ctypes

from . import _lib
from ._lib import Error, lib

_TYPES = ["bool", "int", "float", "string", "enum", "int list", "float list", "node"]
_REQUIRED, _NULLABLE = 1, 2


def _names(c):
    out, i = [], 0
    while c.names[i]:
        out.append(_lib.dec(c.names[i]))
        i += 1
    return out


def _summary(c, file):
    names = _names(c)
    return {"name": names[0], "kind": _lib.dec(lib.fv_kind_name(c.kind)), "aliases": names[1:],
            "doc": _lib.dec(c.doc), "file": _lib.dec(file)}


def plugins():
    """Every registered component: a list of dicts with name, kind, aliases
    (openretina's class paths), doc and the plugin file."""
    reg = _lib.registry()
    out = []
    for i in range(lib.fv_registry_size(reg)):
        file = ctypes.c_char_p()
        c = lib.fv_registry_at(reg, i, ctypes.byref(file))
        out.append(_summary(c.contents, file.value))
    return out


def _option(o):
    d = {"name": _lib.dec(o.name), "type": _TYPES[o.type] if 0 <= o.type < len(_TYPES) else "?",
         "default": _lib.dec(o.default), "required": bool(o.flags & _REQUIRED),
         "nullable": bool(o.flags & _NULLABLE), "doc": _lib.dec(o.doc)}
    if o.min != o.max:
        d["min"], d["max"] = o.min, o.max
    if o.choices:
        d["choices"] = _lib.dec(o.choices).split("|")
    return d


def describe(name):
    """One component by any of its names: its summary (as plugins() gives
    it) and `options`, its option table (name, type, default, doc, range,
    choices), as `fovea describe NAME` prints it."""
    if not isinstance(name, str):
        raise Error("describe: expected a component name, got %r" % (name,), _lib.ERR_ARG)
    reg = _lib.registry()
    file = ctypes.c_char_p()
    c = lib.fv_registry_find(reg, _lib.enc(name), ctypes.byref(file))
    if not c:
        near = lib.fv_registry_closest(reg, _lib.enc(name))
        raise Error("unknown component '%s'%s" % (
            name, "; did you mean '%s'?" % _lib.dec(near) if near else ""), _lib.ERR_NOTFOUND)
    c = c.contents
    d = _summary(c, file.value)
    d["options"] = []
    i = 0
    while c.options and c.options[i].name:
        d["options"].append(_option(c.options[i]))
        i += 1
    return d
