"""What a followed child's saves cost it: `cprof record --follow` over a child
that runs --seconds of CPU spread over --functions generated functions (so
its profile has about that many locations), sampled at --hz.

A followed child writes what it has every second, less often once a save
takes over 1% of that time (FLUSH_SHARE in cprof/collect/follow.py); a save
merges and writes the whole profile so far, so its cost grows with the
profile. The child reports, at its end, the CPU time of its main thread and
of cprof's saving thread (its flusher, read from /proc/self/task), and this
prints the second as a share of the first, for each size asked for.

    python benchmarks/follow_saves.py [--seconds S] [--hz H] [--functions N[,N...]]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent('''\
    import os, random, sys, time
    n, seconds = int(sys.argv[1]), float(sys.argv[2])
    source = "def g(k):\\n    s = 0\\n    for i in range(200):\\n        s += i\\n    return s\\n"
    source += "".join(f"def f{i}(k):\\n    return g(k)\\n" for i in range(n))
    namespace = {}
    exec(source, namespace)
    functions = [namespace[f"f{i}"] for i in range(n)]
    pick = random.Random(1)
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        f = functions[pick.randrange(n)]
        for _ in range(20):
            f(1)

    def cpu(tid):
        fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    from cprof.collect import follow
    print(cpu(os.getpid()), cpu(follow._child.flusher_id), flush=True)
''')

PARENT = textwrap.dedent('''\
    import subprocess, sys
    subprocess.run([sys.executable, "child.py", *sys.argv[1:]], check=True)
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hz", type=float, default=1000.0)
    parser.add_argument("--functions", default="50,400,2000",
                        help="comma-separated sizes (default 50,400,2000)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.seconds:g} s of CPU a child, {args.hz:g} Hz")
    print(f"{'functions':>10} {'main thread s':>14} {'saving s':>9} {'share':>7}")
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "child.py"), "w") as f:
            f.write(CHILD)
        with open(os.path.join(work, "parent.py"), "w") as f:
            f.write(PARENT)
        for n in (int(x) for x in args.functions.split(",")):
            r = subprocess.run([sys.executable, "-m", "cprof", "record", "--follow", "--quiet",
                                "--hz", f"{args.hz:g}", "-o", "out.prof", "parent.py", str(n),
                                str(args.seconds)],
                               cwd=work, capture_output=True, text=True, check=True)
            main_s, saving_s = (float(x) for x in r.stdout.split())
            print(f"{n:>10} {main_s:>14.2f} {saving_s:>9.2f} {saving_s / main_s:>7.2%}")


if __name__ == "__main__":
    main()
