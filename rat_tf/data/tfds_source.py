"""TensorFlow Datasets: the offline probe that fails fast, and loading a TFDS split into memory."""

from __future__ import annotations

import socket
import threading
import urllib.parse
import urllib.request

from absl import logging
import numpy as np
import tensorflow as tf

from rat_tf.data.arrays import resize_center_crop
from rat_tf.data.core import DatasetUnavailableError, ImageData

# Download hosts of the TFDS builders (their `_URL`s); probed before a download.
_TFDS_DOWNLOAD_HOSTS = {
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
    "mnist": "storage.googleapis.com",
    "imagenette": "s3.amazonaws.com",
}
_TFDS_TEST_SPLIT = {"imagenette": "validation"}
_TFDS_DEFAULT_IMAGE_SIZE = {"imagenette": 160}

PROBE_TIMEOUT_S = 3.0


def probe_download_host(host: str, port: int = 443,
                        timeout: float | None = None) -> str | None:
    """Tries a TCP connection to `host` (or the HTTPS proxy, if one is set).

    Runs in a daemon thread so a hanging DNS lookup cannot block longer than
    `timeout`.

    Returns:
      None if the connection succeeded, else a short reason.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    proxy = urllib.request.getproxies().get("https")
    if proxy and not urllib.request.proxy_bypass(host):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.hostname:
            host, port = parts.hostname, parts.port or 8080
    result: list[str | None] = []

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except OSError as e:
            result.append(f"{host}:{port} unreachable ({type(e).__name__}: {e})")

    thread = threading.Thread(target=connect, daemon=True, name="rat_tf-probe")
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return f"{host}:{port} unreachable (no answer within {timeout:g} s)"
    return result[0]


def _tfds_family(name: str) -> str:
    return name.split("/", 1)[0]


def tfds_prepared_or_fail(builder, name: str, host: str, offline_options: str) -> bool:
    """Whether a TFDS builder is prepared; if not, fails fast when its download host is unreachable.

    A TFDS download retries for minutes before it fails; this probes `host` with a short TCP
    connect first and raises at once, naming the offline options.

    Args:
      builder: a `tfds` builder (its `is_prepared()` never touches the network).
      name: the dataset name as the user gave it, for the message.
      host: the host its download comes from.
      offline_options: what the user can do instead, for the message.

    Returns:
      True if prepared, False if it must (and can) be downloaded.

    Raises:
      DatasetUnavailableError: not prepared and `host` unreachable.
    """
    try:
        prepared = bool(builder.is_prepared())
    except Exception as e:  # pylint: disable=broad-except
        logging.warning("could not check whether %s is prepared: %s", name, e)
        prepared = False
    if not prepared:
        reason = probe_download_host(host)
        if reason is not None:
            raise DatasetUnavailableError(
                f"TFDS dataset '{name}' is not prepared in {builder.data_dir} and cannot be "
                f"downloaded from here ({reason}); offline options: {offline_options}")
        logging.info("downloading and preparing TFDS dataset %s into %s", name, builder.data_dir)
    return prepared


def load_tfds(name: str, *, data_dir: str | None, image_size: int | None,
              max_train_examples: int | None, max_test_examples: int | None) -> ImageData:
    """A TFDS dataset's train and test splits as uint8 arrays; fails fast when offline."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    family = _tfds_family(name)
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = tfds_prepared_or_fail(
        builder, name, _TFDS_DOWNLOAD_HOSTS.get(family, "storage.googleapis.com"),
        "--dataset=npz:PATH, --dataset=folder:PATH, --dataset=digits, or --data_dir=DIR with a "
        "prepared TFDS directory")

    test_split = _TFDS_TEST_SPLIT.get(family, "test")
    size = image_size if image_size is not None else _TFDS_DEFAULT_IMAGE_SIZE.get(family)

    def split_spec(split: str, n: int | None) -> str:
        return split if n is None else f"{split}[:{n}]"

    (train_ds, test_ds), info = tfds.load(
        name, split=[split_spec("train", max_train_examples),
                     split_spec(test_split, max_test_examples)],
        data_dir=data_dir, as_supervised=True, shuffle_files=False, download=not prepared,
        with_info=True)
    # Read after loading: some builders (CIFAR) learn their label names while preparing.
    class_names = tuple(info.features["label"].names)
    x_train, y_train = _tfds_to_numpy(train_ds, size)
    x_test, y_test = _tfds_to_numpy(test_ds, size)
    return ImageData(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                     class_names=class_names)


def _tfds_to_numpy(ds: tf.data.Dataset, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    def prepare(image, label):
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 2:
            image = image[..., None]
        if size is not None:
            image = tf.cast(tf.clip_by_value(tf.round(resize_center_crop(image, size)),
                                             0, 255), tf.uint8)
        return tf.cast(image, tf.uint8), tf.cast(label, tf.int32)

    xs, ys = [], []
    for x, y in ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(1024).prefetch(2):
        xs.append(x.numpy())
        ys.append(y.numpy())
    if not xs:
        raise ValueError("TFDS split is empty")
    return np.concatenate(xs), np.concatenate(ys)


