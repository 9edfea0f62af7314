"""
A drop-in for scikit-learn's MLPClassifier
==========================================

:class:`bpgpu.sklearn.BPClassifier` takes scikit-learn's ``MLPClassifier`` settings and works in
pipelines, grid searches and cross-validation; it adds ``device`` and ``dtype``. Swapping it in is
one import.
"""

# %%
# Train both on the digits
# ------------------------
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bpgpu.sklearn import BPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)
accuracy, predictions = {}, {}
for name, Classifier in (("MLPClassifier", MLPClassifier), ("BPClassifier", BPClassifier)):
    model = make_pipeline(StandardScaler(),
                          Classifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0))
    # 30 epochs are enough here but fewer than either needs to meet its tolerance ``tol``:
    # both then say so with a ConvergenceWarning, which this example expects.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    predictions[name] = model.predict(X_test)
    accuracy[name] = accuracy_score(y_test, predictions[name])
    print(f"{name}: test accuracy {accuracy[name]:.1%}")

# %%
# Draw
# ----
# Left: the test accuracy of each. Right: BPClassifier's confusion matrix.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
bars = left.bar(list(accuracy), list(accuracy.values()), color=["0.6", "C0"])
left.bar_label(bars, fmt="{:.1%}")
left.set(ylim=(0, 1.05), ylabel="test accuracy", title="Digits, 30 epochs, one hidden layer")
ConfusionMatrixDisplay.from_predictions(y_test, predictions["BPClassifier"], ax=right,
                                        colorbar=False)
right.set_title("BPClassifier on the test digits")
