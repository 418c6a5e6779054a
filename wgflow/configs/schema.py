"""The config keys of any problem (``[problem.unit]``, ``[problem.group]``, ``[problem.data]``),
the initial laws and the ``simulate`` options beyond the paper's, and the named problem presets.

``problem.preset`` picks the problem: ``paper`` (Maass & Fontbona's problem, its teacher
``problem.teacher``; the tables below are not read and must keep their defaults), ``custom``
(the tables), or a named preset of :data:`PRESETS` (values of the tables that the config's own
values override).
"""

from __future__ import annotations

from solvers.activations import ACTIVATIONS

from ..problem import LOSSES

#: group kinds: the presets of :mod:`wgflow.symmetry.groups`, a direct product of presets, SO(2),
#: given generator matrices, or no group
GROUP_KINDS = ("swap", "cyclic", "cyclic-rotations", "dihedral", "permutations", "sign-flips",
               "product", "SO2", "generators", "none")
UNIT_KINDS = ("perceptron", "matrix", "mlp")
#: the initial laws of :mod:`wgflow.laws`
INIT_LAWS = ("SI", "gaussian", "WI", "file")
#: how E_π is taken (``auto``: the default of :func:`wgflow.simulate`)
EXPECTATIONS = ("auto", "population", "online", "minibatch", "fixed-sample")
OBSERVABLES = ("risk", "teacher_l2", "distance_to_EG", "distance_to_WI")

#: (key, default, rule, meaning), as :data:`wgflow.config.SCHEMA`
PROBLEM_KEYS = (
    ("problem.loss", "squared", "choice:" + "|".join(LOSSES), "loss ℓ(ŷ, y) (squared: ½|ŷ − y|²)"),
    ("problem.unit.kind", "matrix", "choice:" + "|".join(UNIT_KINDS),
     "unit σ_*(x, θ): perceptron a·σ(w·x + b), matrix σ(W x), mlp W_L σ(… σ(W_1 x + b_1))"),
    ("problem.unit.d", 2, "int>=1", "input dimension d"),
    ("problem.unit.c", 2, "int>=1", "output dimension c"),
    ("problem.unit.hidden", [], "widths", "hidden widths of an mlp unit, e.g. [8]"),
    ("problem.unit.activation", "sigmoid", "choice:" + "|".join(sorted(ACTIVATIONS)),
     "activation σ"),
    ("problem.unit.bias", True, "bool", "biases b (perceptron, mlp)"),
    ("problem.group.kind", "swap", "choice:" + "|".join(GROUP_KINDS),
     "group G: swap = C₂ on R², cyclic = C_n shifting R^n, cyclic-rotations = C_n rotating R², "
     "dihedral = D_n on R², permutations = S_n (or `permutations`) on R^n, sign-flips = (Z₂)^n "
     "on R^n, product = the direct product of `factors`, SO2 = rotations of R², generators = "
     "the matrices `generators`, none = no symmetry"),
    ("problem.group.n", 2, "int>=1", "order parameter n of cyclic, cyclic-rotations, dihedral, "
     "permutations, sign-flips"),
    ("problem.group.permutations", [], "perms",
     "generating permutations of 0…n−1 for kind = permutations ([] = all of S_n)"),
    ("problem.group.generators", [], "array",
     "kind = generators: orthogonal matrices (k, n, n), inline or a .npy/.npz/.h5 file"),
    ("problem.group.dataset", "", "text", "array of the generators file (.npz, .h5)"),
    ("problem.group.factors", [], "tables",
     "kind = product: the factors, each a table {kind, n, permutations, generators}"),
    ("problem.group.input", "defining", "rep", "representation ρ on the inputs R^d"),
    ("problem.group.output", "auto", "rep",
     "representation ρ̂ on the outputs R^c (auto: defining if its dimension is c, else trivial "
     "for c = 1)"),
    ("problem.group.hidden", [], "reps",
     "one representation per hidden space (perceptron: R¹; mlp: the widths); [] = trivial"),
    ("problem.group.haar_points", 32, "int>=1", "Haar nodes of the averages over SO(2)"),
    ("problem.data.kind", "gaussian", "choice:gaussian|file|none",
     "data law π: gaussian X ~ N(mean, cov) labelled by the teacher, file = a fixed training set, "
     "none = no data term"),
    ("problem.data.mean", 0.0, "numbers", "mean of X (a number for every coordinate, or d)"),
    ("problem.data.cov", 16.0, "numbers",
     "covariance of X: a variance, d variances, or a (d, d) matrix"),
    ("problem.data.file", "", "path", "the training set (.npy, .npz, .csv, .h5), one sample a row"),
    ("problem.data.dataset", "", "text", "array of an .npz/.h5 training set"),
    ("problem.data.x_columns", [], "columns", "input columns ([] = the first d)"),
    ("problem.data.y_columns", [], "columns", "label columns ([] = the c after the inputs)"),
    ("problem.data.labels", "columns", "choice:columns|teacher",
     "labels of the training set: its columns, or the teacher's outputs"),
    ("problem.data.orbit_closed", False, "bool",
     "expand the training set to its orbit {(ρ_g x, ρ̂_g y)} (finite groups): exactly symmetric"),
    ("problem.data.teacher.particles", [], "array",
     "teacher particles (K, D), inline or a .npy/.npz/.h5 file ([] = drawn from `law`)"),
    ("problem.data.teacher.dataset", "", "text",
     "array of the teacher file (.npz, .h5; default of a run file: its last frame)"),
    ("problem.data.teacher.law", "gaussian", "choice:gaussian|SI|WI",
     "law the teacher is drawn from: gaussian, SI (on E^G) or WI (a gaussian's orbit, K·|G|)"),
    ("problem.data.teacher.K", 5, "int>=1", "teacher particles drawn"),
    ("problem.data.teacher.std", 0.5, "num>=0", "standard deviation of the drawn entries"),
    ("problem.data.teacher.seed", 0, "int>=0", "seed of the drawn teacher"),
)

INIT_KEYS = (
    ("init.mean", 0.0, "num", "mean of every entry (gaussian, WI)"),
    ("init.file", "", "path", "particles (N, D) for init.law = file (.npy, .npz, .h5)"),
    ("init.dataset", "", "text", "array of init.file (.npz, .h5; default of a run file: its "
                                 "last frame)"),
)

RUN_KEYS = (
    ("run.expectation", "auto", "choice:" + "|".join(EXPECTATIONS),
     "E_π: auto (mf: population, sgd: online or minibatch), population (quadrature or the data), "
     "online (batch_size fresh samples a step), minibatch (batch_size drawn from the "
     "population), fixed-sample (sample_size draws, fixed)"),
    ("run.sample_size", 1000, "int>=1", "samples of run.expectation = fixed-sample"),
    ("run.sample_seed", 0, "int>=0", "seed of the fixed sample"),
    ("run.observables", [], "names",
     f"observables recorded, among {list(OBSERVABLES)} ([] = all that apply)"),
)

FILE_KEYS = (
    ("files.sha256", [], "digests",
     "SHA-256 of each file the config reads, recorded when it is checked: a changed file is "
     "refused"),
)

#: the path keys, each with the key of its array name
PATH_KEYS = {"problem.group.generators": "problem.group.dataset",
             "problem.data.file": "problem.data.dataset",
             "problem.data.teacher.particles": "problem.data.teacher.dataset",
             "init.file": "init.dataset"}

#: named problems: their values of the problem keys
PRESETS = {
    "paper": "Maass & Fontbona: sigmoid(W x), W ∈ R^{2×2}, G = C₂ swap, X ~ N(0, 16 I), the "
             "teacher problem.teacher (arbitrary, WI or SI); the problem of every built-in study",
    "custom": "the [problem.unit], [problem.group] and [problem.data] tables",
    "sign-flips-tanh": {
        "problem.unit.kind": "perceptron", "problem.unit.d": 10, "problem.unit.c": 1,
        "problem.unit.activation": "tanh", "problem.group.kind": "sign-flips",
        "problem.group.n": 10, "problem.data.cov": 1.0, "problem.data.teacher.K": 4},
    "cyclic-mlp": {
        "problem.unit.kind": "mlp", "problem.unit.d": 3, "problem.unit.c": 1,
        "problem.unit.hidden": [3], "problem.unit.activation": "tanh",
        "problem.group.kind": "cyclic", "problem.group.n": 3, "problem.group.hidden": ["defining"],
        "problem.data.cov": 1.0, "problem.data.teacher.K": 3},
    "so2-plane": {
        "problem.unit.kind": "perceptron", "problem.unit.d": 2, "problem.unit.c": 1,
        "problem.unit.activation": "tanh", "problem.group.kind": "SO2",
        "problem.data.cov": 1.0, "problem.data.teacher.K": 3},
}


def preset_lines() -> list[str]:
    """One line per preset: its name and what it is."""
    lines = []
    for name, values in PRESETS.items():
        what = values if isinstance(values, str) else ", ".join(
            f"{k.removeprefix('problem.')}={v}" for k, v in values.items())
        lines.append(f"{name:<16} {what}")
    return lines
