"""Users' own data end to end: files written as pandas and spreadsheets write them, the task and
the classes and the scaling kept in the model, and train → predict → evaluate agreeing."""

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import bpgpu
from bpgpu import cli, datasets
from bpgpu.errors import DatasetError

from .conftest import to_np


def bpgpu_cli(capsys, *args):
    """Run ``bpgpu ARGS`` in this process: (exit status, stdout, stderr)."""
    status = cli.main(list(args))
    out = capsys.readouterr()
    return status, out.out, out.err


def _classes_1_to_4(n=1000, seed=1):
    """Four classes labelled 1..4 by two features, beside two unscaled noise-free features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    X[:, 2] = X[:, 2] * 1e5 + 6e5
    X[:, 3] += 5
    y = 1 + (X[:, 0] > 0) + 2 * ((X[:, 2] - 6e5) / 1e5 + X[:, 1] > 0)
    return X, y.astype(int)


@pytest.fixture
def files(tmp_path):
    """train.csv / test.csv (pandas, index=False: a header 0,1,2,3,label), test_no1.csv and
    new.csv (features only), as a user makes them."""
    X, y = _classes_1_to_4()
    frame = pd.DataFrame(X)
    frame["label"] = y
    frame.iloc[:800].to_csv(tmp_path / "train.csv", index=False)
    test = frame.iloc[800:]
    test.to_csv(tmp_path / "test.csv", index=False)
    test[test.label != 1].to_csv(tmp_path / "test_no1.csv", index=False)
    test.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    return tmp_path, test


def _predicted(stdout):
    return pd.read_csv(pd.io.common.StringIO(stdout))


def test_labels_stay_the_users_from_train_to_predict_and_evaluate(files, capsys):
    path, test = files
    model = str(path / "m.safetensors")
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset",
                                 f"csv:{path / 'train.csv'}", "--save", model)
    assert status == 0, err
    assert "task        classify: the last column holds 4 distinct whole numbers" in out
    assert "features standardised" in out
    status, out, err = bpgpu_cli(capsys, "predict", "--model", model, "--input",
                                 str(path / "new.csv"))
    assert status == 0, err
    table = _predicted(out)
    assert list(table.columns) == ["label", "p_1", "p_2", "p_3", "p_4"]
    assert set(table.label) <= {1, 2, 3, 4}
    assert (table.label.to_numpy() == test.label.to_numpy()).mean() > 0.85
    # Evaluating the rows without class 1 scores them as predict labels them.
    status, out, err = bpgpu_cli(capsys, "evaluate", "--model", model, "--dataset",
                                 f"csv:{path / 'test_no1.csv'}", "--json")
    assert status == 0, err
    rest = (test.label != 1).to_numpy()
    expected = (table.label.to_numpy()[rest] == test.label.to_numpy()[rest]).mean()
    assert json.loads(out)["accuracy"] == pytest.approx(expected)


def test_evaluate_names_a_label_the_model_never_saw(files, capsys):
    path, test = files
    model = str(path / "m.safetensors")
    assert bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "1", "--dataset",
                     f"csv:{path / 'train.csv'}", "--save", model, "--quiet")[0] == 0
    odd = test.copy()
    odd.iloc[3, -1] = 7
    odd.to_csv(path / "odd.csv", index=False)
    status, _, err = bpgpu_cli(capsys, "evaluate", "--model", model, "--dataset",
                               f"csv:{path / 'odd.csv'}")
    assert status == 2 and err.count("\n") == 1
    assert "odd.csv has 1 label(s) the network has no output for (7); its classes are [1, 2, " \
        "3, 4]" in err


def test_held_out_evaluation_scores_exactly_the_rows_train_held_out(files, capsys):
    path, _ = files
    model = str(path / "m.safetensors")
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "3",
                                 "--dataset", f"csv:{path / 'train.csv'}", "--save", model,
                                 "--json")
    assert status == 0, err
    trained = json.loads(out)
    status, out, err = bpgpu_cli(capsys, "evaluate", "--model", model, "--dataset",
                                 f"csv:{path / 'train.csv'}", "--split", "held-out", "--json")
    assert status == 0, err
    scored = json.loads(out)
    assert scored["samples"] == 160
    assert scored["accuracy"] == pytest.approx(trained["val_accuracy"])
    assert scored["loss"] == pytest.approx(trained["val_loss"], rel=1e-5)
    status, _, err = bpgpu_cli(capsys, "evaluate", "--model", model, "--dataset",
                               f"csv:{path / 'test.csv'}", "--split", "held-out")
    assert status == 2 and "is not the data set this model was trained on" in err


def test_text_labels_in_a_semicolon_file_with_decimal_commas(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 2))
    kind = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    names = np.array(["setosa", "versicolor", "virginica"])[kind]
    lines = [f"{a:.4f};{b:.4f};{n}".replace(".", ",") for (a, b), n in zip(X, names)]
    (tmp_path / "iris.csv").write_text("\ufefflen;wid;species\r\n" + "\r\n".join(lines) + "\r\n",
                                       encoding="utf-8")
    model = str(tmp_path / "iris.st")
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset",
                                 f"csv:{tmp_path / 'iris.csv'}", "--save", model, "--json")
    assert status == 0, err
    assert json.loads(out)["task"] == "classify" and json.loads(out)["val_accuracy"] > 0.9
    net = bpgpu.load(model)
    assert net.classes == ["setosa", "versicolor", "virginica"]
    assert (net.predict_labels(X) == names).mean() > 0.9


def test_whole_number_prices_and_the_cafeteria_bills_are_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3)) * [1, 10, 1e5] + [0, 50, 6e5]
    price = np.round(2e4 * X[:, 0] + 300 * X[:, 1] + 0.5 * X[:, 2]).astype(int)
    frame = pd.DataFrame(X, columns=["rooms", "age", "area"])
    frame["price"] = price
    frame.to_csv(tmp_path / "houses.csv")  # with pandas' index column
    model = str(tmp_path / "houses.st")
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset",
                                 f"csv:{tmp_path / 'houses.csv'}", "--save", model, "--json")
    assert status == 0, err
    summary = json.loads(out)
    assert summary["task"] == "regress" and summary["layers"] == [3, 32, 1]
    assert summary["standardized_targets"] and summary["val_rmse"] < 0.1 * price.std()
    # Whole-number targets, scored as the regression the model is.
    status, out, err = bpgpu_cli(capsys, "evaluate", "--model", model, "--dataset",
                                 f"csv:{tmp_path / 'houses.csv'}", "--split", "held-out",
                                 "--json")
    assert status == 0, err
    scored = json.loads(out)
    assert "accuracy" not in scored and scored["rmse"] == pytest.approx(summary["val_rmse"])
    assert scored["loss"] == pytest.approx(summary["val_loss"], rel=1e-5)
    bills = datasets.load("cafeteria:20", seed=3)
    pd.DataFrame(np.column_stack([bills.X, bills.y[:, 0].astype(int)]).astype(int)).to_csv(
        tmp_path / "bills.csv", index=False)
    data = datasets.load(f"csv:{tmp_path / 'bills.csv'}")
    assert data.task == "regress" and data.y.shape == (20, 1)
    assert "--task classify to treat them as classes" in data.hints["task_reason"]


def test_task_rule_and_its_overrides():
    assert datasets.decide(np.array(["a", "b", "a"]))[0] == "classify"
    assert datasets.decide(np.repeat([1.0, 2.0, 3.0], 4))[0] == "classify"
    assert datasets.decide(np.arange(40.0))[0] == "regress"  # 40 distinct values
    assert datasets.decide(np.arange(10.0))[0] == "regress"  # one row per value
    assert datasets.decide(np.array([0.5, 1.0, 0.5, 1.0]))[0] == "regress"
    assert datasets.decide(np.arange(40.0), "classify")[0] == "classify"
    assert datasets.decide(np.repeat([1.0, 2.0], 4), "regress")[0] == "regress"
    with pytest.raises(DatasetError, match="fractions"):
        datasets.decide(np.array([0.5, 1.0]), "classify")
    with pytest.raises(DatasetError, match="text"):
        datasets.decide(np.array(["a", "b"]), "regress")


def test_unscaled_features_train_by_default_and_warn_without_standardisation(tmp_path, capsys):
    X, y = _classes_1_to_4(n=2000, seed=2)
    frame = pd.DataFrame(X)
    frame["y"] = y
    frame.to_csv(tmp_path / "unscaled.csv", index=False)
    spec = f"csv:{tmp_path / 'unscaled.csv'}"
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset", spec, "--json")
    assert status == 0, err
    assert json.loads(out)["val_accuracy"] >= 0.95
    with warnings.catch_warnings():
        warnings.simplefilter("default", UserWarning)  # shown as the command shows it
        warnings.simplefilter("ignore", RuntimeWarning)  # the saturated logistic's overflow
        status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset", spec,
                                     "--no-standardize", "--epochs", "2", "--json")
    assert status == 0 and not json.loads(out)["standardized"]
    assert re.search(r"^bpgpu: warning: the first layer's gradients are all exactly zero .* "
                     r"units are saturated .* standardize them", err, re.M)


def test_npz_files_as_numpy_users_save_them(tmp_path, capsys):
    X, y = _classes_1_to_4(n=400)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    data = datasets.load(f"npz:{tmp_path / 'd.npz'}")
    assert data.task == "classify" and data.classes == [1, 2, 3, 4]
    np.testing.assert_array_equal(np.asarray(data.classes)[data.y], y)
    model = str(tmp_path / "m.st")
    assert bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "2", "--dataset",
                     f"npz:{tmp_path / 'd.npz'}", "--save", model, "--quiet")[0] == 0
    status, out, err = bpgpu_cli(capsys, "predict", "--model", model, "--input",
                                 str(tmp_path / "d.npz"))
    assert status == 0 and set(_predicted(out).label) <= {1, 2, 3, 4}, err


def test_epochs_zero_prints_its_summary(capsys, tmp_path):
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "0", "--save",
                                 str(tmp_path / "m.st"))
    assert status == 0, err
    assert "no epoch run" in out and (tmp_path / "m.st").is_file()


# -- in Python ---------------------------------------------------------------------------------

def test_a_network_with_text_classes_trains_and_answers_in_them(device, tmp_path):
    X, y = _classes_1_to_4(n=400)
    names = np.array(["a", "b", "c", "d"])[y - 1]
    net = bpgpu.MLP([4, 16, 4], device=device, classes=["a", "b", "c", "d"], seed=0)
    net.fit(X, names, epochs=20, standardize=True)
    assert (net.predict_labels(X) == names).mean() > 0.85
    with pytest.raises(ValueError, match=r"no output for \('e'\); its classes are \['a', "):
        net.evaluate(X[:3], np.array(["a", "b", "e"]))
    path = tmp_path / "net.safetensors"
    net.save(path)
    for twin in (bpgpu.load(path, device=device), net.to("cpu")):
        assert twin.classes == net.classes
        assert twin.input_transform == net.input_transform
        np.testing.assert_array_equal(twin.predict_labels(X), net.predict_labels(X))


def test_fit_twice_is_fit_once_for_as_many_epochs(device, tmp_path):
    X, y = _classes_1_to_4(n=96)
    kw = dict(batch_size=16, lr=0.01, standardize=True)
    once = bpgpu.MLP([4, 8, 4], device=device, classes=[1, 2, 3, 4], seed=3)
    once.fit(X, y, epochs=4, **kw)
    twice = bpgpu.MLP([4, 8, 4], device=device, classes=[1, 2, 3, 4], seed=3)
    twice.fit(X, y, epochs=2, **kw)
    path = tmp_path / "half.safetensors"
    twice.save(path)
    loaded = bpgpu.load(path, device=device)
    hist = twice.fit(X, y, epochs=2, **kw)
    loaded.fit(X, y, epochs=2, **kw)
    assert len(hist["loss"]) == 4 and hist["loss"] == pytest.approx(once.history["loss"])
    for other in (twice, loaded):
        for (Wa, _), (Wb, _) in zip(once.weights, other.weights):
            np.testing.assert_allclose(to_np(Wa), to_np(Wb), rtol=1e-5, atol=1e-6)
    changed = bpgpu.MLP([4, 8, 4], device=device, seed=3)
    changed.fit(X, y - 1, epochs=1, optimizer="adam", lr=0.01, standardize=True)
    changed.fit(X, y - 1, epochs=1, optimizer="sgd", lr=0.1)  # another optimizer starts afresh
    assert "m" not in changed.optimizer_state[1]


def test_end_metrics_score_the_training_set_with_the_epochs_last_weights():
    X, y = _classes_1_to_4(n=200)
    net = bpgpu.MLP([4, 8, 4], device="cpu", classes=[1, 2, 3, 4], seed=0)
    hist = net.fit(X, y, epochs=3, standardize=True, end_metrics=True)
    assert hist["end_loss"][-1] == pytest.approx(net.evaluate(X, y)["loss"])
    assert hist["end_accuracy"][-1] == pytest.approx(net.evaluate(X, y)["accuracy"])


def test_a_regression_network_predicts_in_the_targets_units(device):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)) * [1, 1e4]
    y = 3e5 + 5e4 * X[:, :1] + 2 * X[:, 1:]
    net = bpgpu.MLP([2, 16, 1], loss="sse", device=device, dtype="float64", seed=0)
    net.fit(X, y, epochs=40, standardize=True)
    assert net.task == "regress" and net.target_transform is not None
    rmse = float(np.sqrt(np.mean((to_np(net.predict(X)) - y) ** 2)))
    assert rmse < 0.1 * y.std()


def test_trainer_step_names_what_is_wrong_with_its_arrays():
    pytest.importorskip("torch")
    net = bpgpu.MLP([4, 8, 3], device="torch:cpu")
    trainer = bpgpu.Trainer(net, "sgd")
    X, T = np.zeros((5, 4), np.float32), np.zeros((5, 3), np.float32)
    with pytest.raises(TypeError, match="its X is a numpy.ndarray: make it with"):
        trainer.step(X, T)
    Xd, Td = net.device_inputs(X), net.device_targets(T, 5)
    with pytest.raises(TypeError, match="X is torch.float64"):
        trainer.step(Xd.double(), Td)
    with pytest.raises(ValueError, match=r"T has shape \(5, 2\); expected \(5, 3\)"):
        trainer.step(Xd, Td[:, :2])
    assert tuple(trainer.step(Xd, Td).shape) == (5, 3)


def test_partial_fit_after_fit_continues_its_optimizer():
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import BPClassifier

    X, y = _classes_1_to_4(n=200)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    clf = BPClassifier(max_iter=2, batch_size=32, device="cpu", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: two epochs, on purpose
        clf.fit(X, y)
    steps = clf.net_.optimizer_state[1]["step"]
    assert steps == 2 * 7  # two epochs of ceil(200 / 32) Adam steps
    clf.partial_fit(X, y)
    assert clf.net_.optimizer_state[1]["step"] == steps + 7


# -- files as they come out of a split or a shuffle, and other review findings -----------------

def test_a_split_or_shuffled_pandas_index_is_dropped_not_learned(files, capsys):
    path, test = files
    frame = pd.read_csv(path / "train.csv")
    frame.sample(frac=1.0, random_state=0).to_csv(path / "shuffled.csv")  # index=True
    test.to_csv(path / "te.csv")  # index 800..999
    test.drop(columns="label").to_csv(path / "te_feat.csv")
    data = datasets.load(f"csv:{path / 'shuffled.csv'}")
    assert data.n_features == 4 and "pandas index column dropped" in data.description
    model = str(path / "m.st")
    assert bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset",
                     f"csv:{path / 'shuffled.csv'}", "--save", model, "--quiet")[0] == 0
    status, out, err = bpgpu_cli(capsys, "predict", "--model", model, "--input",
                                 str(path / "te_feat.csv"))
    assert status == 0, err
    assert (_predicted(out).label.to_numpy() == test.label.to_numpy()).mean() > 0.85
    status, out, err = bpgpu_cli(capsys, "evaluate", "--model", model, "--dataset",
                                 f"csv:{path / 'te.csv'}", "--json")
    assert status == 0 and json.loads(out)["accuracy"] > 0.85, err


def test_numeric_column_names_beside_a_named_label_column_ask_for_header(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(100, 3)), columns=["2019", "2020", "2021"])
    frame["region"] = np.where(frame["2019"] > 0, "north", "south")
    frame.to_csv(tmp_path / "years.csv", index=False)
    with pytest.raises(DatasetError, match=r"line 1: is it a header\? .* --header yes"):
        datasets.load(f"csv:{tmp_path / 'years.csv'}")
    data = datasets.load(f"csv:{tmp_path / 'years.csv'}", header="yes")
    assert data.n_samples == 100 and data.classes == ["north", "south"]
    status, _, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "1", "--dataset",
                               f"csv:{tmp_path / 'years.csv'}", "--header", "yes", "--quiet")
    assert status == 0, err


def test_one_class_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "one.csv").write_text("a,b,y\n" + "".join(f"{i},{i % 3},spam\n"
                                                          for i in range(30)))
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--dataset",
                                 f"csv:{tmp_path / 'one.csv'}")
    assert status == 2 and out == ""
    assert "the label column holds one class only ('spam')" in err
    with pytest.raises(ValueError, match="classes needs two labels or more"):
        bpgpu.MLP([2, 1], loss="cross_entropy", classes=["spam"])


def test_a_regression_hold_out_is_a_plain_seeded_draw():
    from bpgpu.datasets import held_out_rows

    y = np.random.default_rng(0).normal(size=100)
    _, val = held_out_rows(y, 0.2)
    assert y[val].max() > np.sort(y)[40]  # not the 20 smallest targets
    X = np.random.default_rng(1).normal(size=(100, 2))
    net = bpgpu.MLP([2, 4, 1], loss="sse", device="cpu", seed=0)
    _, expected = held_out_rows(y, 0.2, seed=0, stratify=False)
    hist = net.fit(X, y, epochs=1, validation_fraction=0.2)
    assert hist["val_loss"][0] == pytest.approx(net.evaluate(X[expected], y[expected])["loss"])


def test_predict_reads_an_npz_of_features_alone(tmp_path, capsys):
    X, y = _classes_1_to_4(n=100)
    model = tmp_path / "m.st"
    net = bpgpu.MLP([4, 8, 4], device="cpu", classes=[1, 2, 3, 4], seed=0)
    net.fit(X, y, epochs=2, standardize=True)
    net.save(model)
    np.savez(tmp_path / "feat.npz", X=X[:5])
    status, out, err = bpgpu_cli(capsys, "predict", "--model", str(model), "--input",
                                 str(tmp_path / "feat.npz"))
    assert status == 0, err
    assert list(_predicted(out).label) == list(net.predict_labels(X[:5]))


def test_the_last_checkpoint_holds_the_weights_early_stopping_kept(tmp_path):
    X, y = _classes_1_to_4(n=300)
    net = bpgpu.MLP([4, 16, 4], device="cpu", classes=[1, 2, 3, 4], seed=0)
    stop = bpgpu.EarlyStopping(patience=2)
    net.fit(X, y, epochs=300, lr=0.3, standardize=True, validation_fraction=0.3,
            callbacks=[stop], checkpoint=tmp_path / "c.ckpt")
    assert stop.stopped_epoch is not None and stop.best_epoch < stop.stopped_epoch
    saved = bpgpu.load(tmp_path / "c.ckpt")
    for (W, _), (Ws, _) in zip(net.weights, saved.weights):
        np.testing.assert_array_equal(to_np(W), to_np(Ws))
