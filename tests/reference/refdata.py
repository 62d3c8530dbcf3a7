"""Writer for the reference data files that the C++ tests read
(tests/support/reference_data.hpp).

Format, plain text, one array after another:
    <name> <rows> <cols>
    <rows * cols numbers, row-major, 17 significant digits, whitespace separated>
Lines starting with '#' are comments. Scalars are 1 x 1, vectors N x 1.
"""
import math


class ReferenceWriter:
    def __init__(self, path, description):
        self.path = path
        self.lines = ["# " + line for line in description.strip().splitlines()]
        self.names = set()

    def add(self, name, value):
        """value: float/int, 1-D or 2-D sequence, numpy array or torch tensor."""
        if name in self.names:
            raise ValueError("duplicate array name " + name)
        self.names.add(name)
        if hasattr(value, "detach"):
            value = value.detach().cpu().double().numpy()
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (int, float)):
            rows = [[value]]
        elif len(value) == 0:
            rows = []
        elif isinstance(value[0], (list, tuple)):
            rows = [list(r) for r in value]
        else:
            rows = [[v] for v in value]
        ncols = len(rows[0]) if rows else 0
        self.lines.append("%s %d %d" % (name, len(rows), ncols))
        for r in rows:
            if len(r) != ncols:
                raise ValueError("ragged array " + name)
            for v in r:
                if not math.isfinite(float(v)):
                    raise ValueError("non-finite value in " + name)
            self.lines.append(" ".join(repr(float(v)) if not float(v).is_integer() or abs(v) > 2**53
                                       else str(int(v)) for v in r))

    def save(self):
        with open(self.path, "w") as f:
            f.write("\n".join(self.lines) + "\n")
