"""The ctypes structures of clattn._native against clattn.h itself: a C
program compiled here prints every field's offset and every struct's size."""
import ctypes
import pathlib
import shutil
import subprocess

import pytest

from clattn import _native as N

ROOT = pathlib.Path(__file__).resolve().parents[2]


def c_layout(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to read clattn.h's layout"
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "clattn.h"',
             "int main(void) {"]
    for cname, cls in N.STRUCTS.items():
        lines.append(f'printf("{cname} sizeof %zu\\n", sizeof({cname}));')
        for field, _ in cls._fields_:
            lines.append(f'printf("{cname} {field} %zu\\n", offsetof({cname}, {field}));')
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", str(ROOT / "include"), "-DCL_TARGET_OPENCL_VERSION=120",
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return {tuple(l.split()[:2]): int(l.split()[2]) for l in out.splitlines()}


def test_structs_match_header(tmp_path):
    want = c_layout(tmp_path)
    bad = []
    for cname, cls in N.STRUCTS.items():
        if ctypes.sizeof(cls) != want[(cname, "sizeof")]:
            bad.append(f"{cname}: size {ctypes.sizeof(cls)} vs {want[(cname, 'sizeof')]}")
        for field, _ in cls._fields_:
            got = getattr(cls, field).offset
            if got != want[(cname, field)]:
                bad.append(f"{cname}.{field}: offset {got} vs {want[(cname, field)]}")
    assert not bad, "\n".join(bad)


def test_version_matches_header():
    import clattn
    text = (ROOT / "include" / "clattn.h").read_text()
    parts = [next(l.split()[2] for l in text.splitlines()
                  if l.startswith(f"#define CLATTN_VERSION_{p} ")) for p in
             ("MAJOR", "MINOR", "PATCH")]
    assert clattn.version() == ".".join(parts)
    assert clattn.__version__ == ".".join(parts)
