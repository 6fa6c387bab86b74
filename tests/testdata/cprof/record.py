"""Record listdemo.prof: listdemo.py run under cprof's CPU profiler, its code
compiled under the file name /cprof-testdata/listdemo.py, so that reports find
the source only with -trim_path=/cprof-testdata and -source_path set to this
directory (and otherwise print pprof's missing-file error).

    PYTHONPATH=. python tests/testdata/cprof/record.py

Then remake the golden files as tests/report/test_tree.py says.
"""

from __future__ import annotations

from pathlib import Path

import cprof

HERE = Path(__file__).resolve().parent
FILENAME = "/cprof-testdata/listdemo.py"

code = compile((HERE / "listdemo.py").read_text(), FILENAME, "exec")
with cprof.cpu(hz=1000) as c:
    exec(code, {"__name__": "listdemo"})
c.profile.write(HERE / "listdemo.prof")
