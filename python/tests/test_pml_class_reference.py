#!/usr/bin/env python3
"""contrastive.torch's class-weight losses against pytorch-metric-learning 2.8.1's own values.

The reference (tests/reference/data/python_pml_class.json) was written by
tests/reference/generate_python_pml_class.py running PML itself with its weight
parameter set to given values; this test never imports PML. For each case, with
the same weight in the module's parameter (PML's name and layout): value, dL/dX
and dL/dweight in float64 within 1e-9 relative; SubCenterArcFaceLoss.get_outliers
equal. Also: the parameters' names, shapes and initialisation, float32, no
gradient to a frozen weight, and the constructor's refusals.

    PYTHONPATH=<build>/python /usr/bin/python3 python/tests/test_pml_class_reference.py [reference.json] [-v]
Prints the worst relative error per class.
"""
import json
import os
import sys
import unittest

import torch

from contrastive.torch import distances, losses

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "tests", "reference", "data", "python_pml_class.json")
if len(sys.argv) > 1 and sys.argv[1].endswith(".json"):
    REFERENCE = sys.argv.pop(1)
with open(REFERENCE) as f:
    DATA = json.load(f)

WORST = {}


def relative(a, b):
    """max |a - b| / max |b| (|b| of a scalar), 0 when both are 0."""
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    scale = b.abs().max()
    err = (a - b).abs().max()
    return float(err / scale) if scale > 0 else float(err)


def build(case, dtype):
    x = torch.tensor(case["X"], dtype=torch.float64)
    loss_fn = getattr(losses, case["loss"])(num_classes=6, embedding_size=x.shape[1], **case["kwargs"])
    weight = getattr(loss_fn, case["weight_name"])
    w = torch.tensor(case["weight"], dtype=torch.float64)
    assert weight.shape == w.shape, (case["loss"], weight.shape, w.shape)
    with torch.no_grad():
        weight.data = w.to(dtype)
    return loss_fn, weight, x.to(dtype).requires_grad_(True), torch.tensor(case["labels"])


class PmlClassReference(unittest.TestCase):
    def test_losses_float64(self):
        self.assertEqual(len(DATA["losses"]), 28)
        for k, case in enumerate(DATA["losses"]):
            with self.subTest(case=k, loss=case["loss"], kwargs=case["kwargs"]):
                loss_fn, weight, x, y = build(case, torch.float64)
                value = loss_fn(x, y)
                value.backward()
                self.assertEqual(value.dtype, torch.float64)
                self.assertIsInstance(weight, torch.nn.Parameter)
                self.assertEqual(weight.grad.shape, weight.shape)
                errors = [relative(value.item(), case["value"]), relative(x.grad, case["grad"]),
                          relative(weight.grad, case["weight_grad"])]
                self.assertGreater(torch.tensor(case["weight_grad"]).abs().max().item(), 0)
                WORST[case["loss"]] = max(WORST.get(case["loss"], 0.0), *errors)
                self.assertLessEqual(max(errors), 1e-9, errors)

    def test_losses_float32(self):
        for k, case in enumerate(DATA["losses"]):
            with self.subTest(case=k, loss=case["loss"], kwargs=case["kwargs"]):
                loss_fn, weight, x, y = build(case, torch.float32)
                value = loss_fn(x, y)
                value.backward()
                self.assertEqual(value.dtype, torch.float32)
                self.assertEqual(weight.grad.dtype, torch.float32)
                errors = [relative(value.item(), case["value"]), relative(x.grad, case["grad"]),
                          relative(weight.grad, case["weight_grad"])]
                self.assertLessEqual(max(errors), 1e-4, errors)

    def test_frozen_weight_and_no_grad(self):
        case = DATA["losses"][0]
        loss_fn, weight, x, y = build(case, torch.float64)
        weight.requires_grad_(False)
        loss_fn(x, y).backward()
        self.assertIsNone(weight.grad)
        self.assertLessEqual(relative(x.grad, case["grad"]), 1e-9)
        with torch.no_grad():
            value = loss_fn(x, y)
        self.assertFalse(value.requires_grad)
        self.assertLessEqual(relative(value.item(), case["value"]), 1e-9)

    def test_outliers(self):
        self.assertTrue(any(c["outliers"] for c in DATA["outliers"]))
        for case in DATA["outliers"]:
            with self.subTest(threshold=case["threshold"]):
                x = torch.tensor(case["X"], dtype=torch.float64)
                loss_fn = losses.SubCenterArcFaceLoss(num_classes=6, embedding_size=x.shape[1])
                with torch.no_grad():
                    loss_fn.W.data = torch.tensor(case["W"], dtype=torch.float64)
                outliers, centers = loss_fn.get_outliers(x, torch.tensor(case["labels"]), threshold=case["threshold"])
                self.assertEqual(outliers.dtype, torch.int64)
                self.assertEqual(outliers.tolist(), case["outliers"])
                self.assertEqual(tuple(centers.shape), (x.shape[1], 6))
                self.assertTrue(torch.equal(centers[:, case["present"]],
                                            torch.tensor(case["dominant_centers"], dtype=torch.float64)))

    def test_parameters_as_pml(self):
        for name, shape in (("ArcFaceLoss", (5, 6)), ("CosFaceLoss", (5, 6)), ("SphereFaceLoss", (5, 6)),
                            ("NormalizedSoftmaxLoss", (5, 6)), ("SubCenterArcFaceLoss", (5, 18))):
            loss_fn = getattr(losses, name)(num_classes=6, embedding_size=5)
            self.assertEqual(tuple(loss_fn.W.shape), shape, name)
            self.assertEqual([n for n, _ in loss_fn.named_parameters()], ["W"], name)
        for name in ("ProxyNCALoss", "ProxyAnchorLoss"):
            loss_fn = getattr(losses, name)(6, 5)
            self.assertEqual(tuple(loss_fn.proxies.shape), (6, 5), name)
            self.assertEqual([n for n, _ in loss_fn.named_parameters()], ["proxies"], name)
        arc = losses.ArcFaceLoss(6, 5)
        self.assertAlmostEqual(arc.margin, 0.4991641660703782)  # radians, as PML's
        self.assertEqual((arc.scale, losses.SphereFaceLoss(6, 5, margin=3.7).margin), (64, 3))
        seen = []
        losses.CosFaceLoss(6, 5, weight_init_func=lambda w: (seen.append(tuple(w.shape)), torch.nn.init.ones_(w)))
        self.assertEqual(seen, [(5, 6)])

    def test_training_step_moves_the_weight(self):
        torch.manual_seed(3)
        loss_fn = losses.ProxyAnchorLoss(4, 5)
        x = torch.randn(8, 5, requires_grad=True)
        opt = torch.optim.SGD(list(loss_fn.parameters()) + [x], lr=0.1)
        before = loss_fn.proxies.detach().clone()
        loss_fn(x, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).backward()
        opt.step()
        self.assertFalse(torch.equal(before, loss_fn.proxies.detach()))

    def test_refusals(self):
        cases = [
            (lambda: losses.ArcFaceLoss(6, 5, reducer=object()), "ArcFaceLoss: argument 'reducer'"),
            (lambda: losses.CosFaceLoss(6, 5, weight_regularizer=object()), "CosFaceLoss: argument 'weight_regularizer'"),
            (lambda: losses.SphereFaceLoss(6, 5, embedding_regularizer=object()),
             "SphereFaceLoss: argument 'embedding_regularizer'"),
            (lambda: losses.ArcFaceLoss(6, 5, distance=distances.LpDistance()), "ArcFaceLoss: argument 'distance'"),
            (lambda: losses.NormalizedSoftmaxLoss(6, 5, distance=distances.CosineSimilarity()),
             "NormalizedSoftmaxLoss: argument 'distance'"),
            (lambda: losses.ProxyNCALoss(6, 5, distance=distances.LpDistance()), "ProxyNCALoss: argument 'distance'"),
            (lambda: losses.ProxyAnchorLoss(6, 5, nonsense=1), "ProxyAnchorLoss: argument 'nonsense'"),
            (lambda: losses.SubCenterArcFaceLoss(6, 5, sub_centers=0), "SubCenterArcFaceLoss: argument 'sub_centers'"),
        ]
        for make, message in cases:
            with self.subTest(message=message):
                with self.assertRaises(ValueError) as e:
                    make()
                self.assertIn(message, str(e.exception))
        # PML's defaults given explicitly are accepted.
        losses.ArcFaceLoss(6, 5, distance=distances.CosineSimilarity())
        losses.NormalizedSoftmaxLoss(6, 5, distance=distances.DotProductSimilarity())
        losses.ProxyNCALoss(6, 5, distance=distances.LpDistance(power=2))
        x = torch.randn(4, 5)
        with self.assertRaises(ValueError) as e:
            losses.ArcFaceLoss(6, 5)(x, torch.tensor([0, 1, 2, 3]), indices_tuple=(1, 2, 3))
        self.assertIn("ArcFaceLoss: argument 'indices_tuple'", str(e.exception))
        with self.assertRaises(ValueError) as e:
            losses.ArcFaceLoss(6, 4)(x, torch.tensor([0, 1, 2, 3]))
        self.assertIn("ArcFaceLoss: argument 'embeddings' has 5 columns but W is (4, 6): embedding_size 4",
                      str(e.exception))
        with self.assertRaises(ValueError) as e:
            losses.ProxyAnchorLoss(3, 5)(x, torch.tensor([0, 1, 2, 3]))
        self.assertIn("argument 'labels'", str(e.exception))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2 if "-v" in sys.argv else 1).result
    for name in sorted(WORST):
        print(f"{name}: worst relative error {WORST[name]:.3g}")
    sys.exit(0 if result.wasSuccessful() else 1)
