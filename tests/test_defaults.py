"""One table of defaults (bpgpu.defaults), held to by fit, ``bpgpu train``, the estimators and the
README."""

import json
import pathlib
import re

import numpy as np
import pytest

import bpgpu
from bpgpu import cli, defaults
from bpgpu.datasets import load

from .conftest import to_np

DIGITS = load("digits")


def _weights(net):
    return [to_np(p) for p in net.params]


@pytest.mark.parametrize("optimizer", [None, "sgd", "momentum", "adam"])
def test_fit_trains_with_the_tables_defaults(optimizer):
    X, y = DIGITS.X[:200], DIGITS.y[:200]
    chosen = {} if optimizer is None else {"optimizer": optimizer}
    by_default = bpgpu.MLP([64, 32, 10], seed=0)
    hist = by_default.fit(X, y, **chosen)
    name = optimizer or defaults.OPTIMIZER
    spelled_out = bpgpu.MLP([64, 32, 10], seed=0)
    spelled_out.fit(X, y, optimizer=name, lr=defaults.LR[name], epochs=defaults.EPOCHS,
                    batch_size=defaults.BATCH_SIZE)
    assert len(hist["loss"]) == defaults.EPOCHS
    for a, b in zip(_weights(by_default), _weights(spelled_out)):
        np.testing.assert_array_equal(a, b)
    assert bpgpu.Trainer(by_default).opt.name == defaults.OPTIMIZER


@pytest.mark.parametrize("optimizer", [None, "sgd", "momentum"])
def test_bpgpu_train_uses_the_tables_defaults(capsys, optimizer):
    args = ["train", "--device", "cpu", "--json"]
    args += [] if optimizer is None else ["--optimizer", optimizer, "--epochs", "1"]
    assert cli.main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    name = optimizer or defaults.OPTIMIZER
    assert (summary["optimizer"], summary["lr"]) == (name, defaults.LR[name])
    assert summary["batch_size"] == defaults.BATCH_SIZE
    assert summary["layers"] == [64, *defaults.HIDDEN, 10]
    if optimizer is None:
        assert summary["epochs"] == defaults.EPOCHS


def test_the_estimators_take_mlpclassifiers_defaults():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from bpgpu.sklearn import BPClassifier, BPRegressor

    rows = _readme_table()
    for ours, theirs in ((BPClassifier(), MLPClassifier()), (BPRegressor(), MLPRegressor())):
        params, sk = ours.get_params(), theirs.get_params()
        assert {k: params[k] for k in sk} == sk
        assert rows["`optimizer`"][1] == f'`solver="{params["solver"]}"`'
        for name in defaults.LR:
            assert rows[f"`lr` with `{name}`"][1] == (
                "—" if name == "adamw" else f"`learning_rate_init={params['learning_rate_init']}`")
        assert rows["`epochs`"][1].startswith(f"`max_iter={params['max_iter']}`")
        assert rows["`batch_size`"][1].startswith(f'`"{params["batch_size"]}"`')
        assert rows["hidden layers"][1] == str(params["hidden_layer_sizes"])
        assert rows["hidden activation"][1] == f"`{params['activation']}`"


def _readme_table():
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    section = text.split("## Defaults", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|$", section, flags=re.M)
    return {setting: (fit, estimators) for setting, fit, estimators in rows}


def test_the_readme_table_is_the_table():
    rows = {k: fit for k, (fit, _) in _readme_table().items()}
    assert rows["`optimizer`"] == f"`{defaults.OPTIMIZER}`"
    for name, lr in defaults.LR.items():
        assert float(rows[f"`lr` with `{name}`"]) == lr
    assert int(rows["`epochs`"]) == defaults.EPOCHS
    assert int(rows["`batch_size`"]) == defaults.BATCH_SIZE
    assert rows["hidden layers"] == str(defaults.HIDDEN)
    assert rows["hidden activation"] == f"`{defaults.ACTIVATION}`"
