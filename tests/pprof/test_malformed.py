"""Malformed profiles are refused with a ProfileError that names the fault.

The cases live in malformed.py (shared with the fuzzer's seeds); here each is
decoded, plus a seeded random mutation sweep over the Go profiles.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from cprof._core import ProfileError, decode
from malformed import LIMITS, corpus, valid

BOMB_NAME = "gzip-bomb-1025MiB-default-cap"
# The 1 GiB bomb has a test of its own, which also times it.
CASES = [case for case in corpus() if case[0] != BOMB_NAME]
BOMB = next(case for case in corpus() if case[0] == BOMB_NAME)


@pytest.mark.parametrize("name,data,pattern", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_is_refused_with_a_precise_message(name: str, data: bytes,
                                                           pattern: str) -> None:
    with pytest.raises(ProfileError) as info:
        decode(data, **LIMITS.get(name, {}))
    assert re.search(pattern, str(info.value)), f"{name}: message {str(info.value)!r}"


def test_profile_error_is_a_value_error() -> None:
    assert issubclass(ProfileError, ValueError)


def test_gzip_bomb_with_the_default_cap_is_refused_within_a_second() -> None:
    _, bomb, pattern = BOMB  # 1025 MiB of zeros in about 1 MB
    start = time.perf_counter()
    with pytest.raises(ProfileError) as info:
        decode(bomb)
    elapsed = time.perf_counter() - start
    assert re.search(pattern, str(info.value)), str(info.value)
    assert elapsed < 1.0, f"refusing a {len(bomb)}-byte gzip bomb took {elapsed:.2f} s"


@pytest.mark.parametrize("name,data", valid(), ids=[v[0] for v in valid()])
def test_valid_profiles_still_decode(name: str, data: bytes) -> None:
    p = decode(data)
    assert decode(p.encode()).counts() == p.counts()
    assert decode(p.encode(level=0)).totals() == p.totals()


FUZZ_DIR = Path(__file__).resolve().parents[1] / "testdata" / "fuzz"
REPRODUCERS = sorted(FUZZ_DIR.glob("*.bin"))


@pytest.mark.parametrize("path", REPRODUCERS, ids=[p.name for p in REPRODUCERS])
def test_fuzzer_findings_are_refused_or_round_trip(path: Path) -> None:
    """Inputs that once crashed csrc/fuzz/fuzz_decode (see docs/FUZZING.md)."""
    try:
        p = decode(path.read_bytes())
    except ProfileError:
        return
    assert decode(p.encode(level=0)).counts() == p.counts()
    assert decode(p.encode()).totals() == p.totals()


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random edits: bit flips, byte writes, inserts, deletes,
    truncation, a repeated slice."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        at = rng.randrange(len(out)) if out else 0
        if kind == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[at] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif kind == 2:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 3:
            del out[at:at + rng.randint(1, 16)]
        elif kind == 4:
            del out[at:]
        else:
            out[at:at] = out[at:at + rng.randint(1, 64)]
    return bytes(out)


def test_random_mutations_decode_or_raise_profile_error() -> None:
    rng = random.Random(1234)
    inputs = [data for name, data in valid() if name != "hand-encoded"]
    outcomes = {"decoded": 0, "refused": 0}
    for i in range(2000):
        data = mutate(rng, inputs[i % len(inputs)])
        try:
            p = decode(data)
        except ProfileError as e:
            assert str(e), f"mutation {i}: empty message"
            outcomes["refused"] += 1
            continue
        # What decodes must survive its own encoding.
        assert decode(p.encode()).counts() == p.counts(), f"mutation {i}"
        outcomes["decoded"] += 1
    # Most mutations break a rule, but enough stay valid that the round trip ran.
    assert outcomes["decoded"] >= 20 and outcomes["refused"] >= 1000, outcomes
