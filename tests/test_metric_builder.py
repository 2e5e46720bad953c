"""task.metrics: Keras metrics by name with arguments, fed the labels and outputs they expect, on any replica count."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfkit import distribute, metric_builder
from tfkit.config import DistributeConfig
from tfkit.errors import UserError

# Four examples of a 3-class task: the model's logits and integer labels, as the data stores them.
LOGITS = np.array([[2.0, 0.0, -1.0], [0.6, 0.5, 0.0], [-1.0, 3.0, 1.0], [0.0, 0.0, 4.0]], np.float32)
CLASSES = np.array([0, 2, 1, 2])
MULTICLASS = ("auc", {"name": "top_k_categorical_accuracy", "k": 2}, "f1_score", "precision", "recall", "accuracy")


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def results(specs, labels, logits, *, loss="sparse_categorical_crossentropy", num_classes=3):
    built = metric_builder.make_metrics(specs, loss=loss, from_logits=True, num_classes=num_classes)
    for metric in built.values():
        metric.update_state(tf.constant(labels), tf.constant(logits), sample_weight=tf.ones(len(labels)))
    return {name: float(metric.result()) for name, metric in built.items()}


def test_multi_class_metrics_from_integer_labels_and_logits_by_hand():
    values = results(MULTICLASS, CLASSES, LOGITS)
    # Top-2: row 1 (class 2) has its class ranked last; the other three are in their top 2.
    assert values["top_k_categorical_accuracy"] == pytest.approx(0.75)
    # Predicted classes 0, 0, 1, 2 against 0, 2, 1, 2: F1 per class 2/3, 1, 2/3; macro average.
    assert values["f1_score"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3, rel=1e-6)
    # Precision and recall at 0.5 over the one-hot cells (micro): softmax cells above 0.5.
    predicted = softmax(LOGITS) > 0.5
    truth = np.eye(3, dtype=bool)[CLASSES]
    true_positives = (predicted & truth).sum()
    assert values["precision"] == pytest.approx(true_positives / predicted.sum())
    assert values["recall"] == pytest.approx(true_positives / truth.sum())
    assert values["accuracy"] == pytest.approx(0.75)
    # AUC over the one-hot cells, ranked by probability: the share of (positive, negative) pairs in order.
    scores, positive = softmax(LOGITS).ravel(), truth.ravel()
    pairs = [(p > n) + 0.5 * (p == n) for p in scores[positive] for n in scores[~positive]]
    assert values["auc"] == pytest.approx(np.mean(pairs), abs=0.01)  # Keras buckets scores into 200 thresholds


def test_binary_metrics_take_sigmoid_probabilities():
    logits = np.array([[2.0], [1.0], [0.0], [-1.0]], np.float32)
    labels = np.array([1, 0, 1, 0])
    values = results(
        ("auc", "precision", "recall", "f1_score"), labels, logits, loss="binary_crossentropy", num_classes=1
    )
    assert values["auc"] == pytest.approx(0.75, abs=1e-3)  # 3 of the 4 (positive, negative) pairs in order
    # Above 0.5: logits 2 and 1 (sigmoid(0) is exactly 0.5, not above): one true positive of two predicted.
    assert (values["precision"], values["recall"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert values["f1_score"] == pytest.approx(0.5)


def test_one_hot_labels_give_the_same_figures_as_integer_labels():
    assert results(MULTICLASS, np.eye(3, dtype=np.float32)[CLASSES], LOGITS) == results(MULTICLASS, CLASSES, LOGITS)


def test_a_metric_from_a_users_file_is_averaged_over_examples(tmp_path):
    code = tmp_path / "my_metric.py"
    code.write_text(
        "import tensorflow as tf\ndef top_logit(labels, outputs):\n    return tf.reduce_max(outputs, axis=1)\n"
    )
    values = results((f"{code}:top_logit",), CLASSES, LOGITS)
    assert values == {"top_logit": pytest.approx(LOGITS.max(axis=1).mean())}


def test_arguments_the_keras_class_refuses_are_one_line():
    with pytest.raises(UserError, match=r"keras.metrics.TopKCategoricalAccuracy refuses arguments \{'top': 2\}"):
        metric_builder.make_metrics(
            ({"name": "top_k_categorical_accuracy", "top": 2},), loss="mse", from_logits=True, num_classes=3
        )


def test_the_same_figures_on_1_and_2_replicas():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((16, 3)).astype(np.float32)
    labels = rng.integers(0, 3, 16)
    expected = results(MULTICLASS, labels, logits)
    strategy = distribute.select(DistributeConfig(strategy="mirrored", cpu_replicas=2)).strategy
    with strategy.scope():
        built = metric_builder.make_metrics(
            MULTICLASS, loss="sparse_categorical_crossentropy", from_logits=True, num_classes=3
        )
    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((logits, labels)).batch(8))

    @tf.function
    def update(batch):
        def replica(outputs, classes):
            for metric in built.values():
                metric.update_state(classes, outputs, sample_weight=tf.ones(tf.shape(classes)[0]))

        strategy.run(replica, args=batch)

    for batch in dataset:
        update(batch)
    distributed = {name: float(metric.result()) for name, metric in built.items()}
    assert distributed == pytest.approx(expected, rel=1e-6)
