"""leaf: the C function a Python frame is calling, worked out with the GIL held.

A sample taken inside ``time.sleep``, ``hashlib``'s ``update`` or
``sorted`` finds the calling Python frame executing a call instruction, with
the callable in that frame's value stack, where the collectors read it (see
docs/CPU_PROFILER.md, "The C function a frame is calling"). What must be
known beforehand, away from any signal handler or allocator hook, is here:

- ``catalogue()``: the C callables a sample may name, each held (so that an
  address found in a stack is that object, compared without reading it) with
  the name it gets: ``time.sleep``, ``_hashlib.HASH.update``,
  ``builtins.sorted``; ``install()`` gives it to the collectors;
- ``call_kinds()`` and ``flow()``: the opcode tables the C side reads code
  with;
- ``callable_slots(code, lasti)`` and ``places(code)``: where, from the value
  stack's base, the callable of a call lies. 3.11-3.13 keep no stack
  pointer in the frame while a C function runs (the frame's stacktop is -1
  then), and the slots above the top hold stale values, so the depth comes
  from the code: ``stack_depths``, the compiler's own reckoning, redone. The
  sampler redoes it in C (csrc/collect/leaf.c), where no Python code may run;
  these are its reference, which the tests hold it to. 3.14 and later save
  the stack pointer before every call that can escape, so the sampler reads
  the callable below it and needs none of this.

Stack layouts while the C function runs (N = oparg; kwnames, 3.13+, is one
slot more on top):

- 3.11, 3.12: ``[method or NULL, callable or self, args...]``; CALL_FUNCTION_EX
  ``[NULL, func, callargs, kwargs if oparg & 1]``;
- 3.13: ``[callable, self or NULL, args...]``; CALL_FUNCTION_EX
  ``[func, NULL, callargs, kwargs if oparg & 1]``;
- 3.14+: as 3.13; CALL_FUNCTION_EX always ``[func, NULL, callargs, kwargs or NULL]``.
"""

from __future__ import annotations

import dis
import sys
import types
from types import CodeType

# Instructions after which the next one is not reached from this one.
_NO_FALLTHROUGH = frozenset({"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE",
                             "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT",
                             "JUMP", "JUMP_NO_INTERRUPT"})
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)

# The base instructions (as co_code has them) that call a callable from the
# stack: PRECALL is 3.11's, which its specialised forms run C calls from.
CALLS = frozenset({"CALL", "PRECALL", "CALL_KW", "CALL_FUNCTION_EX"}) & frozenset(dis.opmap)


def stack_depths(code: CodeType) -> dict[int, int]:
    """The value stack's depth before each reachable instruction, by byte
    offset: a walk of the code's control flow with dis.stack_effect, from
    offset 0 (depth 0) and from each exception handler (the depth its table
    entry gives, plus the lasti it pushes, plus the exception). Raises
    ValueError where two paths disagree, which the compiler never lets happen."""
    instructions = list(dis.get_instructions(code))
    index = {ins.offset: n for n, ins in enumerate(instructions)}
    depths: dict[int, int] = {}
    work = [(0, 0)]
    # exception_entries: dis's own reading of co_exceptiontable (3.11+; not in typeshed).
    for entry in dis.Bytecode(code).exception_entries:  # type: ignore[attr-defined]
        work.append((entry.target, entry.depth + int(entry.lasti) + 1))
    while work:
        offset, depth = work.pop()
        known = depths.get(offset)
        if known is not None:
            if known != depth:
                raise ValueError(f"{code.co_qualname}: at offset {offset}, a stack depth of "
                                 f"{known} and of {depth}")
            continue
        depths[offset] = depth
        n = index[offset]
        ins = instructions[n]
        following = instructions[n + 1].offset if n + 1 < len(instructions) else None
        if ins.opname == "RETURN_GENERATOR":
            # The generator's first resume finds the value it was sent pushed
            # (dis.stack_effect says 0 for it before 3.13, 1 after).
            if following is not None:
                work.append((following, depth + 1))
            continue
        arg = ins.arg if ins.opcode >= dis.HAVE_ARGUMENT else None
        if ins.opcode in _JUMPS:
            target = getattr(ins, "jump_target", None)
            work.append((ins.argval if target is None else target,
                         depth + dis.stack_effect(ins.opcode, arg, jump=True)))
        if ins.opname not in _NO_FALLTHROUGH and following is not None:
            work.append((following, depth + dis.stack_effect(ins.opcode, arg, jump=False)))
    return depths


def callable_slots(code: CodeType, lasti: int,
                   depths: dict[int, int] | None = None) -> tuple[int, int] | None:
    """Where the callable of the call instruction at ``lasti`` (in code units,
    as frames count) lies while it runs, as (slot, other) from the value
    stack's base: the callable is in ``slot`` unless that holds NULL, when
    it is in ``other`` (3.11 and 3.12 put a method, or NULL, below it); the
    two are the same from 3.13 on. None when that instruction is no call."""
    offset = 2 * lasti
    ins = _instruction_at(code, offset)
    if ins is None:
        return None
    return _slots_of(code, ins, depths if depths is not None else stack_depths(code))


def places(code: CodeType) -> dict[int, tuple[int, int]]:
    """callable_slots for every call of code, by lasti (in code units)."""
    depths = stack_depths(code)
    found = {}
    for ins in dis.get_instructions(code):
        slots = _slots_of(code, ins, depths)
        if slots is not None:
            found[ins.offset // 2] = slots
    return found


def _slots_of(code: CodeType, ins: dis.Instruction,
              depths: dict[int, int]) -> tuple[int, int] | None:
    offset = ins.offset
    if ins.opname not in CALLS:
        return None
    depth = depths.get(offset)
    if depth is None:
        return None
    oparg = ins.arg or 0
    if ins.opname == "CALL" and "PRECALL" in CALLS:
        # 3.11: the PRECALL before it counts the arguments off the stack,
        # where they stay until this CALL takes them.
        depth += oparg
    if ins.opname == "CALL_FUNCTION_EX":
        if sys.version_info >= (3, 14):
            slot = depth - 4
        elif sys.version_info >= (3, 13):
            slot = depth - 3 - (oparg & 1)
        else:
            slot = depth - 2 - (oparg & 1)
        return (slot, slot) if slot >= 0 else None
    if sys.version_info >= (3, 13):
        slot = depth - oparg - (3 if ins.opname == "CALL_KW" else 2)
        return (slot, slot) if slot >= 0 else None
    slot = depth - oparg - 2
    return (slot, slot + 1) if slot >= 0 else None


def _instruction_at(code: CodeType, offset: int) -> dis.Instruction | None:
    for ins in dis.get_instructions(code):
        if ins.offset == offset:
            return ins
        if ins.offset > offset:
            break
    return None


# --- the callables ----------------------------------------------------------------------

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE


def _runs_in_c(t: type) -> bool:
    """Whether calling type t runs no Python code of its own: a built-in or
    extension type, or a class whose __new__ and __init__ are both C's."""
    if not t.__flags__ & _HEAPTYPE:
        return True
    return not any(isinstance(getattr(t, name, None), (types.FunctionType, staticmethod,
                                                       classmethod))
                   for name in ("__new__", "__init__", "__call__"))


def _module_file(module_name: str) -> str:
    """The file a C callable of this module gets: the extension's path, or
    the module's name for one built into the interpreter."""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return path if isinstance(path, str) and not path.endswith(".py") else module_name


_NOT_BY_TYPE = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType,
                types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType,
                types.ClassMethodDescriptorType, staticmethod, classmethod)


def catalogue(modules: list[types.ModuleType] | None = None) -> dict[int, tuple[object, str, str]]:
    """The C callables reachable from the modules' namespaces (every
    imported module's by default): their functions, their C types and those
    types' methods, and instances of C types that are called (numpy.dot).
    Maps each one's key to (the object, its name, its file): its id, and
    also, read by the sampler from the object a call takes (leaf.h), a C
    type's id + LEAF_INSTANCE_CALL for its instances' calls, a method
    definition's address + LEAF_METHOD_DEF for the functions and bound
    methods made from it."""
    from .. import _core
    found: dict[int, tuple[object, str, str]] = {}

    def add(obj: object, name: str, module_name: str, key: int | None = None) -> None:
        key = id(obj) if key is None else key
        if key not in found:
            found[key] = (obj, name, _module_file(module_name))
        # The builtin functions and bound C methods made from the same
        # method definition (a bound list.append) are named after it.
        definition = _core.method_def(obj)
        if definition is not None:
            key = definition + _core.LEAF_METHOD_DEF
            if key not in found:
                found[key] = (obj, name, _module_file(module_name))

    def add_type(t: type) -> None:
        if id(t) in found or not _runs_in_c(t):
            return
        module_name = t.__module__ if isinstance(t.__module__, str) else "builtins"
        prefix = f"{module_name}.{t.__qualname__}"
        add(t, prefix, module_name)
        # Calls of its instances (json's encoder, a functools.partial), by
        # the instance's type. Not a metatype's (its instances are classes,
        # named each after itself), nor those of the types of functions and
        # methods: a builtin function is named by its method definition, and
        # a call of a Python function is caught only before its frame is
        # pushed, when it is no C function's time.
        if (isinstance(vars(t).get("__call__"), types.WrapperDescriptorType)
                and not issubclass(t, _NOT_BY_TYPE)):
            found.setdefault(id(t) + _core.LEAF_INSTANCE_CALL,
                             (t, f"{prefix}.__call__", _module_file(module_name)))
        # Methods, as a call through an instance finds them (obj.method(...)
        # leaves the descriptor itself in the stack), and static methods. A
        # class method called through the type is bound anew at each call:
        # named by its method definition alone.
        for attr, value in list(vars(t).items()):
            if isinstance(value, staticmethod):
                value = value.__func__
            if isinstance(value, (types.MethodDescriptorType, types.BuiltinFunctionType)):
                add(value, f"{prefix}.{attr}", module_name)
            elif isinstance(value, types.ClassMethodDescriptorType):
                definition = _core.method_def(value)
                if definition is not None:
                    add(value, f"{prefix}.{attr}", module_name,
                        definition + _core.LEAF_METHOD_DEF)

    for module in list(sys.modules.values()) if modules is None else modules:
        if str(getattr(module, "__name__", "")).partition(".")[0] == "cprof":
            continue  # cprof's own C functions are cprof's work, not named
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if isinstance(value, types.BuiltinFunctionType):
                owner = value.__self__
                if owner is None or isinstance(owner, types.ModuleType):
                    module_name = value.__module__ or module.__name__
                    add(value, f"{module_name}.{value.__qualname__}", module_name)
            elif isinstance(value, type):
                add_type(value)
            elif (callable(value) and not isinstance(value, (types.FunctionType,
                                                             types.MethodType,
                                                             types.ModuleType))
                  and not type(value).__flags__ & _HEAPTYPE):
                add(value, f"{module.__name__}.{attr}", module.__name__)
    return found


# --- what the sampler is given -----------------------------------------------------------

# Every C callable named so far, by address: {id: (name, short name, file,
# the callable)}. It only grows, holding each callable alive, so that an
# address in a sample taken earlier keeps its name.
_names: dict[int, tuple[str, str, str, object]] = {}
_modules_seen = 0

# Call instructions whose callable the sampler reads below the frame's saved
# stack pointer (3.14+), by leaf.h's kind; the forms that push a Python frame
# or make no call that can escape are not among them. 3.11-3.13 read the
# base forms' kinds in co_code (PRECALL: 3.11's).
_NOT_C = ("CALL_PY_", "CALL_BOUND_METHOD_", "CALL_ALLOC_AND_ENTER_INIT", "CALL_KW_PY",
          "CALL_KW_BOUND_METHOD", "CALL_EX_PY", "CALL_TYPE_1", "CALL_LIST_APPEND",
          "CALL_INTRINSIC_")


def call_kinds() -> bytes:
    """The kind (leaf.h) of each of the 256 opcodes, specialised and
    instrumented forms included."""
    from .. import _core
    kinds = bytearray(256)
    opcodes = dict(dis.opmap)
    opcodes.update(getattr(dis, "_specialized_opmap", {}))
    for name, opcode in opcodes.items():
        bare = name.removeprefix("INSTRUMENTED_")
        if not 0 <= opcode < 256 or bare.startswith(_NOT_C):
            continue
        if name == "EXTENDED_ARG":
            kinds[opcode] = _core.LEAF_EXTENDED
        elif bare == "PRECALL":
            kinds[opcode] = _core.LEAF_PRECALL
        elif bare.startswith(("CALL_FUNCTION_EX", "CALL_EX_")):
            kinds[opcode] = _core.LEAF_CALL_EX
        elif bare.startswith("CALL_KW"):
            kinds[opcode] = _core.LEAF_CALL_KW
        elif bare == "CALL" or bare.startswith("CALL_"):
            kinds[opcode] = _core.LEAF_CALL
    return bytes(kinds)


def flow() -> bytes:
    """How control leaves each of the 256 base opcodes, as dis reads co_code
    (leaf.h: 256 flag bytes, 256 inline cache counts, then each opcode's
    base one): what the sampler needs to redo stack_depths in C on
    3.11-3.13, from the code's live, specialised instructions (3.14+ need
    none of it)."""
    from .. import _core
    flags, caches, deopt = bytearray(256), bytearray(256), bytearray(range(256))
    if sys.version_info >= (3, 14):
        return bytes(flags + caches + deopt)
    # Each specialised and instrumented opcode's base one (as PyCode_GetCode
    # undoes them), from dis's tables (not in typeshed).
    every = dict(getattr(dis, "_all_opmap", {}))
    every.update(getattr(dis, "_specialized_opmap", {}))
    specializations: dict[str, list[str]] = getattr(dis, "_specializations", {})
    for base, forms in specializations.items():
        for form in forms:
            if form in every and base in dis.opmap:
                deopt[every[form]] = dis.opmap[base]
    for name, opcode in dis.opmap.items():
        bare = name.removeprefix("INSTRUMENTED_")
        if bare != name and bare in dis.opmap and 0 <= opcode < 256:
            deopt[opcode] = dis.opmap[bare]
    # Not in typeshed: a list by opcode (3.11, 3.12) or a dict by name (3.13).
    entries = getattr(dis, "_inline_cache_entries", {})
    jrel = frozenset(dis.hasjrel)
    for name, opcode in dis.opmap.items():
        if not 0 <= opcode < 256:
            continue
        caches[opcode] = entries[opcode] if isinstance(entries, list) else entries.get(name, 0)
        if opcode in jrel:
            flags[opcode] |= (_core.LEAF_JUMP_BACKWARD if "JUMP_BACKWARD" in name
                               else _core.LEAF_JUMP_FORWARD)
        if name in _NO_FALLTHROUGH:
            flags[opcode] |= _core.LEAF_NO_FALLTHROUGH
        if name == "RETURN_GENERATOR":
            flags[opcode] |= _core.LEAF_RETURN_GENERATOR
    return bytes(flags + caches + deopt)


# The modules walked for the catalogue so far, by name, and how many names
# the set given to the sampler last had.
_walked: set[str] = set()
_set_names = -1


def install() -> None:
    """Give the sampler the catalogue (walking the modules imported since
    the last time), the call instructions' kinds and (3.11-3.13) the
    opcodes' flow. Every collector that takes stacks calls it as it starts;
    the naming then stays on (a native CPU profile's walk leaves C functions
    to libunwind)."""
    global _modules_seen, _set_names
    from .. import _core
    if len(sys.modules) == _modules_seen and _set_names == len(_names) and _core.leaf_active():
        return  # the set in use is this one (a new one would be kept until leaf_clear)
    if len(sys.modules) != _modules_seen:
        new = {name: module for name, module in list(sys.modules.items())
               if name not in _walked}
        for key, (obj, name, path) in catalogue(list(new.values())).items():
            if key not in _names:
                _names[key] = (name, name.rpartition(".")[2], path, obj)
        _walked.update(new)
        _modules_seen = len(sys.modules)
    _core.leaf_set(_names, call_kinds(), flow())
    _set_names = len(_names)


def refresh() -> None:
    """install() again when modules were imported since: their C callables
    are named from the next sample on (a collector's drain hook calls it)."""
    if len(sys.modules) != _modules_seen:
        install()


def named(key: int) -> tuple[str, str, str] | None:
    """The name, short name and file the catalogue gives a key
    (_core.frame_callee's), or None."""
    entry = _names.get(key)
    return entry[:3] if entry is not None else None
