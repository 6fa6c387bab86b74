"""The quick reading of plain command lines (cprof/cli/quick.py) means what
argparse means: on thousands of generated command lines of every command,
each one it reads gives argparse's namespace, and each one argparse refuses
it leaves to argparse. It must also read most plain lines, or it would be no
quicker."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import random

import pytest

from cprof.cli import parser as grammar
from cprof.cli.quick import REMAINDER, SUPPRESS, Namespace, Recorder

# Values an option or positional argument may be given: numbers, text, text
# that looks like an option or a negative number, empty text, a choice.
VALUES = ["1", "3", "0", "-1", "2.5", "1e3", "nan", "x", "a.prof", "-x", "--y", "", "cpu",
          "wall", "9", "10", "foo=5%", "k=v", "-", "--", "a b", "12kb:64mb"]
POSITIONALS = ["a.prof", "b.prof", "main.*", "-", "script.py", "x", "--", "-z", "1"]


def whole_grammar() -> Recorder:
    recorder = Recorder()
    assert grammar._grammar(None, recorder)
    return recorder


# The grammars are built once per command, as the command line builds them
# for its first word (neither reading keeps state between lines): thousands of
# lines would otherwise spend most of their time building them.
@functools.cache
def argparse_parser(command: str) -> argparse.ArgumentParser:
    return grammar.parser([command])


@functools.cache
def recorded(command: str) -> Recorder | None:
    recorder = Recorder()
    return recorder if grammar._grammar(command, recorder) else None


def argparse_reading(argv: list[str]) -> argparse.Namespace | None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return argparse_parser(argv[0]).parse_args(argv)
        except SystemExit:
            return None


def quick_reading(argv: list[str]) -> Namespace | None:
    recorder = recorded(argv[0])
    if recorder is None:
        return None
    return recorder.commands[argv[0]].read(argv[1:])


def fitting_value(rng: random.Random, action: object) -> str:
    """A value of the option's type (a choice of its choices), mostly."""
    if rng.random() < 0.3:
        return rng.choice(VALUES)
    choices = getattr(action, "choices", None)
    if choices is not None:
        return str(rng.choice(list(choices)))
    kind = getattr(action, "type", None)
    return {int: rng.choice(["1", "7", "40"]), float: rng.choice(["0.5", "1e3", "100"])}.get(
        kind, rng.choice(["x", "main.*", "out.prof", "k=v", "cpu=2s"]))


def same(a: object, b: object) -> bool:
    """The two namespaces hold the same values (nan included)."""
    return repr(sorted(vars(a).items())) == repr(sorted(vars(b).items()))


def generate(rng: random.Random, name: str, command: Recorder) -> list[str]:
    options = sorted({flag for flag in command.options})
    words: list[str] = []
    for _ in range(rng.randrange(4)):
        flag = rng.choice(options) if rng.random() < 0.9 else rng.choice(
            ["-h", "--help", "-foc", "--node", "-bogus", "-n5", "-o=x"])
        action = command.options.get(flag)
        takes_value = action is None or action.kind in ("store", "append")
        if takes_value and rng.random() < 0.3:
            words.append(f"{flag}={fitting_value(rng, action)}")
        elif takes_value and rng.random() < 0.95:
            words += [flag, fitting_value(rng, action)]
        else:
            words.append(flag)
    needed = sum(1 for a in command.positionals if a.nargs != REMAINDER) or 1
    count = needed + rng.randrange(2) if rng.random() < 0.7 else rng.randrange(4)
    positional = [rng.choice(POSITIONALS[:3]) if rng.random() < 0.8 else rng.choice(POSITIONALS)
                  for _ in range(count)]
    if rng.random() < 0.85:
        at = rng.randrange(len(words) + 1) if rng.random() < 0.3 else len(words)
        words[at:at] = positional
    else:  # split by an option
        words = positional[:1] + words + positional[1:]
    return [name, *words]


@pytest.mark.parametrize("seed", range(4))
def test_quick_reading_agrees_with_argparse(seed: int) -> None:
    rng = random.Random(seed)
    commands = whole_grammar().commands
    read = refused = 0
    for name in sorted(commands):
        for _ in range(300):
            argv = generate(rng, name, commands[name])
            quick = quick_reading(argv)
            if quick is None:
                refused += 1
                continue
            read += 1
            full = argparse_reading(argv)
            assert full is not None, f"quick reading accepted what argparse refuses: {argv}"
            assert same(quick, full), argv
    # The generator makes plain lines often enough that a reading which gave
    # up on everything would fail here.
    assert read > 0.25 * (read + refused), (read, refused)


PLAIN = [
    ["top", "a.prof"],
    ["top", "-nodecount=3", "-focus", "x", "a.prof", "b.prof"],
    ["top", "-cum", "-sample_index=cpu", "--tagfocus", "bytes=1kb:", "a.prof"],
    ["top", "a.prof", "-lines"],
    ["tree", "-edgefraction", "0.01", "-base", "b.prof", "-base", "c.prof", "a.prof"],
    ["peek", "main.*", "a.prof"],
    ["list", "-source_path", "/src", "fib", "a.prof"],
    ["summary", "a.prof", "--top", "2", "--level", "0"],
    ["record", "--hz", "1000", "-o", "out.prof", "script.py", "-o", "x", "--", "y"],
    ["record", "--native", "--mode", "wall", "script.py"],
    ["record", "--follow", "--per-process", "procs", "script.py"],
    ["record", "-o", "out.prof", "--", "python", "-X", "dev", "x.py", "--", "-o"],
    ["record", "--", "-m", "json.tool"],
    ["serve", "--port", "0", "--allow-host", "a", "--allow-host", "b", "app.py"],
    ["check", "a.prof", "--max-share", "x=5%", "--baseline", "b.prof"],
    ["diff", "a.prof", "b.prof", "-n", "4"],
    ["flame", "a.prof", "-o", "f.svg"],
    ["merge", "-o", "m.prof", "a.prof", "b.prof"],
    ["attach", "123", "--seconds", "2", "-o", "x.prof"],  # a typed positional
    ["attach", "--heap", "--heap-rate", "4096", "42"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=lambda a: " ".join(a))
def test_plain_command_lines_are_read_quickly_and_alike(argv: list[str]) -> None:
    quick = quick_reading(argv)
    assert quick is not None
    full = argparse_reading(argv)
    assert full is not None and same(quick, full)
    assert same(grammar.parse(argv), full)


LEFT_TO_ARGPARSE = [
    ["top"],                                  # PROFILE is required
    ["top", "-h"],
    ["top", "-nodec", "3", "a.prof"],         # an abbreviation
    ["top", "-n", "x", "a.prof"],             # not a number
    ["top", "-focus", "a.prof"],              # the value is taken: no PROFILE left
    ["top", "-lines", "-files", "a.prof"],    # exclusive
    ["top", "a.prof", "-cum", "b.prof"],      # split positionals
    ["top", "-focus", "-x", "a.prof"],        # a value that looks like an option
    ["top", "-cum=1", "a.prof"],              # a value for a flag
    ["summary", "a.prof", "--level", "12"],   # not a choice
    ["merge", "a.prof"],                      # -o is required
    ["record", "-m", "json.tool"],            # -m takes the rest
    ["diff", "--", "a.prof", "b.prof"],           # "--" before positionals
    ["record"],
    ["attach", "x"],                          # not an int: argparse says so
    ["attach", "--dump", "--heap", "1"],      # exclusive
    ["--help"],
    ["bogus", "a.prof"],
]


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=lambda a: " ".join(a) or "nothing")
def test_what_is_not_plain_is_left_to_argparse(argv: list[str]) -> None:
    assert quick_reading(argv) is None


def test_argparse_errors_keep_their_messages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        grammar.parse(["top", "-nodecount", "x", "a.prof"])
    assert exit.value.code == 2
    assert "argument -n/-nodecount/--nodecount: invalid int value: 'x'" in capsys.readouterr().err


def test_argparses_markers_are_copied_right() -> None:
    assert (REMAINDER, SUPPRESS) == (argparse.REMAINDER, argparse.SUPPRESS)
