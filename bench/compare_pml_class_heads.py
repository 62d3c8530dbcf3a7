"""pytorch-metric-learning 2.8.1's class-weight losses, fwd + bwd (dL/dX and
dL/dW) on one torch thread, at the size bench/class_heads measures
(N = 256, c = 10,000, D = 128, float32). Median of 15 after a warm-up.

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src /usr/bin/python3 bench/compare_pml_class_heads.py

Debian's python3-torch runs its products on the reference BLAS (libblas.so.3),
about 14x slower than OpenBLAS on the sub-centre head's 256 x 128 x 30,000
product here: put Debian's libopenblas0-pthread first
(LD_LIBRARY_PATH=<its root>/usr/lib/x86_64-linux-gnu/openblas-pthread,
OPENBLAS_NUM_THREADS=1), or PML looks slower than it is. The script prints
torch's time for that product first.
"""
import statistics
import sys
import time

import torch

try:
    from pytorch_metric_learning import losses
except ImportError:
    sys.exit("compare_pml_class_heads.py needs PYTHONPATH pointing at pytorch-metric-learning 2.8.1's src")

torch.set_num_threads(1)
N, C, D, REPS = 256, 10000, 128, 15
gen = torch.Generator().manual_seed(1)
x = torch.randn(N, D, generator=gen)
y = torch.randint(0, C, (N,), generator=gen)

CASES = [
    ("arcface", lambda: losses.ArcFaceLoss(C, D)),
    ("cosface", lambda: losses.CosFaceLoss(C, D)),
    ("sphereface", lambda: losses.SphereFaceLoss(C, D)),
    ("normalized_softmax", lambda: losses.NormalizedSoftmaxLoss(C, D)),
    ("proxy_nca", lambda: losses.ProxyNCALoss(C, D)),
    ("proxy_anchor", lambda: losses.ProxyAnchorLoss(C, D)),
    ("subcenter_arcface", lambda: losses.SubCenterArcFaceLoss(num_classes=C, embedding_size=D)),
]

print("PML 2.8.1, torch %s, one thread, N = %d, c = %d, D = %d, float32" % (torch.__version__, N, C, D))
w3 = torch.randn(D, 3 * C, generator=gen)
product = []
for r in range(6):
    t = time.perf_counter()
    torch.mm(x, w3)
    product.append(time.perf_counter() - t)
print("torch %d x %d x %d product: %.2f ms (OpenBLAS: tens of ms; the reference BLAS: hundreds)"
      % (N, D, 3 * C, 1e3 * statistics.median(product[1:])))
for name, make in CASES:
    loss = make()
    times = []
    for r in range(REPS + 1):
        xr = x.clone().requires_grad_(True)
        loss.zero_grad()
        t = time.perf_counter()
        value = loss(xr, y)
        value.backward()
        dt = time.perf_counter() - t
        if r:
            times.append(dt)
    print("%-18s fwd+bwd %8.2f ms" % (name, 1e3 * statistics.median(times)))
