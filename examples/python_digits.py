#!/usr/bin/env python3
"""contrastive.torch in a PyTorch training loop: a torch.nn MLP (64-128-32,
unit-norm output) trained with torch.optim.Adam on the UCI 8x8 digits
(examples/data/digits.csv), the loss and miner written as with
pytorch-metric-learning but imported from contrastive.torch:

    from contrastive.torch import losses, miners

Stratified 70/30 split, P x K batches (10 classes x 8), light pixel noise;
prints held-out Recall@1 (leave-one-out 1-NN accuracy on the held-out set,
as examples/digits/recall.hpp) before and after training.

    PYTHONPATH=<build>/python /usr/bin/python3 examples/python_digits.py [--epochs N] [--loss ms|triplet|supcon] [--seed N] [--min-recall X]
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

from contrastive.torch import distances, losses, miners

HERE = os.path.dirname(os.path.abspath(__file__))


def load(path):
    data = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return data[:, :64] / 16.0, data[:, 64].astype(np.int64)


def stratified_split(labels, test_fraction, rng):
    train, test = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(test_fraction * len(rows) + 0.5)
        test.extend(rows[:n_test])
        train.extend(rows[n_test:])
    return np.array(sorted(train)), np.array(sorted(test))


def recall_at_1(embeddings, labels):
    d = torch.cdist(embeddings, embeddings)
    d.fill_diagonal_(float("inf"))
    return float((labels[d.argmin(dim=1)] == labels).double().mean())


class Mlp(torch.nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.hidden = torch.nn.Linear(64, hidden)
        self.out = torch.nn.Linear(hidden, 32)

    def forward(self, x):
        return torch.nn.functional.normalize(self.out(torch.relu(self.hidden(x))), dim=1)


def make_loss(name):
    if name == "ms":
        return losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5), miners.MultiSimilarityMiner(epsilon=0.1)
    if name == "triplet":
        return losses.TripletMarginLoss(margin=0.2), miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    if name == "supcon":
        return losses.SupConLoss(temperature=0.1), None
    raise SystemExit(f"python_digits: unknown --loss {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--loss", default="ms")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=os.path.join(HERE, "data", "digits.csv"))
    parser.add_argument("--min-recall", type=float, default=0.0,
                        help="exit 1 when the trained held-out Recall@1 is below this (ctest)")
    args = parser.parse_args()

    start = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    pixels, labels = load(args.data)
    train_idx, test_idx = stratified_split(labels, 0.3, rng)
    x_train, y_train = torch.from_numpy(pixels[train_idx]), torch.from_numpy(labels[train_idx])
    x_test, y_test = torch.from_numpy(pixels[test_idx]), torch.from_numpy(labels[test_idx])
    by_class = [np.flatnonzero(labels[train_idx] == c) for c in range(10)]

    net = Mlp()
    adam = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn, miner = make_loss(args.loss)
    classes_per_batch, per_class = 10, 8
    batches = len(train_idx) // (classes_per_batch * per_class)

    def held_out():
        net.eval()
        with torch.no_grad():
            r = recall_at_1(net(x_test), y_test)
        net.train()
        return r

    before = held_out()
    print(f"python_digits: {len(train_idx)} train / {len(test_idx)} held-out samples; torch.nn MLP 64-128-32 "
          f"(unit norm); contrastive.torch.losses.{type(loss_fn).__name__}"
          f"{'' if miner is None else ' + miners.' + type(miner).__name__}; Adam; {args.epochs} epochs x {batches} batches")
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for b in range(batches):
            progress = ((epoch - 1) * batches + b) / (args.epochs * batches)
            for group in adam.param_groups:
                group["lr"] = 0.5 * args.lr * (1 + math.cos(math.pi * progress))
            rows = np.concatenate([rng.choice(by_class[c], per_class, replace=False)
                                   for c in rng.choice(10, classes_per_batch, replace=False)])
            x = x_train[rows] + 0.05 * torch.randn(len(rows), 64)
            y = y_train[rows]
            embeddings = net(x)
            indices = None if miner is None else miner(embeddings, y)
            loss = loss_fn(embeddings, y, indices)
            adam.zero_grad()
            loss.backward()
            adam.step()
            total += loss.item()
        if epoch == 1 or epoch % 10 == 0 or epoch == args.epochs:
            print(f"epoch {epoch:4d}  loss {total / batches:.4f}  held-out Recall@1 {held_out():.4f}")
    after = held_out()
    print(f"held-out Recall@1 untrained {before:.4f}")
    print(f"held-out Recall@1 trained {after:.4f}")
    print(f"total time {time.time() - start:.1f} s")
    if after < args.min_recall:
        print(f"python_digits: held-out Recall@1 {after:.4f} is below --min-recall {args.min_recall}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
