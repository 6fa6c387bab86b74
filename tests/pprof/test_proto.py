"""csrc/proto: our profile.proto holds every field of the pprof specification
with its number, and the committed protoc-c output is what `make proto` makes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROTO_DIR = Path(__file__).resolve().parents[2] / "csrc" / "proto"

# profile.proto of github.com/google/pprof: message -> {field: number}.
SPEC = {
    "Profile": {"sample_type": 1, "sample": 2, "mapping": 3, "location": 4, "function": 5,
                "string_table": 6, "drop_frames": 7, "keep_frames": 8, "time_nanos": 9,
                "duration_nanos": 10, "period_type": 11, "period": 12, "comment": 13,
                "default_sample_type": 14, "doc_url": 15},
    "ValueType": {"type": 1, "unit": 2},
    "Sample": {"location_id": 1, "value": 2, "label": 3},
    "Label": {"key": 1, "str": 2, "num": 3, "num_unit": 4},
    "Mapping": {"id": 1, "memory_start": 2, "memory_limit": 3, "file_offset": 4,
                "filename": 5, "build_id": 6, "has_functions": 7, "has_filenames": 8,
                "has_line_numbers": 9, "has_inline_frames": 10},
    "Location": {"id": 1, "mapping_id": 2, "address": 3, "line": 4, "is_folded": 5},
    "Line": {"function_id": 1, "line": 2, "column": 3},
    "Function": {"id": 1, "name": 2, "system_name": 3, "filename": 4, "start_line": 5},
}


def parse_proto(text: str) -> dict[str, dict[str, int]]:
    text = re.sub(r"//[^\n]*", "", text)
    messages = {}
    for name, body in re.findall(r"message\s+(\w+)\s*\{([^}]*)\}", text):
        messages[name] = {f: int(n) for f, n in re.findall(r"(\w+)\s*=\s*(\d+)\s*;", body)}
    return messages


def test_every_spec_field_is_declared_with_its_number() -> None:
    assert parse_proto((PROTO_DIR / "profile.proto").read_text()) == SPEC


def test_committed_protoc_c_output_is_current(tmp_path: Path) -> None:
    protoc_c = shutil.which("protoc-c")
    if protoc_c is None:
        pytest.fail("protoc-c is not installed: apt-get install protobuf-c-compiler "
                    "(make test installs it)")
    shutil.copy(PROTO_DIR / "profile.proto", tmp_path)
    subprocess.run([protoc_c, "--c_out=.", "profile.proto"], cwd=tmp_path, check=True)
    for name in ("profile.pb-c.c", "profile.pb-c.h"):
        fresh = (tmp_path / name).read_text()
        committed = (PROTO_DIR / name).read_text()
        assert fresh == committed, f"csrc/proto/{name} is stale: run `make proto` and commit"
