#!/usr/bin/env python3
"""Builds the benchmarks, runs them and writes docs/benchmarks.md.

Usage (from the repository root):
  python3 bench/run_benchmarks.py                 # everything but the large batch (see --help)
  python3 bench/run_benchmarks.py --large 65536   # also large_batch at N = 65,536 (~8 minutes more)

What it does:
  1. builds bench_losses twice, with OpenMP (the default, <build-dir>) and with
     -DCONTRASTIVE_BENCH_OPENMP=OFF (<build-dir>-no-openmp), plus large_batch;
     both with -march=native (bench/CMakeLists.txt, contrastive_bench_native());
  2. runs the one-thread float N = 1024, D = 128 cases (the bound, the two
     pairwise distances and the batch losses; fb and value) in the two builds
     back to back, --passes times; every ratio is to the bound's fb time in the
     same process; marks each against its target;
  3. runs float N = 4096, D = 256, fb, threads:1 against threads:2 (OpenMP build)
     and checks the rule: loss speedup >= 1.6x wherever the bound gains >= 1.7x;
  4. with --large N, runs `large_batch all N` (peak RSS, time / bound);
  5. with PyTorch importable from /usr/bin/python3 (and without --no-torch),
     runs bench/compare_torch.py and the same cases of bench_losses (one thread,
     CPU time) for the speedup table.

docs/benchmarks.md keeps, unchanged: the blocks between `<!-- BEGIN name ... -->`
and `<!-- END name -->` that hold hand-written notes (notes-engine,
notes-threads, notes-large), the sections of a step that was not run this time
(two-threads, large-batch, torch), the PML comparison (pml-losses, written by
hand from bench/compare_pml.py), and the "## Earlier measurements" section
and everything after it. They are read from --previous (default: the
repository's docs/benchmarks.md), so a trial run can write elsewhere:
  python3 bench/run_benchmarks.py --repetitions 1 --min-time 0.01 \\
      --filter 'batch_hard|margin' --out /tmp/bench_test.md

PyTorch runs under /usr/bin/python3 (Debian's python3-torch). Debian links it
against the reference BLAS, about 30x slower than a tuned one; when OpenBLAS is
found (installed, or extracted from Debian's libopenblas0-pthread into
<build-dir>/openblas/root) it is put first on LD_LIBRARY_PATH for that run.
"""
import argparse
import datetime
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "benchmarks.md")

# The float N = 1024, D = 128 table: case, label, fb target (ratio to the fb bound).
ENGINE = [
    ("batch_hard", "batch_hard", 0.6),
    ("batch_semihard", "batch_semihard", 0.8),
    ("batch_all", "batch_all", 1.2),
    ("batch_contrastive", "batch_contrastive", 1.0),
    ("margin", "margin", 1.0),
    ("supcon", "supcon", 1.0),
    ("ntxent", "ntxent (two views)", 1.0),
    ("euclidean", "pairwise_distance + backward, Euclidean", 1.0),
    ("cosine", "pairwise_distance + backward, Cosine", 1.0),
]
VALUE_TARGET = 0.6  # value only, against the same fb bound
ENGINE_SIZE = ("float", 1024, 128)
THREADS_SIZE = ("float", 4096, 256)
RULE_BOUND, RULE_LOSS = 1.7, 1.6  # loss speedup >= 1.6x wherever the bound gains >= 1.7x

# large_batch's cases (bench/large_batch.cpp, kCases) and their labels; filled in with N.
LARGE = [
    ("bound", "bound (panels of {panel})"),
    ("batch_hard", "batch_hard"),
    ("batch_semihard", "batch_semihard"),
    ("batch_all", "batch_all"),
    ("batch_contrastive", "batch_contrastive"),
    ("margin", "margin"),
    ("supcon", "supcon"),
    ("ntxent", "ntxent (labels)"),
    ("ntxent_views", "ntxent (two views of {half:,})"),
    ("negative_stats", "negative_stats (forward only)"),
]
LARGE_D, LARGE_WORKSPACE_MIB, LARGE_PANEL = 128, 64, 256  # large_batch's defaults

# The PyTorch table: the cases of bench/compare_torch.py, in bench_losses' names.
TORCH_CASES = ["euclidean", "squared_euclidean", "cosine", "batch_contrastive", "batch_all", "batch_hard",
               "batch_semihard", "margin", "ntxent", "supcon",
               "contrastive", "triplet_margin", "cosine_embedding", "similarity_regression"]

EARLIER = "## Earlier measurements"
KEPT = "hand-written; bench/run_benchmarks.py copies this block unchanged"


def log(*a, **kw):
    print(*a, file=sys.stderr, flush=True, **kw)


def sh(cmd, **kw):
    log("+ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


# ---------------------------------------------------------------- building

def build(build_dir, openmp, targets, jobs, source=ROOT, extra=()):
    sh(["cmake", "-S", source, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", *extra,
        "-DCONTRASTIVE_BUILD_BENCHMARKS=ON", "-DCONTRASTIVE_BUILD_TESTS=OFF", "-DCONTRASTIVE_BUILD_EXAMPLES=OFF",
        "-DCONTRASTIVE_BENCH_NATIVE=ON", f"-DCONTRASTIVE_BENCH_OPENMP={'ON' if openmp else 'OFF'}"],
       stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", build_dir, f"-j{jobs}", "--target", *targets])
    return os.path.join(build_dir, "bench")


def links_openmp(binary):
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    except OSError:
        return None
    return bool(re.search(r"lib(g|i)?omp", out))


# ---------------------------------------------------------------- bench_losses

def run_bench(binary, regex, args, tag):
    """Runs bench_losses on the benchmarks matching regex; returns
    ({"<case>/<mode>/<scalar>/<N>/<D>/<threads>": {"real": ms, "cpu": ms}}, context, command)."""
    out = os.path.join(os.path.dirname(binary), f"{tag}.json")
    flags = [f"--benchmark_filter='{regex}'", f"--benchmark_repetitions={args.repetitions}",
             "--benchmark_report_aggregates_only=true", f"--benchmark_min_time={args.min_time}"]
    argv = [f.replace("'", "") for f in flags]
    sh([binary, *argv, f"--benchmark_out={out}", "--benchmark_out_format=json"], stdout=sys.stderr)
    with open(out) as fh:
        data = json.load(fh)
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    medians, single = {}, {}
    for b in data["benchmarks"]:
        # run_name: <case>/<mode>/<scalar>/<N>/<D>/threads:<t>/real_time
        parts = b["run_name"].split("/")
        key = "/".join(parts[:5]) + "/" + parts[5].split(":")[1]
        t = {"real": b["real_time"] * scale[b["time_unit"]], "cpu": b["cpu_time"] * scale[b["time_unit"]]}
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[key] = t
        else:  # one repetition: Google Benchmark reports no aggregates
            single[key] = t
    single.update(medians)
    command = "bench_losses " + " ".join(flags)
    return single, data.get("context", {}), command


def alternatives(cases):
    return "|".join(cases)


# ---------------------------------------------------------------- large_batch

def run_large(binary, n, cases):
    """large_batch all N (every case in a fresh process), or one process per case with a filter."""
    runs = [["all"]] if cases is None else [[c] for c in cases]
    rows = {}
    for r in runs:
        p = subprocess.run([binary, *r, str(n)], capture_output=True, text=True)
        log(f"+ {binary} {r[0]} {n}\n{p.stdout}{p.stderr}", end="")
        for line in p.stdout.splitlines():
            f = line.split()
            if not f or f[0].startswith("#"):
                continue
            if len(f) >= 2 and f[1] == "FAILED:":
                rows[f[0]] = None
                continue
            # case N D wall_s peak_rss_MiB above_baseline_MiB value check
            rows[f[0]] = {"wall": float(f[3]), "peak": float(f[4]), "above": float(f[5])}
        if cases is not None and r[0] not in rows:
            rows[r[0]] = None
    return rows


# ---------------------------------------------------------------- PyTorch (bench/compare_torch.py)

def fetch_openblas(build_dir):
    """Extracts Debian's libopenblas0-pthread under build_dir (no system change)."""
    target = os.path.join(build_dir, "openblas")
    os.makedirs(target, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "libopenblas0-pthread"], cwd=target, check=True,
                       capture_output=True)
        for deb in glob.glob(os.path.join(target, "libopenblas0-pthread_*.deb")):
            subprocess.run(["dpkg-deb", "-x", deb, os.path.join(target, "root")], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"could not fetch OpenBLAS ({e}); PyTorch runs on the system BLAS")


def openblas_dir(build_dir):
    for pattern in [os.path.join(build_dir, "openblas", "root", "usr", "lib", "*", "openblas-pthread"),
                    "/usr/lib/*/openblas-pthread"]:
        for path in glob.glob(pattern):
            if os.path.exists(os.path.join(path, "libblas.so.3")):
                return path
    return None


def run_torch(build_dir, sizes):
    python = "/usr/bin/python3"
    if not os.path.exists(python) or subprocess.run([python, "-c", "import torch"],
                                                    capture_output=True).returncode != 0:
        log("PyTorch not importable from /usr/bin/python3: skipping the comparison")
        return None, None
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    blas = openblas_dir(build_dir)
    if not blas:
        fetch_openblas(build_dir)
        blas = openblas_dir(build_dir)
    if blas:
        env["LD_LIBRARY_PATH"] = blas + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    out = os.path.join(build_dir, "torch_times.json")
    sh([python, os.path.join(ROOT, "bench", "compare_torch.py"), "--out", out, "--sizes", sizes], env=env)
    with open(out) as fh:
        data = json.load(fh)
    data["meta"]["blas"] = ("OpenBLAS 0.3 (" + blas + ")") if blas else "the system's libblas.so.3"
    return data["times_ms"], data["meta"]


# ---------------------------------------------------------------- the machine

def cpu_info():
    model, flags, cores = "?", [], 0
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "processor":
                cores += 1
            elif key == "model name" and model == "?":
                model = value.strip()
            elif key == "flags" and not flags:
                flags = value.split()
    vector = [f for f in flags if re.fullmatch(r"fma|avx2|avx512\w*|avx_vnni|amx\w*", f)]
    return model, cores or os.cpu_count(), vector


def compiler(build_dir):
    cache = os.path.join(build_dir, "CMakeCache.txt")
    if os.path.exists(cache):
        with open(cache) as fh:
            m = re.search(r"CMAKE_CXX_COMPILER:\w+=(.*)", fh.read())
        if m:
            r = subprocess.run([m.group(1), "--version"], capture_output=True, text=True)
            if r.returncode == 0 and r.stdout:
                return r.stdout.splitlines()[0]
    return "?"


def eigen_version():
    for macros in glob.glob("/usr/include/eigen3/Eigen/src/Core/util/Macros.h") + \
            glob.glob("/usr/local/include/eigen3/Eigen/src/Core/util/Macros.h"):
        with open(macros) as fh:
            v = dict(re.findall(r"#define EIGEN_(WORLD|MAJOR|MINOR)_VERSION (\d+)", fh.read()))
        return f"{v.get('WORLD')}.{v.get('MAJOR')}.{v.get('MINOR')}"
    return "?"


def git_commit():
    def git(*a):
        return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True)
    r = git("rev-parse", "--short", "HEAD")
    if r.returncode != 0:
        return "?"
    # Changes to tracked files other than this document make the numbers not the commit's.
    dirty = git("diff", "--quiet", "HEAD", "--", ".", ":(exclude)docs/benchmarks.md").returncode != 0
    return r.stdout.strip() + (" plus uncommitted changes" if dirty else "")


# ---------------------------------------------------------------- formatting

def ms(t):
    if t is None:
        return "—"
    return f"{t:.2f}" if t < 100 else f"{t:.0f}"


def num(x):
    """Seconds and MiB of the large-batch table: whole numbers from 100 up, else one or two decimals."""
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def div(a, b):
    return None if a is None or b is None or b == 0 else a / b


def mark(r, limit):
    return "" if r is None or limit is None else (" ✓" if r <= limit else " **✗**")


def ratio_cell(first, others, limit):
    if first is None:
        return "—"
    s = f"{first:.2f}{mark(first, limit)}"
    rest = [f"{r:.2f}" for r in others if r is not None]
    return s + (f" ({', '.join(rest)})" if rest else "")


def find_block(previous, name):
    """The block `<!-- BEGIN name ... -->` ... `<!-- END name -->` of the previous document, or None."""
    m = re.search(rf"<!-- BEGIN {re.escape(name)}[ ][^\n]*-->\n.*?<!-- END {re.escape(name)} -->", previous, re.S)
    return m.group(0) if m else None


def kept_block(previous, name):
    """A hand-written block of the previous document, or an empty one to write notes in."""
    return find_block(previous, name) or f"<!-- BEGIN {name} ({KEPT}) -->\n<!-- END {name} -->"


# ---------------------------------------------------------------- sections

def engine_section(res, cases, machine, commands, before):
    """res[build][pass] = times; build in ("omp", "noomp")."""
    scalar, n, d = ENGINE_SIZE
    key = lambda case, mode: f"{case}/{mode}/{scalar}/{n}/{d}/1"
    t = lambda build, p, case, mode: res[build][p].get(key(case, mode), {}).get("real")
    passes = len(res["omp"])
    bound = {b: [t(b, p, "bound", "fb") for p in range(passes)] for b in res}
    gram = {b: [t(b, p, "bound", "value") for p in range(passes)] for b in res}
    model, cores, vector = machine["cpu"]
    isa = "an AVX-512 CPU" if "avx512f" in vector else "an AVX2 CPU" if "avx2" in vector else "this CPU"
    L = [f"## The tiled engine on {isa} ({machine['date']:%Y-%m-%d})", "",
         f"Generated by `python3 bench/run_benchmarks.py` at commit {machine['commit']}, "
         f"{machine['date']:%Y-%m-%d %H:%M} UTC:", "",
         f"- CPU: {model} (model name as /proc/cpuinfo gives it), {cores} logical cores,",
         f"  vector flags {' '.join(vector) or '(none of fma, avx2, avx512*)'}.",
         f"- {machine['compiler']}, CMake Release (-O3 -DNDEBUG) -march=native, Eigen {machine['eigen']}, "
         "one thread. Two builds of",
         "  `bench_losses`: with OpenMP (the default) and without (`-DCONTRASTIVE_BENCH_OPENMP=OFF`).",
         f"- Load average before the run (Google Benchmark's report): {machine['load']}.",
         f"- Command: `{commands[0]}`,",
         "  wall-clock medians in ms; the two builds run back to back"
         + (f", {passes} times: in brackets the same ratio from the later passes (this machine's run-to-run noise)."
            if passes > 1 else "."),
         "- **ratio** = time / the bound's fb time in the same process (`X * X^T` then `(N x N) * X`,",
         f"  Eigen, {ms(bound['omp'][0])} ms with OpenMP and {ms(bound['noomp'][0])} ms without in this run; "
         "the Gram product alone took",
         f"  {ms(gram['omp'][0])} / {ms(gram['noomp'][0])} ms). Value-only ratios are to the same fb bound, "
         "as the targets are.",
         "- **target**: ✓ the ratio of the first pass meets it, **✗** misses it."]
    if before:
        L.append(f"- **before**: the same fb benchmark at commit {before['commit']}, built and run by this "
                 "script just before the others (same machine and flags, OpenMP build).")
    L += ["", f"{scalar}, N = {n}, D = {d}:", "",
          "| case | fb ms (OpenMP) | fb ratio | fb ms (no OpenMP) | fb ratio | target |"
          + (" before |" if before else "")
          + " value ms (OpenMP) | value ratio (OpenMP) | value ratio (no OpenMP) | target |",
          "|---|---:|---:|---:|---:|---:|" + ("---:|" if before else "") + "---:|---:|---:|---:|"]
    met = {("fb", "omp"): 0, ("fb", "noomp"): 0, ("value", "omp"): 0, ("value", "noomp"): 0}
    total = 0
    for case, label, target in ENGINE:
        if case not in cases:
            continue
        total += 1
        cells = [label]
        for b in ("omp", "noomp"):
            r = [div(t(b, p, case, "fb"), bound[b][p]) for p in range(passes)]
            cells += [ms(t(b, 0, case, "fb")), ratio_cell(r[0], r[1:], target)]
            met[("fb", b)] += r[0] is not None and r[0] <= target
        cells.append(f"≤ {target:.1f}")
        if before:
            cells.append(ms(before["times"].get(key(case, "fb"), {}).get("real")))
        cells.append(ms(t("omp", 0, case, "value")))
        for b in ("omp", "noomp"):
            r = [div(t(b, p, case, "value"), bound[b][p]) for p in range(passes)]
            cells.append(ratio_cell(r[0], r[1:], VALUE_TARGET))
            met[("value", b)] += r[0] is not None and r[0] <= VALUE_TARGET
        cells.append(f"≤ {VALUE_TARGET:.1f}")
        L.append("| " + " | ".join(cells) + " |")
    L += ["", f"Targets met in the first pass: fb {met[('fb', 'omp')]} of {total} with OpenMP, "
          f"{met[('fb', 'noomp')]} of {total} without; value only {met[('value', 'omp')]} of {total} with "
          f"OpenMP, {met[('value', 'noomp')]} of {total} without.", ""]
    return L


def threads_section(times, cases, command, machine):
    scalar, n, d = THREADS_SIZE
    t = lambda case, threads: times.get(f"{case}/fb/{scalar}/{n}/{d}/{threads}", {}).get("real")
    b1, b2 = t("bound", 1), t("bound", 2)
    bound_speedup = div(b1, b2)
    applies = bound_speedup is not None and bound_speedup >= RULE_BOUND
    L = [f"<!-- BEGIN two-threads (written by bench/run_benchmarks.py; copied unchanged with --no-threads) -->",
         f"### Two threads: {scalar}, N = {n:,}, D = {d}, fb (OpenMP build)", "",
         f"`{command}` (commit {machine['commit']}, {machine['date']:%Y-%m-%d %H:%M} UTC): wall-clock medians "
         "in ms, threads:1 (one Eigen and OpenMP thread) against threads:2. **speedup** = 1-thread time / "
         f"2-thread time. The rule: a loss's speedup is at least {RULE_LOSS}x wherever the bound gains at "
         f"least {RULE_BOUND}x (below that the machine did not deliver two cores' GEMM throughput and the rule "
         "does not apply).", "",
         f"The bound gained {'—' if bound_speedup is None else f'{bound_speedup:.2f}x'} in this run: "
         + ("the rule applies." if applies else f"below {RULE_BOUND}x, so the rule does not apply."), "",
         "| case | 1 thread ms | 2 threads ms | speedup | ratio to bound, 1 thread | ratio to bound, 2 threads | "
         f"rule (≥ {RULE_LOSS}x) |",
         "|---|---:|---:|---:|---:|---:|---|"]
    for case in ["bound"] + [c for c, _, _ in ENGINE if c in cases]:
        label = case if case == "bound" else dict((c, l) for c, l, _ in ENGINE)[case]
        s = div(t(case, 1), t(case, 2))
        if case == "bound" or s is None:
            rule = ""
        elif not applies:
            rule = "n/a"
        else:
            rule = "met" if s >= RULE_LOSS else "**missed**"
        r1, r2 = div(t(case, 1), b1), div(t(case, 2), b2)
        L.append(f"| {label} | {ms(t(case, 1))} | {ms(t(case, 2))} | "
                 f"{'—' if s is None else f'{s:.2f}x'} | {'—' if r1 is None else f'{r1:.2f}'} | "
                 f"{'—' if r2 is None else f'{r2:.2f}'} | {rule} |")
    L += [""]
    return L


def large_section(rows, n, machine, previous):
    half = n // 2
    inputs = n * LARGE_D * 4 / 2**20
    bound = (rows.get("bound") or {}).get("wall")
    base = [r["peak"] - r["above"] for r in rows.values() if r]
    L = ["<!-- BEGIN large-batch (written by bench/run_benchmarks.py --large N; copied unchanged without --large) -->",
         f"### Memory and time at N = {n:,} (bench/large_batch.cpp)", "",
         f"`large_batch all {n}` (D = {LARGE_D}, float, one thread, no OpenMP, workspace {LARGE_WORKSPACE_MIB} MiB,",
         "each case in a fresh process, caller-buffer form so no per-pair terms; commit",
         f"{machine['commit']}, {machine['date']:%Y-%m-%d %H:%M} UTC): the inputs X and the gradient buffer are "
         f"{inputs:.0f} MiB each and the process",
         f"sits at about {statistics.median(base) if base else 0:.0f} MiB before the call. The bound is the two "
         f"products in row",
         f"panels of {LARGE_PANEL} rows (`G = X_I X^T`, then `G X`), "
         f"{'—' if bound is None else num(bound)} s.", "",
         "| case | wall s | peak RSS MiB | above the inputs MiB | time / bound |",
         "|---|---:|---:|---:|---:|"]
    for case, label in LARGE:
        if case not in rows:
            continue
        label = label.format(panel=LARGE_PANEL, half=half)
        r = rows[case]
        if r is None:
            L.append(f"| {label} | failed | | | |")
            continue
        q = div(r["wall"], bound)
        L.append(f"| {label} | {num(r['wall'])} | {num(r['peak'])} | {num(r['above'])} | "
                 f"{'—' if q is None else f'{q:.2f}'} |")
    L += ["", kept_block(previous, "notes-large"), "<!-- END large-batch -->", ""]
    return L


def torch_section(cpp, torch_times, torch_meta, command, machine):
    L = ["<!-- BEGIN torch (written by bench/run_benchmarks.py with PyTorch; copied unchanged otherwise) -->",
         "### PyTorch, one thread (bench/compare_torch.py)", "",
         f"PyTorch {torch_meta.get('torch')} (Debian python3-torch), 1 thread, BLAS: {torch_meta.get('blas')}; "
         "the same losses with autograd, process CPU time, medians. This library: "
         f"`{command}` in the OpenMP build, CPU time of the one thread, medians (commit {machine['commit']}, "
         f"{machine['date']:%Y-%m-%d %H:%M} UTC). **speedup** = PyTorch / this library. batch_all and "
         "batch_semihard need N^3 tensors in PyTorch and run there only at N = 256.", "",
         "| case | mode | scalar | N | D | this library ms | PyTorch ms | speedup |",
         "|---|---|---|---:|---:|---:|---:|---:|"]
    order = {c: i for i, c in enumerate(TORCH_CASES)}
    def sort_key(k):
        case, mode, scalar, n, d = k.split("/")
        return (scalar, int(n), int(d), order.get(case, len(order)), mode)
    for k in sorted(torch_times, key=sort_key):
        case, mode, scalar, n, d = k.split("/")
        mine = cpp.get(k + "/1", {}).get("cpu")
        tt = torch_times[k]
        s = div(tt, mine)
        L.append(f"| {case} | {mode} | {scalar} | {n} | {d} | {ms(mine)} | {ms(tt)} | "
                 f"{'—' if s is None else f'{s:.2f}x'} |")
    L += ["<!-- END torch -->", ""]
    return L


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"),
                    help="the OpenMP build; the other one is <build-dir>-no-openmp (default: build-bench)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel compile jobs (default 1)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--repetitions", type=int, default=7, help="Google Benchmark repetitions (default 7)")
    ap.add_argument("--min-time", type=float, default=0.1, help="--benchmark_min_time in s (default 0.1)")
    ap.add_argument("--passes", type=int, default=2,
                    help="back-to-back runs of the two builds for the N = 1024 table (default 2; "
                         "the later ones are shown in brackets)")
    ap.add_argument("--filter", default="",
                    help="regex on case names: run only the matching cases (the bound always runs)")
    ap.add_argument("--no-threads", action="store_true",
                    help="skip the two-thread N = 4096 run (its section is copied from --previous)")
    ap.add_argument("--large", type=int, metavar="N", default=0,
                    help="also run `large_batch all N` (about 8 minutes at 65536; default: off, the "
                         "large-batch section is copied from --previous)")
    ap.add_argument("--before", metavar="COMMIT",
                    help="also build bench_losses at COMMIT (git archive into <build-dir>-before-COMMIT) "
                         "and show its fb times in a 'before' column")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--torch-json", help="reuse a compare_torch.py result instead of running it")
    ap.add_argument("--torch-sizes", default="256x128,1024x128,4096x256",
                    help="sizes of the PyTorch comparison (compare_torch.py --sizes)")
    ap.add_argument("--previous", default=DOC,
                    help="the document whose kept blocks are copied across (default: docs/benchmarks.md)")
    ap.add_argument("--out", default=DOC, help="where to write (default: docs/benchmarks.md)")
    args = ap.parse_args()
    started = time.time()
    stages = []

    def stage(name, since):
        stages.append((name, time.time() - since))
        return time.time()

    previous = ""
    if os.path.exists(args.previous):
        with open(args.previous, encoding="utf-8") as fh:
            previous = fh.read()
    engine_cases = [c for c, _, _ in ENGINE if re.search(args.filter, c)]
    large_cases = None if not args.filter else ["bound"] + [c for c, _ in LARGE[1:] if re.search(args.filter, c)]

    omp_dir = os.path.abspath(args.build_dir)
    noomp_dir = omp_dir + "-no-openmp"
    t0 = time.time()
    if args.no_build:
        omp_bin, noomp_bin = os.path.join(omp_dir, "bench"), os.path.join(noomp_dir, "bench")
    else:
        omp_bin = build(omp_dir, True, ["bench_losses", "large_batch"], args.jobs)
        noomp_bin = build(noomp_dir, False, ["bench_losses"], args.jobs)
    omp_exe, noomp_exe = os.path.join(omp_bin, "bench_losses"), os.path.join(noomp_bin, "bench_losses")
    for exe, want in ((omp_exe, True), (noomp_exe, False)):
        if not os.path.exists(exe):
            sys.exit(f"{exe} is missing (is Google Benchmark installed? see bench/CMakeLists.txt)")
        if links_openmp(exe) not in (want, None):
            log(f"warning: {exe} {'does not link' if want else 'links'} an OpenMP runtime")
    before = None
    if args.before:
        src = f"{omp_dir}-before-{args.before}"
        os.makedirs(os.path.join(src, "src"), exist_ok=True)
        archive = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", args.before],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", os.path.join(src, "src")], input=archive, check=True)
        # Older commits lack bench/CMakeLists.txt's exemption for GCC 12's warnings
        # inside its own AVX-512 headers (GCC bug 105593), which -Werror turns into errors.
        before_bin = build(os.path.join(src, "build"), True, ["bench_losses"], args.jobs,
                           source=os.path.join(src, "src"), extra=["-DCMAKE_CXX_FLAGS=-Wno-maybe-uninitialized"])
        before = {"commit": args.before}
    t0 = stage("build", t0)

    machine = {"cpu": cpu_info(), "compiler": compiler(omp_dir), "eigen": eigen_version(),
               "commit": git_commit(), "date": datetime.datetime.now(datetime.timezone.utc)}

    scalar, n, d = ENGINE_SIZE
    regex = f"^({alternatives(['bound'] + engine_cases)})/(fb|value)/{scalar}/{n}/{d}/threads:1/"
    if before:
        before["times"], _, _ = run_bench(os.path.join(before_bin, "bench_losses"),
                                          f"^({alternatives(['bound'] + engine_cases)})/fb/{scalar}/{n}/{d}/threads:1/",
                                          args, "before")
    res = {"omp": [], "noomp": []}
    commands, context = [], None
    for p in range(args.passes):
        for b, exe in (("omp", omp_exe), ("noomp", noomp_exe)):
            times, ctx, command = run_bench(exe, regex, args, f"engine-{b}-{p}")
            res[b].append(times)
            commands.append(command)
            context = context or ctx
    machine["load"] = ", ".join(f"{x:.2f}" for x in (context or {}).get("load_avg", [])) or "?"
    t0 = stage(f"N = 1024 table ({args.passes} passes x 2 builds)", t0)

    L = ["# Benchmarks", "",
         "<!-- Written by bench/run_benchmarks.py (see its --help). Hand-written notes go between the "
         "BEGIN/END markers, which the script copies across; \"Earlier measurements\" and everything after "
         "it is copied unchanged. -->", ""]
    L += engine_section(res, engine_cases, machine, commands, before)
    L += [kept_block(previous, "notes-engine"), ""]

    if args.no_threads:
        kept = find_block(previous, "two-threads")
        if kept:
            L += [kept, ""]
    else:
        scalar, n, d = THREADS_SIZE
        regex = f"^({alternatives(['bound'] + engine_cases)})/fb/{scalar}/{n}/{d}/threads:(1|2)/"
        times, _, command = run_bench(omp_exe, regex, args, "threads")
        section = threads_section(times, engine_cases, command, machine)
        L += section + [kept_block(previous, "notes-threads"), "<!-- END two-threads -->", ""]
        t0 = stage("two-thread N = 4096", t0)

    if args.large:
        rows = run_large(os.path.join(omp_bin, "large_batch"), args.large, large_cases)
        L += large_section(rows, args.large, machine, previous)
        t0 = stage(f"large_batch N = {args.large}", t0)
    else:
        kept = find_block(previous, "large-batch")
        if kept:
            L += [kept, ""]

    torch_times, torch_meta = None, None
    if args.torch_json:
        with open(args.torch_json) as fh:
            data = json.load(fh)
        torch_times, torch_meta = data["times_ms"], data["meta"]
        torch_meta.setdefault("blas", "OpenBLAS 0.3")
    elif not args.no_torch:
        torch_times, torch_meta = run_torch(omp_dir, args.torch_sizes)
    if torch_times:
        torch_times = {k: v for k, v in torch_times.items()
                       if v is not None and (not args.filter or re.search(args.filter, k.split("/")[0]))}
        cases = sorted({k.split("/")[0] for k in torch_times})
        shapes = sorted({"/".join(k.split("/")[2:5]) for k in torch_times})
        regex = f"^({alternatives(cases)})/(fb|value)/({alternatives(shapes)})/threads:1/"
        cpp, _, command = run_bench(omp_exe, regex, args, "torch")
        L += torch_section(cpp, torch_times, torch_meta, command, machine)
        t0 = stage("PyTorch comparison (C++ side)", t0)
    else:
        kept = find_block(previous, "torch")
        if kept:
            L += [kept, ""]

    kept = find_block(previous, "pml-losses")  # bench/compare_pml.py, run by hand (PML is not a dependency)
    if kept:
        L += [kept, ""]

    i = previous.find("\n" + EARLIER)
    if i >= 0:
        L.append(previous[i + 1:].rstrip("\n"))
    text = "\n".join(L) + "\n"
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text)
    for name, seconds in stages:
        log(f"{name}: {seconds:.0f} s")
    log(f"total {time.time() - started:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
