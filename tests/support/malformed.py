"""Malformed pprof inputs, each with the ProfileError message it must produce.

Shared by tests/pprof/test_malformed.py and csrc/fuzz/run.sh (which seeds the
fuzzer with them). Inputs are cut from a real Go profile or hand-encoded with
the small protobuf writer below, so each one breaks exactly one rule.
"""

from __future__ import annotations

import functools
import gzip
import re
import struct
import zlib
from pathlib import Path

GO_DIR = Path(__file__).resolve().parents[1] / "testdata" / "go"

# Keyword arguments of decode() for the inputs that need limits other than
# the defaults (max_size 1 GiB, max_ratio 256).
LIMITS: dict[str, dict[str, int]] = {
    "gzip-bomb-20MiB-small-cap": {"max_size": 1 << 20},
    "gzip-bomb-lying-isize-small-cap": {"max_size": 1 << 20},
    "gzip-bomb-64MiB-no-ratio-check": {"max_size": 32 << 20, "max_ratio": 0},
    "raw-over-small-cap": {"max_size": 100},
    "gzip-over-small-cap": {"max_size": 100},
    "empty-samples-over-memory-cap": {"max_size": 1 << 20},
}

# Wire types (protobuf encoding spec).
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5

# profile.proto field numbers, named once.
PROFILE_SAMPLE_TYPE = 1
PROFILE_SAMPLE = 2
PROFILE_MAPPING = 3
PROFILE_LOCATION = 4
PROFILE_FUNCTION = 5
PROFILE_STRING_TABLE = 6
PROFILE_DROP_FRAMES = 7
PROFILE_COMMENT = 13
VALUE_TYPE_TYPE, VALUE_TYPE_UNIT = 1, 2
SAMPLE_LOCATION_ID, SAMPLE_VALUE, SAMPLE_LABEL = 1, 2, 3
LABEL_KEY, LABEL_STR = 1, 2
MAPPING_ID, MAPPING_FILENAME = 1, 5
LOCATION_ID, LOCATION_MAPPING_ID, LOCATION_LINE = 1, 2, 4
LINE_FUNCTION_ID = 1
FUNCTION_ID, FUNCTION_NAME = 1, 2

PROFILE_FIELD_NAMES = {
    1: "sample_type", 2: "sample", 3: "mapping", 4: "location", 5: "function",
    6: "string_table", 7: "drop_frames", 8: "keep_frames", 9: "time_nanos",
    10: "duration_nanos", 11: "period_type", 12: "period", 13: "comment",
    14: "default_sample_type", 15: "doc_url",
}


# --- a tiny protobuf writer -------------------------------------------------

def varint(value: int) -> bytes:
    """Base-128 varint; negative values as 64-bit two's complement, as int64 is."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def f_varint(field: int, value: int) -> bytes:
    return tag(field, VARINT) + varint(value)


def f_bytes(field: int, payload: bytes) -> bytes:
    return tag(field, LEN) + varint(len(payload)) + payload


def f_packed(field: int, values: list[int]) -> bytes:
    return f_bytes(field, b"".join(varint(v) for v in values))


def value_type(type_: int, unit: int) -> bytes:
    return f_varint(VALUE_TYPE_TYPE, type_) + f_varint(VALUE_TYPE_UNIT, unit)


def label(key: int, str_: int) -> bytes:
    return f_varint(LABEL_KEY, key) + f_varint(LABEL_STR, str_)


def sample(location_ids: list[int], values: list[int], labels: tuple[bytes, ...] = ()) -> bytes:
    return (f_packed(SAMPLE_LOCATION_ID, location_ids) + f_packed(SAMPLE_VALUE, values)
            + b"".join(f_bytes(SAMPLE_LABEL, lab) for lab in labels))


def mapping(id_: int, filename: int) -> bytes:
    return f_varint(MAPPING_ID, id_) + f_varint(MAPPING_FILENAME, filename)


def location(id_: int, mapping_id: int, function_ids: list[int]) -> bytes:
    return (f_varint(LOCATION_ID, id_) + f_varint(LOCATION_MAPPING_ID, mapping_id)
            + b"".join(f_bytes(LOCATION_LINE, f_varint(LINE_FUNCTION_ID, fid))
                       for fid in function_ids))


def function(id_: int, name: int) -> bytes:
    return f_varint(FUNCTION_ID, id_) + f_varint(FUNCTION_NAME, name)


STRINGS = [b"", b"samples", b"count", b"a.out", b"main", b"worker"]


def profile(**parts: object) -> bytes:
    """A small valid profile; each keyword replaces one part of it.

    Parts: sample_type, sample, mapping, location, function (lists of encoded
    messages), string_table (list of bytes), head and tail (raw bytes put
    before and after everything else).
    """
    p: dict[str, object] = {
        "head": b"",
        "sample_type": [value_type(1, 2)],
        "sample": [sample([1], [10], (label(5, 4),))],
        "mapping": [mapping(1, 3)],
        "location": [location(1, 1, [1])],
        "function": [function(1, 4)],
        "string_table": STRINGS,
        "tail": b"",
    }
    unknown = set(parts) - set(p)
    if unknown:
        raise TypeError(f"unknown profile parts {sorted(unknown)}")
    p.update(parts)
    out = bytearray(p["head"])  # type: ignore[arg-type]
    for name, number in [("sample_type", PROFILE_SAMPLE_TYPE), ("sample", PROFILE_SAMPLE),
                         ("mapping", PROFILE_MAPPING), ("location", PROFILE_LOCATION),
                         ("function", PROFILE_FUNCTION),
                         ("string_table", PROFILE_STRING_TABLE)]:
        for item in p[name]:  # type: ignore[attr-defined]
            out += f_bytes(number, item)
    out += p["tail"]  # type: ignore[operator]
    return bytes(out)


# --- a tiny protobuf reader, to aim cuts at known fields --------------------

def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def top_level_fields(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """(start, field number, wire type, payload start, payload end) of each field."""
    fields = []
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            payload = pos
            _, pos = read_varint(data, pos)
        elif wire_type == LEN:
            length, payload = read_varint(data, pos)
            pos = payload + length
        else:
            raise ValueError(f"unexpected wire type {wire_type} at byte {start}")
        fields.append((start, number, wire_type, payload, pos))
    return fields


# --- gzip helpers -----------------------------------------------------------

GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, OS unknown


@functools.cache
def zeros_gzip(mib: int, lie_isize: int | None = None) -> bytes:
    """gzip of mib MiB of zeros, built without holding them inflated.

    After a full flush deflate forgets its history, so every flushed 1 MiB
    block of zeros compresses to the same bytes: one block repeated makes the
    stream, and only the CRC needs a pass over the data.
    """
    chunk = bytes(1 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflater.compress(chunk) + deflater.flush(zlib.Z_FULL_FLUSH)
    end = deflater.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    isize = (mib << 20) & 0xFFFFFFFF if lie_isize is None else lie_isize
    return GZIP_HEADER + block * mib + end + struct.pack("<II", crc, isize)


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def go_profile(name: str) -> bytes:
    return (GO_DIR / name).read_bytes()


# --- the corpus -------------------------------------------------------------

def _truncations(raw: bytes) -> list[tuple[str, bytes, str]]:
    """Cuts into the middle of chosen top-level fields of a real profile."""
    fields = top_level_fields(raw)
    cases = []
    wanted = [PROFILE_SAMPLE_TYPE, PROFILE_SAMPLE, PROFILE_LOCATION, PROFILE_FUNCTION,
              PROFILE_STRING_TABLE]
    for number in wanted:
        start, _, _, payload, end = [f for f in fields if f[1] == number][-1]
        cut = payload + (end - payload) // 2
        name = PROFILE_FIELD_NAMES[number]
        cases.append((
            f"raw-truncated-in-{name}-at-{cut}", raw[:cut],
            rf"^protobuf: Profile\.{name} \(field {number}\) at byte {start} declares "
            rf"{end - payload} bytes but only {cut - payload} remain$"))
    # A cut inside a multi-byte varint value (time_nanos is always one).
    start, number, _, payload, end = [f for f in fields if f[2] == VARINT and f[4] - f[3] > 2][0]
    name = PROFILE_FIELD_NAMES[number]
    cases.append((
        f"raw-truncated-in-varint-{name}", raw[:payload + 2],
        rf"^protobuf: truncated varint in Profile\.{name} \(field {number}\) at byte {start}$"))
    # A cut right after a field's tag: its length prefix is missing, and the
    # message must not claim a length was declared.
    start, number, _, _, _ = fields[-1]
    cases.append((
        "raw-truncated-after-tag", raw[:start + 1],
        rf"^(?!.*declares 0 bytes)protobuf: .*Profile\.{PROFILE_FIELD_NAMES[number]} "
        rf"\(field {number}\) at byte {start}"))
    return cases


def corpus() -> list[tuple[str, bytes, str]]:
    """(name, input, regex the ProfileError message must match) for every case.

    Decode each with decode(data, **LIMITS.get(name, {})).
    """
    gz = go_profile("cpu.prof")
    raw = gzip.decompress(gz)
    not_str = r"is not a valid string index \(the string table has 6 entries\)"
    cases: list[tuple[str, bytes, str]] = [
        ("empty", b"", r"^empty input"),
        *_truncations(raw),

        # gzip framing.
        ("gzip-truncated-mid-stream", gz[:len(gz) // 2],
         rf"^gzip: the stream is truncated after {len(gz) // 2} of its bytes"),
        ("gzip-truncated-header-only", gz[:10],
         r"^gzip: the stream is truncated after 10 of its bytes"),
        ("gzip-truncated-in-trailer", gz[:-2],
         rf"^gzip: the stream is truncated after {len(gz) - 2} of its bytes"),
        ("gzip-crc-flip-in-trailer", flip(gz, len(gz) - 8),
         r"^gzip: corrupt data at input offset \d+: incorrect data check$"),
        ("gzip-crc-flip-in-stored-body", flip(gzip.compress(raw, 0, mtime=0), 200),
         r"^gzip: corrupt data at input offset \d+: incorrect data check$"),
        ("gzip-isize-flip", flip(gz, len(gz) - 1, 0x80),
         r"^gzip: corrupt data at input offset \d+: incorrect length check$"),
        ("gzip-bad-method", flip(gz, 2, 0x01),
         r"^gzip: corrupt data at input offset \d+: unknown compression method$"),
        ("gzip-reserved-flags", flip(gz, 3, 0xE0),
         r"^gzip: corrupt data at input offset \d+: unknown header flags set$"),
        ("gzip-trailing-garbage", gz + b"garbage!",
         rf"^gzip: 8 bytes of trailing garbage after the gzip stream \(offset {len(gz)}\)$"),
        ("gzip-truncated-second-member", gz + gz[:40],
         rf"^gzip: the stream is truncated after {len(gz) + 40} of its bytes"),
        ("gzip-bomb-20MiB-small-cap", zeros_gzip(20),
         r"^gzip: the profile inflates to more than 1048576 bytes \(the max_size limit"),
        ("gzip-bomb-lying-isize-small-cap", zeros_gzip(20, lie_isize=1000),
         r"^gzip: the profile inflates to more than 1048576 bytes \(the max_size limit"),
        ("gzip-bomb-64MiB-no-ratio-check", zeros_gzip(64),
         r"^gzip: the profile inflates to more than 33554432 bytes \(the max_size limit"),
        ("gzip-bomb-1025MiB-default-cap", zeros_gzip(1025),
         r"^gzip: \d+ bytes inflated to more than \d+, over 256-fold.*gzip bomb"),
        ("raw-over-small-cap", raw,
         rf"^the profile is {len(raw)} bytes, more than the max_size limit of 100$"),
        ("gzip-over-small-cap", gz,
         rf"^the profile is {len(gz)} bytes \(gzipped\), more than the max_size limit of 100;"),
        ("gzip-isize-forged-4GiB", gz[:-4] + struct.pack("<I", 0xFFFFFFF0),
         r"^gzip: corrupt data at input offset \d+: incorrect length check$"),
        ("empty-samples-over-memory-cap", f_bytes(PROFILE_STRING_TABLE, b"") + b"\x12\x00" * 20000,
         r"^the decoded profile needs more than 1048576 bytes of memory \(the max_size limit\)"),

        # Text is not a profile, and is called what it looks like.
        ("text-json", b'{"samples": [{"value": 1}, {"value": 2}]}\n',
         r"^not a pprof profile: it looks like JSON; a pprof profile is a protobuf message"),
        ("text-markdown", b"# cprof\n\npprof for Python: a profiler.\n",
         r"^not a pprof profile: it looks like text; "),
        ("text-gzipped-html", gzip.compress(b"<html><body>404 page not found</body></html>", mtime=0),
         r"^not a pprof profile: it looks like gzipped HTML; "),

        # String table rules.
        ("string-table-empty", profile(string_table=[]), r"^string_table is empty"),
        ("string-table-0-not-empty", profile(string_table=[b"x" * 50] + STRINGS[1:]),
         r"^string_table\[0\] must be \"\" but holds 50 bytes \(\"x{40}\"\)$"),
        ("string-table-0-short", profile(string_table=[b"abc"] + STRINGS[1:]),
         r"^string_table\[0\] must be \"\" but holds 3 bytes \(\"abc\"\)$"),
        ("str-sample-type-type", profile(sample_type=[value_type(6, 2)]),
         rf"^sample_type\[0\]\.type = 6 {not_str}$"),
        ("str-sample-type-unit-negative", profile(sample_type=[value_type(1, -1)]),
         rf"^sample_type\[0\]\.unit = -1 {not_str}$"),
        ("str-label-key", profile(sample=[sample([1], [10], (label(5, 4), label(99, 4)))]),
         rf"^sample\[0\]\.label\[1\]\.key = 99 {not_str}$"),
        ("str-function-name", profile(function=[function(1, 1 << 40)]),
         rf"^function\[0\]\.name = 1099511627776 {not_str}$"),
        ("str-comment", profile(tail=f_packed(PROFILE_COMMENT, [1, 7])),
         rf"^comment\[1\] = 7 {not_str}$"),
        ("str-drop-frames", profile(tail=f_varint(PROFILE_DROP_FRAMES, 6)),
         rf"^drop_frames = 6 {not_str}$"),
        ("str-mapping-filename", profile(mapping=[mapping(1, 3), mapping(2, 12)]),
         rf"^mapping\[1\]\.filename = 12 {not_str}$"),

        # Ids: non-zero, unique, present.
        ("id-zero-location", profile(location=[location(0, 1, [1])]),
         r"^location\[0\] has id 0; location ids must be non-zero$"),
        ("id-zero-function", profile(function=[function(1, 4), function(0, 4)]),
         r"^function\[1\] has id 0; function ids must be non-zero$"),
        ("id-zero-mapping", profile(mapping=[mapping(0, 3)]),
         r"^mapping\[0\] has id 0; mapping ids must be non-zero$"),
        ("id-duplicate-location", profile(location=[location(1, 1, [1]), location(1, 1, [1])]),
         r"^location\[0\] and location\[1\] share id 1; location ids must be unique$"),
        ("id-duplicate-function",
         profile(function=[function(7, 4), function(3, 4), function(7, 4)],
                 location=[location(1, 1, [7])]),
         r"^function\[0\] and function\[2\] share id 7; function ids must be unique$"),
        ("id-duplicate-mapping", profile(mapping=[mapping(5, 3), mapping(5, 3)],
                                         location=[location(1, 5, [1])]),
         r"^mapping\[0\] and mapping\[1\] share id 5; mapping ids must be unique$"),
        ("ref-missing-location", profile(sample=[sample([1], [1]), sample([1, 99], [1])]),
         r"^sample\[1\]\.location_id\[1\] = 99, but no location has that id$"),
        ("ref-missing-location-first", profile(sample=[sample([99], [1])]),
         r"^sample\[0\]\.location_id\[0\] = 99, but no location has that id$"),
        ("ref-missing-function", profile(location=[location(1, 1, [1, 77])]),
         r"^location\[0\] \(id 1\) line\[1\] refers to function id 77, which no function has$"),
        ("ref-missing-mapping", profile(location=[location(1, 55, [1])]),
         r"^location\[0\] \(id 1\) refers to mapping id 55, which no mapping has$"),
        ("sample-too-many-values", profile(sample=[sample([1], [10, 20])]),
         r"^sample\[0\] has 2 values but the profile has 1 sample types"),
        ("sample-no-values", profile(sample=[sample([1], [10]), f_packed(SAMPLE_LOCATION_ID, [1])]),
         r"^sample\[1\] has 0 values but the profile has 1 sample types"),

        # Wire format.
        ("wire-sample-type-as-varint", profile(head=f_varint(PROFILE_SAMPLE_TYPE, 1)),
         r"^protobuf: Profile\.sample_type \(field 1\) at byte 0 has wire type varint, "
         r"which does not fit its declared type$"),
        ("wire-drop-frames-as-bytes", profile(tail=f_bytes(PROFILE_DROP_FRAMES, b"\x01")),
         r"^protobuf: Profile\.drop_frames \(field 7\) at byte \d+ has wire type "
         r"length-delimited, which does not fit"),
        ("wire-nested-wrong-type",
         profile(location=[f_varint(LOCATION_ID, 1) + tag(LOCATION_LINE, VARINT) + varint(1)]),
         r"^protobuf: Profile\.location\[0\]\.line \(field 4\) at byte \d+ has wire type varint"),
        ("wire-huge-length", profile(head=tag(PROFILE_SAMPLE, LEN) + varint(0xFFFFFFFF)),
         r"^protobuf: Profile\.sample \(field 2\) at byte 0 declares 4294967295 bytes but only "
         r"\d+ remain$"),
        ("wire-huge-length-nested",
         profile(sample=[tag(SAMPLE_LABEL, LEN) + varint(0xFFFFFFFF) + b"\x08\x01"]),
         r"^protobuf: Profile\.sample\[0\]\.label \(field 3\) at byte \d+ declares 4294967295 "
         r"bytes but only 2 remain$"),
        ("wire-overlong-varint", profile(head=tag(PROFILE_DROP_FRAMES, VARINT) + b"\xff" * 10 + b"\x01"),
         r"^protobuf: over-long varint in Profile\.drop_frames \(field 7\) at byte 0$"),
        ("wire-overlong-tag", b"\x80" * 10 + b"\x01",
         r"^protobuf: over-long.* field tag at byte 0 of Profile$"),
        ("wire-field-0", profile(tail=b"\x00\x01"),
         r"^protobuf: invalid field number 0 at byte \d+ of Profile$"),
        # protobuf-c checks for field 0 only in a tag's first byte, so a
        # padded tag slips through and is re-encoded as an invalid 1-byte tag
        # (fuzzer finding: tests/testdata/fuzz/roundtrip-field0-padded-tag.bin).
        ("wire-field-0-padded-tag", profile(tail=b"\x80\x00\x01"),
         r"^protobuf: invalid field number 0 at byte 81 of Profile$"),
        ("wire-field-0-padded-tag-nested", profile(function=[function(1, 4) + b"\x80\x00\x01"]),
         r"^protobuf: invalid field number 0 at byte \d+ of Profile\.function\[0\]$"),
        ("wire-field-0-nested", profile(function=[function(1, 4) + b"\x02\x00"]),
         r"^protobuf: invalid field number 0 at byte \d+ of Profile\.function\[0\]$"),
        ("wire-start-group", profile(tail=tag(PROFILE_SAMPLE, SGROUP)),
         r"^protobuf: start-group wire type in Profile\.sample \(field 2\) at byte \d+; "
         r"profile.proto uses no groups$"),
        ("wire-end-group-unknown-field", profile(tail=tag(100, EGROUP)),
         r"^protobuf: end-group wire type in Profile\.unknown field \(field 100\) at byte \d+"),
        ("wire-overlong-length", profile(tail=tag(PROFILE_SAMPLE, LEN) + b"\xff" * 10 + b"\x01"),
         r"^(?!.*declares 0 bytes)(?=.*over-long)protobuf: .*Profile\.sample \(field 2\) at byte 81"),
        # protobuf-c reads at most 5 bytes of a tag or a length prefix; the
        # message must still name the fault.
        ("wire-padded-tag-6-bytes",
         profile(tail=b"\xb8\x80\x80\x80\x80\x00" + varint(1)),
         r"^(?!.*no wire fault)protobuf: .*tag at byte 81"),
        ("wire-padded-length-6-bytes",
         profile(tail=tag(PROFILE_SAMPLE, LEN) + b"\x80\x80\x80\x80\x80\x00"),
         r"^(?!.*no wire fault)protobuf: .*Profile\.sample \(field 2\) at byte 81"),
        ("wire-type-7", b"\x1f", r"^protobuf: invalid \(7\) wire type in Profile\.mapping \(field 3\)"),
        ("wire-packed-ends-in-varint",
         profile(sample=[f_bytes(SAMPLE_LOCATION_ID, b"\x01\x81") + f_packed(SAMPLE_VALUE, [1])]),
         r"^protobuf: packed Profile\.sample\[0\]\.location_id at byte \d+ ends inside a varint$"),
        ("wire-packed-overlong-varint",
         profile(sample=[f_packed(SAMPLE_LOCATION_ID, [1])
                         + f_bytes(SAMPLE_VALUE, b"\x81" + b"\x80" * 9 + b"\x00")]),
         r"^protobuf: packed Profile\.sample\[0\]\.value at byte \d+ .*over-long"),
    ]
    for name, _, pattern in cases:
        re.compile(pattern)  # fail here, not in a test, on a typo
    return cases


def valid() -> list[tuple[str, bytes]]:
    """Inputs the corpus mutates, which must decode: the base hand-encoded
    profile and every Go profile, gzipped and raw."""
    out = [("hand-encoded", profile())]
    for path in sorted(GO_DIR.glob("*.prof")):
        data = path.read_bytes()
        out.append((path.name, data))
        out.append((path.name + ".raw", gzip.decompress(data)))
    return out
