"""A quick reading of the plain command lines, without argparse.

``import argparse`` costs ~6 ms here (with re, gettext, locale, and shutil,
which its help formatter loads, with bz2 and lzma): about as much as the rest
of ``cprof top small.prof`` does, and as all of ``go tool pprof -top``. Most
command lines are plain: a command, options spelt in full, their values,
the positional arguments together. This module reads those from the one
grammar (parser.py builds it here on ``Recorder``, a stand-in for
argparse.ArgumentParser that writes down what it is told), and answers None
for anything else: help, an abbreviated or unknown option, a value that looks
like an option, ``--``, a missing or badly typed value, options that exclude
each other, positional arguments split by options. argparse then parses those
as before, with its own messages, so no command line means anything different
or errs differently; tests/cli/test_cli_quick.py compares the two readings on
many generated command lines.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Sequence

# argparse's markers, copied (the test compares them): nargs for "the rest of
# the command line", and "no default, no help".
REMAINDER = "..."
SUPPRESS = "==SUPPRESS=="


class Namespace:
    """The parsed arguments as attributes, as argparse.Namespace holds them."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:  # any attribute, as typeshed says of argparse.Namespace
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class _Action:
    __slots__ = ("flags", "dest", "kind", "type", "const", "default", "choices", "nargs",
                 "required", "group")

    def __init__(self, flags: tuple[str, ...], dest: str, kind: str, kw: dict[str, Any],
                 group: int | None) -> None:
        self.flags = flags
        self.dest = dest
        self.kind = kind
        self.type = kw.get("type")
        self.const = kw.get("const")
        self.default = kw.get("default", False if kind == "store_true" else None)
        self.choices = kw.get("choices")
        self.nargs = kw.get("nargs")
        self.required = kw.get("required", False)
        self.group = group


_KINDS = {"store", "store_true", "store_const", "append"}


class Recorder:
    """Takes the calls parser.py makes to build a command's argparse parser
    and keeps what the quick reading needs. ``supported`` turns False when the
    command uses something the quick reading does not do."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: dict[str, _Action] = {}
        self.positionals: list[_Action] = []
        self.actions: list[_Action] = []
        self.defaults: dict[str, Any] = {}
        self.commands: dict[str, Recorder] = {}
        self.supported = True
        self._groups = 0
        self._subparsers_dest: str | None = None
        # A command's name, set where argparse sets it (before the command's
        # own values, which may have the same name and then win).
        self._named: tuple[str, str] | None = None

    # argparse.ArgumentParser's building calls
    def add_argument(self, *flags: str, **kw: Any) -> None:
        self._add(flags, kw, None)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> _Group:
        return _Group(self, None)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Group:
        self._groups += 1
        return _Group(self, self._groups)

    def set_defaults(self, **kw: Any) -> None:
        self.defaults.update(kw)
        for action in self.actions:
            if action.dest in kw:
                action.default = kw[action.dest]

    def add_subparsers(self, **kwargs: Any) -> Recorder:
        self._subparsers_dest = kwargs.get("dest")
        return self

    def add_parser(self, name: str, **kwargs: Any) -> Recorder:
        made = self.commands[name] = Recorder()
        if self._subparsers_dest is not None:
            made._named = (self._subparsers_dest, name)
        return made

    def _add(self, flags: tuple[str, ...], kw: dict[str, Any], group: int | None) -> None:
        kind = kw.get("action", "store")
        positional = not flags[0].startswith("-")
        if positional:
            dest = flags[0]
        else:
            long = [f for f in flags if f.startswith("--")]
            dest = kw.get("dest") or (long[0] if long else flags[0]).lstrip("-").replace("-", "_")
        action = _Action(flags, dest, kind, kw, group)
        if kind not in _KINDS or action.nargs not in (None, "+", REMAINDER) or (
                action.nargs is not None and not positional and action.nargs != REMAINDER):
            self.supported = False
        self.actions.append(action)
        if positional:
            self.positionals.append(action)
        else:
            for flag in flags:
                self.options[flag] = action

    # the reading
    def read(self, argv: Sequence[str]) -> Namespace | None:
        """``argv`` (after the command's name) as argparse would read it, or
        None if it is not a plain command line."""
        if not self.supported:
            return None
        values: dict[str, Any] = {}
        seen: dict[int, _Action] = {}
        positional: list[str] = []
        rest: list[str] | None = None
        positional_end = -1
        i, n = 0, len(argv)
        while i < n:
            token = argv[i]
            if not token.startswith("-") or token == "-":
                if token == "-" or (positional and positional_end != i):
                    return None  # stdin, or positional arguments split by options
                if self.positionals and self.positionals[-1].nargs == REMAINDER \
                        and len(positional) == len(self.positionals) - 1:
                    rest = list(argv[i:])
                    break
                positional.append(token)
                i += 1
                positional_end = i
                continue
            if token == "--":
                if not (self.positionals and self.positionals[-1].nargs == REMAINDER
                        and len(positional) == len(self.positionals) - 1):
                    return None  # how argparse drops "--" has changed between versions
                rest = list(argv[i:])  # kept, "--" first, as argparse keeps it for REMAINDER
                break
            name, eq, explicit = token.partition("=")
            action = self.options.get(token) or (self.options.get(name) if eq else None)
            if action is None or action.nargs == REMAINDER:
                return None  # help, an abbreviation, an unknown option, -m MODULE ...
            if action.group is not None:
                if seen.setdefault(action.group, action) is not action:
                    return None  # argparse: "not allowed with argument ..."
            if action.kind in ("store_true", "store_const"):
                if eq:
                    return None
                values[action.dest] = True if action.kind == "store_true" else action.const
                i += 1
                continue
            if eq:
                if explicit.startswith("-"):
                    return None  # argparse makes -o=-- an empty list, for one
                text = explicit
                i += 1
            else:
                if i + 1 >= n or argv[i + 1].startswith("-"):
                    return None  # argparse: "expected one argument"
                text = argv[i + 1]
                i += 2
            value = _convert(action, text)
            if value is _INVALID:
                return None
            if action.kind == "append":
                listed = values.get(action.dest)
                if listed is None:
                    listed = values[action.dest] = list(action.default or [])
                listed.append(value)
            else:
                values[action.dest] = value
        return self._namespace(values, positional, rest)

    def _namespace(self, values: dict[str, Any], positional: list[str],
                   rest: list[str] | None) -> Namespace | None:
        singles = [a for a in self.positionals if a.nargs is None]
        many = [a for a in self.positionals if a.nargs == "+"]
        tail = [a for a in self.positionals if a.nargs == REMAINDER]
        if len(singles) + len(many) + len(tail) != len(self.positionals) or len(many) > 1:
            return None
        if tail:
            if rest is None or many or len(positional) != len(singles):
                return None
            values[tail[0].dest] = rest
        elif many:
            if len(positional) <= len(singles) or self.positionals[-1] is not many[0]:
                return None
            cut = len(singles)
            values[many[0].dest] = positional[cut:]
            positional = positional[:cut]
        elif len(positional) != len(singles):
            return None
        for action, token in zip(singles, positional):
            value = _convert(action, token)
            if value is _INVALID:
                return None  # argparse: "invalid int value", or not one of the choices
            values[action.dest] = value
        for action in self.actions:
            if action.dest not in values:
                if action.required:
                    return None  # argparse: "the following arguments are required"
                if action.default is not SUPPRESS:
                    default = action.default
                    if isinstance(default, str) and action.type is not None:
                        default = action.type(default)
                    values[action.dest] = default
        for dest, default in self.defaults.items():
            values.setdefault(dest, default)
        if self._named is not None:
            values.setdefault(*self._named)
        return Namespace(**values)


_INVALID = object()


def _convert(action: _Action, text: str) -> Any:
    try:
        value = action.type(text) if action.type is not None else text
    except (TypeError, ValueError):
        return _INVALID
    if action.choices is not None and value not in action.choices:
        return _INVALID
    return value


class _Group:
    """An argument group (mutually exclusive when it has an id) of a Recorder."""

    def __init__(self, parser: Recorder, exclusive: int | None) -> None:
        self.parser = parser
        self.exclusive = exclusive

    def add_argument(self, *flags: str, **kw: Any) -> None:
        self.parser._add(flags, kw, self.exclusive)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Group:
        return self.parser.add_mutually_exclusive_group(**kwargs)
