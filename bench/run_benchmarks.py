#!/usr/bin/env python3
"""Builds and runs bench_losses, runs bench/compare_torch.py when PyTorch is
importable, measures peak memory at N = 4096, and writes docs/benchmarks.md.

Usage (from the repository root):
  python3 bench/run_benchmarks.py [--build-dir build-bench] [--repetitions 5]
      [--min-time 0.2] [--filter REGEX] [--no-torch] [--out docs/benchmarks.md]

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
import platform
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [(256, 128), (1024, 128), (4096, 256)]
SCALARS = ["float", "double"]
PAIRWISE = ["euclidean", "squared_euclidean", "cosine", "batch_contrastive", "batch_all", "batch_hard",
            "batch_semihard", "margin", "ntxent", "supcon"]
ROWWISE = ["contrastive", "triplet_margin", "cosine_embedding", "similarity_regression"]
CASES = ["bound"] + PAIRWISE + ROWWISE
TARGET_15 = ["batch_hard", "batch_contrastive", "margin", "ntxent", "supcon"]
TARGET_20 = ["batch_all", "batch_semihard"]


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def build(build_dir):
    sh(["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release", "-DCONTRASTIVE_BUILD_BENCHMARKS=ON"],
       stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", build_dir, "-j2", "--target", "bench_losses"])
    return os.path.join(build_dir, "bench", "bench_losses")


def run_cpp(binary, args):
    out = os.path.join(os.path.dirname(binary), "bench_losses.json")
    cmd = [binary, f"--benchmark_repetitions={args.repetitions}", "--benchmark_report_aggregates_only=true",
           f"--benchmark_min_time={args.min_time}", f"--benchmark_out={out}", "--benchmark_out_format=json"]
    if args.filter:
        cmd.append(f"--benchmark_filter={args.filter}")
    sh(cmd, stdout=sys.stderr)
    with open(out) as fh:
        data = json.load(fh)
    times, cpu = {}, {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        # run_name: <case>/<mode>/<scalar>/<N>/<D>/threads:<t>/real_time
        parts = b["run_name"].split("/")
        key = "/".join(parts[:5]) + "/" + parts[5].split(":")[1]
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        times[key] = b["real_time"] * scale
        cpu[key] = b["cpu_time"] * scale
    return times, cpu, data.get("context", {})


def parse_console(path):
    """Medians from bench_losses' console output (a run cut short)."""
    wall, cpu = {}, {}
    pat = re.compile(r"^(\S+)/threads:(\d)/real_time_median\s+([\d.]+) (ns|us|ms|s)\s+([\d.]+) (ns|us|ms|s)")
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}
    with open(path) as fh:
        for line in fh:
            m = pat.match(line)
            if m:
                key = m.group(1) + "/" + m.group(2)
                wall[key] = float(m.group(3)) * scale[m.group(4)]
                cpu[key] = float(m.group(5)) * scale[m.group(6)]
    return wall, cpu, {}


def peak_memory(binary, n=4096, d=256):
    peaks = {}
    for case in CASES:
        for scalar in SCALARS:
            spec = f"{case}/fb/{scalar}/{n}/{d}"
            r = subprocess.run([binary, f"--peak-memory={spec}"], capture_output=True, text=True)
            if r.returncode == 0:
                peaks[spec] = int(r.stdout.strip())
    return peaks


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
        print(f"could not fetch OpenBLAS ({e}); PyTorch runs on the system BLAS", file=sys.stderr)


def openblas_dir(build_dir):
    for pattern in [os.path.join(build_dir, "openblas", "root", "usr", "lib", "*", "openblas-pthread"),
                    "/usr/lib/*/openblas-pthread"]:
        for path in glob.glob(pattern):
            if os.path.exists(os.path.join(path, "libblas.so.3")):
                return path
    return None


def run_torch(build_dir, args):
    python = "/usr/bin/python3"
    if not os.path.exists(python) or subprocess.run([python, "-c", "import torch"],
                                                    capture_output=True).returncode != 0:
        print("PyTorch not importable from /usr/bin/python3: skipping the comparison", file=sys.stderr)
        return None, None
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    blas = openblas_dir(build_dir)
    if not blas:
        fetch_openblas(build_dir)
        blas = openblas_dir(build_dir)
    if blas:
        env["LD_LIBRARY_PATH"] = blas + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    out = os.path.join(build_dir, "torch_times.json")
    sh([python, os.path.join(ROOT, "bench", "compare_torch.py"), "--out", out], env=env)
    with open(out) as fh:
        data = json.load(fh)
    data["meta"]["blas"] = ("OpenBLAS 0.3 (" + blas + ")") if blas else "the system's libblas.so.3"
    return data["times_ms"], data["meta"]


def machine(build_dir, context, torch_meta):
    cpu = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_kib = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    compiler = "?"
    cache = os.path.join(build_dir, "CMakeCache.txt")
    if os.path.exists(cache):
        with open(cache) as fh:
            m = re.search(r"CMAKE_CXX_COMPILER:\w+=(.*)", fh.read())
        if m:
            compiler = subprocess.run([m.group(1), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    eigen = "?"
    macros = "/usr/include/eigen3/Eigen/src/Core/util/Macros.h"
    if os.path.exists(macros):
        with open(macros) as fh:
            v = dict(re.findall(r"#define EIGEN_(WORLD|MAJOR|MINOR)_VERSION (\d+)", fh.read()))
        eigen = f"{v.get('WORLD')}.{v.get('MAJOR')}.{v.get('MINOR')}"
    lines = [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores, {mem_kib / 1048576:.0f} GiB RAM; "
        f"{context.get('host_name', platform.node())}",
        f"- OS: {platform.platform()}",
        f"- Compiler: {compiler}; flags: CMake Release (-O3 -DNDEBUG) -march=native -fopenmp "
        f"(bench/CMakeLists.txt); Eigen {eigen}; Google Benchmark (libbenchmark-dev)",
        f"- Load average during the run (Google Benchmark's report): "
        f"{', '.join(f'{x:.1f}' for x in context.get('load_avg', []))}",
    ]
    if torch_meta:
        lines.append(f"- PyTorch {torch_meta.get('torch')} (Debian python3-torch), 1 thread, BLAS: {torch_meta.get('blas')}")
    return lines


def fmt(ms):
    if ms is None:
        return "—"
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}x"


def write_report(path, cpp, wall, torch_times, peaks, machine_lines, args):
    L = ["# Benchmarks", "",
         "Generated by `python3 bench/run_benchmarks.py` (see the README) on "
         f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC. Times are medians of "
         f"{args.repetitions} repetitions (Google Benchmark), in milliseconds: CPU time of the one "
         "thread for one-thread runs (robust to other load on a shared machine), wall-clock time for "
         "two-thread runs; PyTorch: process CPU time, one thread.", ""]
    L += ["## Machine", ""] + machine_lines + [""]
    L += ["## What is measured", "",
          "- **fb**: loss value and gradient (`loss(X, labels, options)`); **value**: value only "
          "(`loss(..., contrastive::value_only)`).",
          "- **bound**: the work no implementation can avoid, timed with Eigen at the same size: "
          "fb = the Gram product `X * X^T` plus one N x N x D product `W * X`; value = the Gram product alone. "
          "**ratio** = time / bound of the same mode, scalar, size and thread count (< 1 is possible: "
          "the library computes the symmetric Gram with a rank update, half the flops of the product).",
          "- Data: unit-norm rows, labels i / 4 (K = 4 per class), margins 0.2 for the batch triplet losses, "
          "temperature 0.1; ntxent's two views are the halves of X (its Gram matrix is N x N too); "
          "the explicit-pair losses (contrastive, triplet_margin, cosine_embedding, similarity_regression) "
          "are O(N D): they have no bound.",
          "- **torch**: bench/compare_torch.py, the same losses with autograd, one thread; "
          "**speedup** = torch / this library, one thread. batch_all and batch_semihard need N^3 tensors "
          "in PyTorch and run there only at N = 256.",
          "- **2 thr**: `Eigen::setNbThreads(2)` and 2 OpenMP threads, wall clock; **scaling** = 1-thread / "
          "2-thread wall-clock time.",
          ""]
    for scalar in SCALARS:
        for n, d in SIZES:
            key0 = f"/{scalar}/{n}/{d}"
            if not any(k.split("/")[2:5] == [scalar, str(n), str(d)] for k in cpp):
                continue
            L += [f"## {scalar}, N = {n}, D = {d}", "",
                  "| case | mode | 1 thr | bound | ratio | 2 thr | ratio 2 thr | scaling | torch | speedup |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for case in CASES:
                for mode in ["fb", "value"]:
                    t1 = cpp.get(f"{case}/{mode}{key0}/1")
                    t2 = cpp.get(f"{case}/{mode}{key0}/2")
                    if t1 is None and t2 is None:
                        continue
                    b1 = cpp.get(f"bound/{mode}{key0}/1") if case not in ROWWISE else None
                    b2 = cpp.get(f"bound/{mode}{key0}/2") if case not in ROWWISE else None
                    tt = (torch_times or {}).get(f"{case}/{mode}{key0}")
                    L.append(f"| {case} | {mode} | {fmt(t1)} | {fmt(b1)} | "
                             f"{fmt_ratio(ratio(t1, b1)) if case != 'bound' else ''} | {fmt(t2)} | "
                             f"{fmt_ratio(ratio(t2, b2)) if case != 'bound' else ''} | "
                             f"{fmt_ratio(ratio(wall.get(f'{case}/{mode}{key0}/1'), t2))} | "
                             f"{fmt(tt)} | {fmt_ratio(ratio(tt, t1))} |")
            L.append("")
    # Targets of the issue: one thread, float, N = 1024, D = 128.
    L += ["## Targets (float, N = 1024, D = 128, one thread unless said)", "",
          "| target | case | measured | limit | met |", "|---|---|---:|---:|---|"]
    def target(label, case, mode, limit, value):
        if value is None:
            return
        L.append(f"| {label} | {case} | {value:.2f}x | {limit:.2f}x | {'yes' if value <= limit else '**no**'} |")
    k = "/float/1024/128/1"
    for case in TARGET_15:
        target("fb <= 1.5x bound", case, "fb", 1.5, ratio(cpp.get(f"{case}/fb{k}"), cpp.get(f"bound/fb{k}")))
    for case in TARGET_20:
        target("fb <= 2x bound", case, "fb", 2.0, ratio(cpp.get(f"{case}/fb{k}"), cpp.get(f"bound/fb{k}")))
    for case in PAIRWISE:
        target("value <= 1.2x one Gram product", case, "value", 1.2,
               ratio(cpp.get(f"{case}/value{k}"), cpp.get(f"bound/value{k}")))
    for case in ["bound"] + PAIRWISE:
        for scalar in SCALARS:
            t1 = wall.get(f"{case}/fb/{scalar}/4096/256/1")
            t2 = wall.get(f"{case}/fb/{scalar}/4096/256/2")
            r = ratio(t1, t2)
            if r is not None:
                L.append(f"| 2 threads >= 1.6x faster, N = 4096, D = 256, {scalar}, fb | {case} | {r:.2f}x | 1.60x | "
                         f"{'yes' if r >= 1.6 else '**no**'} |")
    L.append("")
    if peaks:
        L += ["## Peak memory, N = 4096, D = 256, fb, one call", "",
              "Peak resident memory of one call above the inputs (a fresh process per case: "
              "`bench_losses --peak-memory=<case>/fb/<scalar>/4096/256`). One N x N matrix is "
              "64 MiB in float, 128 MiB in double.", "",
              "| case | float (MiB) | double (MiB) |", "|---|---:|---:|"]
        for case in CASES:
            f = peaks.get(f"{case}/fb/float/4096/256")
            dd = peaks.get(f"{case}/fb/double/4096/256")
            if f is None and dd is None:
                continue
            L.append(f"| {case} | {fmt(None if f is None else f / 1024)} | {fmt(None if dd is None else dd / 1024)} |")
        L.append("")
    notes = os.path.join(ROOT, "bench", "notes.md")
    if os.path.exists(notes):
        with open(notes) as fh:
            L += ["## Notes", "", fh.read().strip(), ""]
    with open(path, "w") as fh:
        fh.write("\n".join(L))
    print(f"wrote {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--filter", default="")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--torch-json", help="reuse a compare_torch.py result instead of running it")
    ap.add_argument("--from-console", help="take the C++ medians from a saved console log")
    ap.add_argument("--no-peak", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    binary = os.path.join(build_dir, "bench", "bench_losses") if args.no_build else build(build_dir)
    if args.from_console:
        wall, cpu, context = parse_console(args.from_console)
    else:
        wall, cpu, context = run_cpp(binary, args)
    # One thread: the CPU time of that thread, robust to other load on a shared
    # machine; two threads: wall-clock time.
    cpp = {k: (cpu[k] if k.endswith("/1") else v) for k, v in wall.items()}
    peaks = {} if args.no_peak else peak_memory(binary)
    torch_times, torch_meta = None, None
    if args.torch_json:
        with open(args.torch_json) as fh:
            data = json.load(fh)
        torch_times, torch_meta = data["times_ms"], data["meta"]
        torch_meta.setdefault("blas", "OpenBLAS 0.3")
    elif not args.no_torch:
        torch_times, torch_meta = run_torch(build_dir, args)
    write_report(args.out, cpp, wall, torch_times, peaks, machine(build_dir, context, torch_meta), args)


if __name__ == "__main__":
    main()
