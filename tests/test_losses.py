"""task.loss: Keras losses by name with arguments, any label form, user code, class weights, and any replica count."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfkit import distribute, loop, losses
from tfkit.config import DistributeConfig
from tfkit.config.checks import KERAS_LOSSES
from tfkit.errors import UserError

LOGITS = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-1.0, 3.0, 1.0], [0.0, 0.0, 4.0]], np.float32)
CLASSES = np.array([0, 2, 1, 2])
ONE_HOT = np.eye(3, dtype=np.float32)[CLASSES]


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def values(spec, labels, outputs=LOGITS, **options):
    return losses.per_example_loss(spec, from_logits=True, **options)(tf.constant(labels), tf.constant(outputs)).numpy()


def test_crossentropy_by_hand_for_integer_one_hot_and_soft_labels():
    expected = -np.log(softmax(LOGITS)[np.arange(4), CLASSES])
    np.testing.assert_allclose(values("sparse_categorical_crossentropy", CLASSES), expected, rtol=1e-6)
    np.testing.assert_allclose(values("categorical_crossentropy", CLASSES), expected, rtol=1e-6)
    np.testing.assert_allclose(values("categorical_crossentropy", ONE_HOT), expected, rtol=1e-6)
    # Soft labels reach the sparse loss too, as the categorical one.
    np.testing.assert_allclose(values("sparse_categorical_crossentropy", ONE_HOT), expected, rtol=1e-6)
    soft = np.full((4, 3), 1 / 3, np.float32)
    np.testing.assert_allclose(
        values("categorical_crossentropy", soft), -np.log(softmax(LOGITS)).mean(axis=1), rtol=1e-6
    )


def test_label_smoothing_and_focal_loss_match_keras_own_functions_and_a_hand_value():
    smoothed = values({"name": "categorical_crossentropy", "label_smoothing": 0.1}, CLASSES)
    keras_smoothed = keras.losses.categorical_crossentropy(ONE_HOT, LOGITS, from_logits=True, label_smoothing=0.1)
    np.testing.assert_allclose(smoothed, keras_smoothed, rtol=1e-6)
    by_hand = -(ONE_HOT * 0.9 + 0.1 / 3) * np.log(softmax(LOGITS))
    np.testing.assert_allclose(smoothed, by_hand.sum(axis=1), rtol=1e-5)

    focal = values({"name": "categorical_focal_crossentropy", "gamma": 2.0, "alpha": 0.25}, CLASSES)
    keras_focal = keras.losses.categorical_focal_crossentropy(ONE_HOT, LOGITS, from_logits=True, gamma=2.0)
    np.testing.assert_allclose(focal, keras_focal, rtol=1e-6)
    p = softmax(LOGITS)[np.arange(4), CLASSES]
    np.testing.assert_allclose(focal, -0.25 * (1 - p) ** 2 * np.log(p), rtol=1e-5)


def test_huber_binary_and_regression_losses_take_labels_in_the_outputs_shape():
    outputs = np.array([[0.0], [2.0], [-3.0]], np.float32)
    targets = np.array([0.5, 0.0, 0.0], np.float32)  # stored without the outputs' last axis
    huber = values({"name": "huber", "delta": 1.0}, targets, outputs)
    np.testing.assert_allclose(huber, [0.5 * 0.25, 2.0 - 0.5, 3.0 - 0.5], rtol=1e-6)
    binary = values("binary_crossentropy", np.array([1, 0, 0]), outputs)
    sigmoid = 1 / (1 + np.exp(-outputs[:, 0]))
    by_hand = [-math.log(sigmoid[0]), -math.log(1 - sigmoid[1]), -math.log(1 - sigmoid[2])]
    np.testing.assert_allclose(binary, by_hand, rtol=1e-6)
    np.testing.assert_allclose(values("mse", targets, outputs), (outputs[:, 0] - targets) ** 2)


def test_every_keras_loss_name_builds_and_gives_one_value_per_example():
    for name in KERAS_LOSSES:
        if name in ("cosine_similarity", "poisson", "kl_divergence"):
            labels, outputs = ONE_HOT, softmax(LOGITS)  # these want probabilities, not logits
        elif "categorical" in name:
            labels, outputs = CLASSES, LOGITS
        else:
            labels, outputs = ONE_HOT, LOGITS  # targets in the outputs' shape
        assert values(name, labels, outputs).shape == (4,), name


def test_a_loss_from_a_users_file_gets_the_labels_as_stored(tmp_path):
    code = tmp_path / "my_loss.py"
    code.write_text(
        "import tensorflow as tf\n"
        "def margin(labels, outputs):\n"
        "    picked = tf.gather(outputs, tf.cast(labels, tf.int32), batch_dims=1)\n"
        "    return tf.reduce_max(outputs, axis=1) - picked\n"
    )
    np.testing.assert_allclose(values(f"{code}:margin", CLASSES), [0.0, 0.5, 0.0, 0.0])


def test_arguments_the_keras_class_refuses_are_one_line():
    with pytest.raises(UserError, match=r"keras.losses.Huber refuses arguments \{'smoothing': 1\}"):
        losses.per_example_loss({"name": "huber", "smoothing": 1}, from_logits=True)


def test_class_weights_change_the_gradient_exactly_as_per_example_weights_would():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    optimizer = keras.optimizers.SGD()
    table = losses.class_weight_table({0: 2.0, 2: 0.5}, num_classes=3)
    settings = loop.StepSettings(global_batch_size=4)

    def gradients(loss_fn, weights):
        pass_ = loop.make_forward_backward(
            model=model, optimizer=optimizer, loss_fn=loss_fn, settings=settings, replicas=1
        )
        return [g.numpy() for g in pass_(tf.constant(LOGITS), tf.constant(CLASSES), tf.constant(weights))[1]]

    weighted = gradients(
        losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True, class_weights=table),
        np.ones(4, np.float32),
    )
    per_example = gradients(
        losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True),
        np.array([2.0, 0.5, 1.0, 0.5], np.float32),
    )
    for a, b in zip(weighted, per_example, strict=True):
        np.testing.assert_array_equal(a, b)
    unweighted = gradients(
        losses.per_example_loss("sparse_categorical_crossentropy", from_logits=True), np.ones(4, np.float32)
    )
    assert not np.allclose(unweighted[0], weighted[0])


def test_balanced_class_weights_follow_keras_formula():
    assert losses.balanced_weights({0: 6, 1: 2}, num_classes=3) == {0: 8 / (2 * 6), 1: 8 / (2 * 2)}
    with pytest.raises(UserError, match="expected class ids below 3"):
        losses.class_weight_table({3: 1.0}, num_classes=3)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "categorical_crossentropy", "label_smoothing": 0.1},
        {"name": "categorical_focal_crossentropy", "gamma": 2.0},
        "sparse_categorical_crossentropy",
    ],
)
def test_the_global_mean_loss_is_the_same_on_1_and_2_replicas(spec):
    loss_fn = losses.per_example_loss(spec, from_logits=True)
    expected = loss_fn(tf.constant(CLASSES), tf.constant(LOGITS)).numpy().mean()
    strategy = distribute.select(DistributeConfig(strategy="mirrored", cpu_replicas=2)).strategy
    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((LOGITS, CLASSES)).batch(4))

    @tf.function
    def global_mean(batch):
        def replica(outputs, labels):
            return tf.reduce_sum(loss_fn(labels, outputs)) / 4

        return strategy.reduce("SUM", strategy.run(replica, args=batch), axis=None)

    (batch,) = list(dataset)
    assert float(global_mean(batch)) == pytest.approx(float(expected), rel=1e-6)
