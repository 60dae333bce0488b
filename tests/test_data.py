"""Tests for rat_tf.data: loaders (digits, npz, folder, TFDS offline) and pipelines."""

import os
import tarfile
import time
import types

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from rat_tf import data
from rat_tf.data import tfds_source

from helpers import natural_patches, shared_file, write_image_tree, write_mnist_like_npz

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Keeps every test's default cache out of the user's home."""
    monkeypatch.setenv("RAT_TF_CACHE_DIR", str(tmp_path / "default_cache"))


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------------------------
# Specs and arguments.


def test_unknown_spec_lists_allowed_specs():
    with pytest.raises(ValueError) as e:
        data.load("imagenet")
    message = _one_line(e)
    for spec in ("digits", "cifar10", "mnist", "imagenette/160px", "npz:PATH", "folder:PATH"):
        assert spec in message
    assert "npz:PATH" in data.describe_specs()
    assert "digits" in data.DATASET_NAMES


@pytest.mark.parametrize("kwargs", [{"image_size": 0}, {"max_train_examples": -1},
                                    {"max_test_examples": 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        data.load("digits", **kwargs)


def test_default_cache_dir_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAT_TF_CACHE_DIR", str(tmp_path / "c"))
    assert data.default_cache_dir() == str(tmp_path / "c")
    monkeypatch.delenv("RAT_TF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == str(tmp_path / "xdg" / "rat_tf")


def test_to_float():
    u8 = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(data.to_float(u8), [0.0, 0.2, 1.0], rtol=1e-6)
    assert data.to_float(u8).dtype == np.float32
    f64 = np.array([0.0, 0.5], np.float64)
    assert data.to_float(f64).dtype == np.float32
    t = data.to_float(tf.constant(u8))
    assert t.dtype == tf.float32
    np.testing.assert_allclose(t.numpy(), [0.0, 0.2, 1.0], rtol=1e-6)


# --------------------------------------------------------------------------
# digits.


def test_digits_split_and_format():
    d = data.load("digits")
    assert d.name == "digits"
    assert d.x_train.shape == (1437, 8, 8, 1) and d.x_test.shape == (360, 8, 8, 1)
    assert d.y_train.shape == (1437,) and d.y_test.shape == (360,)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    assert 0.0 <= d.x_train.min() and d.x_train.max() == 1.0
    assert d.num_classes == 10 and d.class_names == tuple(str(i) for i in range(10))
    assert d.input_shape == (8, 8, 1)
    assert set(np.unique(d.y_test)) == set(range(10))
    # The documented split: scikit-learn's order, first 1,437 train.
    from sklearn.datasets import load_digits
    sk = load_digits()
    np.testing.assert_array_equal(d.y_train, sk.target[:1437])
    np.testing.assert_array_equal(d.y_test, sk.target[1437:])
    np.testing.assert_array_equal(d.x_test[..., 0], sk.images[1437:] / 16.0)
    again = data.load("digits")
    np.testing.assert_array_equal(d.x_train, again.x_train)
    np.testing.assert_array_equal(d.y_test, again.y_test)


def test_digits_max_examples_and_resize():
    d = data.load("digits", max_train_examples=100, max_test_examples=7, image_size=16)
    assert d.x_train.shape == (100, 16, 16, 1) and d.x_test.shape == (7, 16, 16, 1)
    assert d.x_train.dtype == np.float32
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    full = data.load("digits")
    np.testing.assert_array_equal(d.y_train, full.y_train[:100])


# --------------------------------------------------------------------------
# npz.


def _check_mnist_layout(path, arrays):
    d = data.load(f"npz:{path}")
    n_train, n_test = len(arrays["y_train"]), len(arrays["y_test"])
    assert d.x_train.shape == (n_train, 28, 28, 1) and d.x_test.shape == (n_test, 28, 28, 1)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int32
    np.testing.assert_array_equal(d.y_train, arrays["y_train"])
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    np.testing.assert_array_equal(d.x_train[..., 0], arrays["x_train"])
    assert d.num_classes == 10 and d.class_names[0] == "0" and d.class_names[-1] == "9"
    assert d.input_shape == (28, 28, 1)

    small = data.load(f"npz:{path}", max_train_examples=50, max_test_examples=10)
    assert len(small.y_train) == 50 and len(small.y_test) == 10
    np.testing.assert_array_equal(small.x_train, d.x_train[:50])
    return d


def test_npz_in_the_mnist_layout(tmp_path):
    """keras.datasets.mnist's layout (uint8 (N, 28, 28) images, uint8 labels), written here."""
    path = tmp_path / "mnist_like.npz"
    arrays = write_mnist_like_npz(path)
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (600, 28, 28)
    d = _check_mnist_layout(path, arrays)
    assert d.x_train.std() > 30  # real handwriting, not blank


def test_npz_real_mnist_slice(tmp_path):
    """The real mnist.npz of the shared data directory, when present (extra coverage)."""
    mnist = shared_file("mnist.npz")
    if mnist is None:
        pytest.skip("mnist.npz not in the shared data directory")
    with np.load(mnist) as f:
        arrays = {"x_train": f["x_train"][:600], "y_train": f["y_train"][:600],
                  "x_test": f["x_test"][:100], "y_test": f["y_test"][:100]}
    path = tmp_path / "mnist_small.npz"
    np.savez(path, **arrays)
    d = _check_mnist_layout(path, arrays)
    np.testing.assert_array_equal(d.y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])


def test_npz_float_nhwc_and_column_labels(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "f.npz"
    np.savez(path, x_train=rng.random((6, 5, 5, 3)), y_train=np.array([[0], [2], [1], [2], [0], [1]]),
             x_test=rng.random((2, 5, 5, 3)).astype(np.float32), y_test=np.array([3.0, 0.0]))
    d = data.load(f"npz:{path}")
    assert d.x_train.dtype == np.float32 and d.x_train.shape == (6, 5, 5, 3)
    np.testing.assert_array_equal(d.y_train, [0, 2, 1, 2, 0, 1])
    assert d.y_test.dtype == np.int32
    assert d.num_classes == 4  # max label over train and test is 3.


def _valid_arrays():
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (8, 6, 6), dtype=np.uint8),
            "y_train": np.arange(8) % 3,
            "x_test": rng.integers(0, 256, (4, 6, 6), dtype=np.uint8),
            "y_test": np.arange(4) % 3}


@pytest.mark.parametrize("change, expected", [
    (lambda a: a.pop("y_test"), "missing key.*y_test"),
    (lambda a: a.update(y_train=a["y_train"][:5]), "mismatched lengths.*y_train"),
    (lambda a: a.update(x_test=np.full((4, 6, 6), 1.5, np.float32)), "x_test.*out of range"),
    (lambda a: a.update(x_train=np.full((8, 6, 6), -0.1)), "x_train.*out of range"),
    (lambda a: a.update(y_train=a["y_train"] - 1), "y_train.*negative"),
    (lambda a: a.update(y_test=np.array([0.5, 1.0, 2.0, 0.0])), "y_test.*non-integer"),
    (lambda a: a.update(x_test=np.zeros((4, 7, 7), np.uint8)), "shapes differ"),
    (lambda a: a.update(x_train=np.zeros((8, 6), np.uint8)), "x_train.*shape"),
])
def test_npz_errors(tmp_path, change, expected):
    arrays = _valid_arrays()
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=expected) as e:
        data.load(f"npz:{path}")
    _one_line(e)


def test_npz_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not found") as e:
        data.load(f"npz:{tmp_path / 'nope.npz'}")
    assert "nope.npz" in _one_line(e)


# --------------------------------------------------------------------------
# Image folders.

# Created in this (unsorted) order; sorted: ant, bee, cat -> labels 0, 1, 2.
_CLASSES = ("cat", "ant", "bee")


def _write_tree(root, num_train=4, num_test=2, size=(10, 10), mode="RGB", seed=0):
    """Writes random lossless PNGs; returns {(split, class, index): pixels}."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for split, n in (("train", num_train), ("test", num_test)):
        for cls in _CLASSES:
            os.makedirs(root / split / cls, exist_ok=True)
            for i in range(n):
                shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
                arr = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(arr, mode).save(root / split / cls / f"{i:03d}.png")
                pixels[(split, cls, i)] = arr
    return pixels


def _expected_split(pixels, split, n):
    """The documented order: the k-th file of every (sorted) class in turn."""
    xs, ys = [], []
    for k in range(n):
        for label, cls in enumerate(sorted(_CLASSES)):
            xs.append(pixels[(split, cls, k)])
            ys.append(label)
    return np.stack(xs), np.array(ys)


def test_folder_tree_labels_pixels_and_cache(tmp_path):
    root = tmp_path / "tree"
    pixels = _write_tree(root)
    cache = tmp_path / "cache"
    d = data.load(f"folder:{root}", cache_dir=str(cache))

    assert d.class_names == ("ant", "bee", "cat") and d.num_classes == 3
    assert d.x_train.shape == (12, 10, 10, 3) and d.x_test.shape == (6, 10, 10, 3)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.int32
    x_train, y_train = _expected_split(pixels, "train", 4)
    x_test, y_test = _expected_split(pixels, "test", 2)
    np.testing.assert_array_equal(d.y_train, y_train)
    np.testing.assert_array_equal(d.x_train, x_train)
    np.testing.assert_array_equal(d.y_test, y_test)
    np.testing.assert_array_equal(d.x_test, x_test)

    # The cache file exists, and a second load reads it without decoding.
    cache_file = data.folder_cache_path(f"folder:{root}", cache_dir=str(cache))
    assert os.path.isfile(cache_file)
    assert os.listdir(cache) == [  # no temporary file left
        os.path.basename(cache_file)]

    # A second load reads the cache without decoding: with every file replaced by bytes that
    # do not decode (same size and mtime, so the same key), it still returns the arrays.
    originals = {}
    for path in sorted(root.rglob("*.png")):
        stat = path.stat()
        originals[path] = (path.read_bytes(), stat)
        path.write_bytes(b"\0" * stat.st_size)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = data.load(f"folder:{root}", cache_dir=str(cache), max_train_examples=5)
    np.testing.assert_array_equal(again.x_train, d.x_train[:5])
    np.testing.assert_array_equal(again.y_train, d.y_train[:5])
    np.testing.assert_array_equal(again.x_test, d.x_test)
    assert again.class_names == d.class_names
    for path, (content, stat) in originals.items():
        path.write_bytes(content)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    # Changing the tree changes the key: the new file is decoded.
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "train" / "ant" / "999.png")
    grown = data.load(f"folder:{root}", cache_dir=str(cache))
    assert len(grown.y_train) == 13
    assert len([p for p in os.listdir(cache) if p.endswith(".npz")]) == 2


def test_folder_default_cache_dir(tmp_path):
    root = tmp_path / "tree"
    _write_tree(root, num_train=1, num_test=1)
    data.load(f"folder:{root}")
    cache_file = data.folder_cache_path(str(root))
    assert cache_file.startswith(str(tmp_path / "default_cache"))
    assert os.path.isfile(cache_file)


def test_folder_grayscale_stays_one_channel(tmp_path):
    root = tmp_path / "gray"
    pixels = _write_tree(root, num_train=2, num_test=1, mode="L")
    d = data.load(f"folder:{root}", cache_dir=str(tmp_path / "c"))
    assert d.input_shape == (10, 10, 1)
    x_train, _ = _expected_split(pixels, "train", 2)
    np.testing.assert_array_equal(d.x_train[..., 0], x_train)

    # One RGB file makes the whole set RGB; grayscale images are replicated.
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "test" / "ant" / "rgb.png")
    mixed = data.load(f"folder:{root}", cache_dir=str(tmp_path / "c"))
    assert mixed.input_shape == (10, 10, 3)
    for c in range(3):
        np.testing.assert_array_equal(mixed.x_train[..., c], x_train)


def test_folder_mixed_sizes_need_image_size(tmp_path):
    root = tmp_path / "mixed"
    _write_tree(root, num_train=2, num_test=1)
    Image.fromarray(np.zeros((12, 14, 3), np.uint8)).save(root / "train" / "bee" / "big.png")
    with pytest.raises(ValueError, match="differ in size.*image_size") as e:
        data.load(f"folder:{root}", cache_dir=str(tmp_path / "c"))
    _one_line(e)
    d = data.load(f"folder:{root}", cache_dir=str(tmp_path / "c"), image_size=8)
    assert d.x_train.shape == (7, 8, 8, 3) and d.x_test.shape == (3, 8, 8, 3)


def test_folder_resize_is_shorter_side_then_center_crop(tmp_path):
    root = tmp_path / "wide"
    # 12 high x 36 wide: red (6 columns) | green (24) | blue (6). A plain resize
    # would keep red and blue; shorter side 12 -> 6 gives 6x18, and its center
    # 6 columns come from source columns 12..23, far from the red and blue edges.
    img = np.zeros((12, 36, 3), np.uint8)
    img[:, :6, 0] = 255
    img[:, 6:30, 1] = 255
    img[:, 30:, 2] = 255
    for split in ("train", "test"):
        os.makedirs(root / split / "a")
        Image.fromarray(img).save(root / split / "a" / "0.png")
    d = data.load(f"folder:{root}", cache_dir=str(tmp_path / "c"), image_size=6)
    assert d.x_train.shape == (1, 6, 6, 3)
    np.testing.assert_array_equal(d.x_train[0], np.broadcast_to([0, 255, 0], (6, 6, 3)))


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    (empty / "test" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no training images") as e:
        data.load(f"folder:{empty}", cache_dir=str(tmp_path / "c"))
    assert str(empty) in _one_line(e)

    with pytest.raises(ValueError, match="not found"):
        data.load(f"folder:{tmp_path / 'missing'}")

    no_test = tmp_path / "no_test"
    _write_tree(no_test, num_train=1, num_test=1)
    extra = no_test / "test" / "zebra"
    extra.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(extra / "0.png")
    with pytest.raises(ValueError, match="test/ has classes not in train/: zebra"):
        data.load(f"folder:{no_test}", cache_dir=str(tmp_path / "c"))

    broken = tmp_path / "broken"
    _write_tree(broken, num_train=1, num_test=1)
    (broken / "train" / "ant" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot decode image.*bad.png"):
        data.load(f"folder:{broken}", cache_dir=str(tmp_path / "c"))


def _check_cifar_tree(root, cache_dir):
    d = data.load(f"folder:{root}", cache_dir=str(cache_dir))
    assert d.class_names == CIFAR_CLASSES
    assert d.x_train.shape == (20, 32, 32, 3) and d.x_test.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(d.y_train, list(range(10)) * 2)
    assert d.x_train.std() > 10  # Real pictures, not blank.
    return d


def test_folder_jpeg_tree_in_the_cifar10_layout(tmp_path):
    """A JPEG tree in the CIFAR-10 JPEG layout (train|test/<class>/0000.jpg), written here from
    crops of scikit-learn's sample photos: canonical class order, decoded like Pillow does."""
    patches = natural_patches()
    labels = np.arange(20) % 10
    splits = {"train": (patches[:20], labels), "test": (patches[20:40], labels)}
    root = write_image_tree(tmp_path / "cifar", splits, CIFAR_CLASSES)
    d = _check_cifar_tree(root, tmp_path / "c")
    with Image.open(root / "train" / "bird" / "0001.jpg") as im:
        np.testing.assert_array_equal(d.x_train[12], np.asarray(im.convert("RGB")))
    # JPEG is lossy, but close to the pixels written.
    assert np.mean(np.abs(d.x_train.astype(float) - patches[:20])) < 8


def test_folder_real_cifar10_jpegs(tmp_path):
    """A few real CIFAR-10 JPEGs from the shared tarball, when present (extra coverage)."""
    cifar_tar = shared_file("cifar10-jpeg.tar.gz")
    if cifar_tar is None:
        pytest.skip("cifar10-jpeg.tar.gz not in the shared data directory")
    wanted = {f"{split}/{cls}/{i:04d}.jpg"
              for split in ("train", "test") for cls in CIFAR_CLASSES for i in range(2)}
    root = tmp_path / "cifar"
    with tarfile.open(cifar_tar, "r:gz") as tar:
        members = []
        for m in tar:
            name = m.name[2:] if m.name.startswith("./") else m.name
            if name in wanted:
                m.name = name
                members.append(m)
                if len(members) == len(wanted):
                    break
        tar.extractall(root, members=members, filter="data")
    _check_cifar_tree(root, tmp_path / "c")


# --------------------------------------------------------------------------
# TFDS: offline behaviour without ever downloading.


@pytest.fixture
def no_tfds_download(monkeypatch):
    import tensorflow_datasets as tfds

    def forbidden(*args, **kwargs):
        raise AssertionError("a test tried to download a TFDS dataset")

    monkeypatch.setattr(tfds, "load", forbidden)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", forbidden)
    return tfds


def test_tfds_offline_fails_fast(tmp_path, no_tfds_download):
    if tfds_source.probe_download_host("www.cs.toronto.edu", timeout=3.0) is None:
        pytest.skip("the CIFAR-10 download host is reachable from here")
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as e:
        data.load("cifar10", data_dir=str(tmp_path))
    assert time.monotonic() - start < 20
    assert isinstance(e.value, RuntimeError)
    message = _one_line(e)
    assert "cifar10" in message and "cannot be downloaded" in message


def test_tfds_unavailable_message_names_offline_options(tmp_path, monkeypatch, no_tfds_download):
    probed = []
    monkeypatch.setattr(tfds_source, "probe_download_host",
                        lambda host, **kw: probed.append(host) or f"{host}:443 unreachable (test)")
    with pytest.raises(data.DatasetUnavailableError) as e:
        data.load("imagenette/160px", data_dir=str(tmp_path))
    message = _one_line(e)
    assert probed == ["s3.amazonaws.com"]
    for option in ("--dataset=npz:PATH", "--dataset=folder:PATH", "--dataset=digits",
                   "--data_dir"):
        assert option in message
    assert str(tmp_path) in message


def test_probe_reports_unreachable_quickly():
    start = time.monotonic()
    # Port 9 on localhost: refused at once (nothing listens there).
    reason = tfds_source.probe_download_host("127.0.0.1", port=9, timeout=1.0)
    assert reason is not None and "127.0.0.1:9" in reason
    assert time.monotonic() - start < 5


def _fake_tfds_load(calls, train_images, test_images):
    def fake_load(name, *, split, data_dir, as_supervised, shuffle_files, download, with_info):
        calls.append({"name": name, "split": split, "data_dir": data_dir,
                      "download": download, "as_supervised": as_supervised})
        assert with_info and not shuffle_files
        info = types.SimpleNamespace(features={"label": types.SimpleNamespace(
            names=[f"class{i}" for i in range(10)])})

        def make(images):
            def gen():
                for i, img in enumerate(images):
                    yield img, np.int64(i % 10)
            spec = (tf.TensorSpec((None, None, images[0].shape[-1]), tf.uint8),
                    tf.TensorSpec((), tf.int64))
            return tf.data.Dataset.from_generator(gen, output_signature=spec)

        return [make(train_images), make(test_images)], info
    return fake_load


def test_tfds_prepared_path_skips_probe(tmp_path, monkeypatch, no_tfds_download):
    tfds = no_tfds_download
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    monkeypatch.setattr(tfds_source, "probe_download_host",
                        lambda *a, **k: pytest.fail("probed although prepared"))
    calls = []
    rng = np.random.default_rng(0)
    monkeypatch.setattr(tfds, "load", _fake_tfds_load(
        calls, [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(5)],
        [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]))
    d = data.load("cifar10", data_dir=str(tmp_path), max_train_examples=5, max_test_examples=3)
    assert calls == [{"name": "cifar10", "split": ["train[:5]", "test[:3]"],
                      "data_dir": str(tmp_path), "download": False, "as_supervised": True}]
    assert d.x_train.shape == (5, 32, 32, 3) and d.x_train.dtype == np.uint8
    assert d.y_train.dtype == np.int32
    np.testing.assert_array_equal(d.y_train, [0, 1, 2, 3, 4])
    assert d.class_names == tuple(f"class{i}" for i in range(10))  # From the loaded info.


def test_tfds_reachable_host_downloads_and_imagenette_resizes(tmp_path, monkeypatch,
                                                              no_tfds_download):
    tfds = no_tfds_download
    monkeypatch.setattr(tfds_source, "probe_download_host", lambda *a, **k: None)
    calls = []
    train = [np.zeros((200, 300, 3), np.uint8), np.full((170, 160, 3), 200, np.uint8)]
    monkeypatch.setattr(tfds, "load", _fake_tfds_load(calls, train, train[:1]))
    d = data.load("imagenette/320px", data_dir=str(tmp_path))
    assert calls[0]["download"] is True
    assert calls[0]["split"] == ["train", "validation"]  # ImageNette's test split.
    assert d.x_train.shape == (2, 160, 160, 3) and d.x_test.shape == (1, 160, 160, 3)
    assert d.x_train[1].min() == 200 and d.x_train[1].max() == 200
    assert d.num_classes == 10


# --------------------------------------------------------------------------
# Pipelines and augmentation.


def _tiny_data(n_train=10, n_test=5, size=6, seed=0):
    rng = np.random.default_rng(seed)
    return data.ImageData(
        name="tiny",
        x_train=rng.integers(1, 256, (n_train, size, size, 3), dtype=np.uint8),
        y_train=np.arange(n_train, dtype=np.int32),
        x_test=rng.integers(1, 256, (n_test, size, size, 3), dtype=np.uint8),
        y_test=np.arange(n_test, dtype=np.int32) % 3,
        class_names=tuple(str(i) for i in range(n_train)))


def test_image_data_validates():
    d = _tiny_data()
    with pytest.raises(ValueError, match="labels"):
        data.ImageData(name="bad", x_train=d.x_train, y_train=d.y_train[:3], x_test=d.x_test,
                       y_test=d.y_test, class_names=d.class_names)


def test_train_dataset_types_and_drop_remainder():
    d = _tiny_data()
    ds = data.train_dataset(d, 4, augment=False, seed=0)
    batches = list(ds)
    assert len(batches) == 2
    for x, y in batches:
        assert x.dtype == tf.float32 and y.dtype == tf.int32
        assert x.shape == (4, 6, 6, 3) and y.shape == (4,)
        assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    assert ds.element_spec[0].shape == (4, 6, 6, 3)
    # Unaugmented images are exactly their source images / 255.
    x, y = batches[0]
    np.testing.assert_allclose(x.numpy(), d.x_train[y.numpy()] / 255.0, rtol=1e-6)

    kept = list(data.train_dataset(d, 4, augment=False, seed=0, drop_remainder=False))
    assert [int(b[1].shape[0]) for b in kept] == [4, 4, 2]
    labels = np.concatenate([b[1].numpy() for b in kept])
    assert sorted(labels) == list(range(10))


def test_train_dataset_seeded_order():
    d = _tiny_data(n_train=64)

    def first_batch(seed):
        return next(iter(data.train_dataset(d, 16, augment=True, seed=seed)))

    x1, y1 = first_batch(1)
    x2, y2 = first_batch(1)
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    _, y3 = first_batch(2)
    assert not np.array_equal(y1.numpy(), y3.numpy())

    unshuffled = next(iter(data.train_dataset(d, 16, augment=False, seed=1, shuffle=False)))
    np.testing.assert_array_equal(unshuffled[1].numpy(), np.arange(16))

    # Epochs differ from each other, reproducibly.
    ds_a = data.train_dataset(d, 64, augment=True, seed=3)
    ds_b = data.train_dataset(d, 64, augment=True, seed=3)
    epochs_a = [next(iter(ds_a))[1].numpy() for _ in range(2)]
    epochs_b = [next(iter(ds_b))[1].numpy() for _ in range(2)]
    assert not np.array_equal(epochs_a[0], epochs_a[1])
    np.testing.assert_array_equal(epochs_a, epochs_b)


def test_train_dataset_repeat():
    d = _tiny_data()
    ds = data.train_dataset(d, 4, augment=True, seed=0, repeat=True)
    labels = np.concatenate([y.numpy() for _, y in ds.take(5)])
    assert len(labels) == 20
    assert sorted(labels[:10]) == list(range(10))  # The first epoch is a permutation.


def test_repeated_stream_is_a_function_of_the_seed_only():
    """Every iterator of a repeated training set yields the same stream (Keras under a
    tf.distribute strategy draws from a throwaway iterator first), and skip(n) resumes it."""
    d = _tiny_data(n_train=12)
    ds = data.train_dataset(d, 4, augment=True, seed=5, repeat=True)

    def stream(dataset, n):
        return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]

    first = stream(ds, 9)                       # 3 data epochs of 3 batches
    throwaway = iter(ds)
    next(throwaway)
    for (xa, ya), (xb, yb) in zip(first, stream(ds, 9)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, ya), (xb, yb) in zip(first[4:], stream(ds.skip(4), 5)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    epochs = [np.concatenate([y for _, y in first[3 * e:3 * e + 3]]) for e in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(12))        # each data epoch is a permutation
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    # Batch i's augmentation depends on i: the same images in two epochs get different crops.
    other = stream(data.train_dataset(d, 4, augment=True, seed=6, repeat=True), 3)
    assert not np.array_equal(np.concatenate([y for _, y in other]), epochs[0])


def _all_crops_and_flips(image, padding=4):
    h, w, _ = image.shape
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    out = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[dy:dy + h, dx:dx + w]
            out.extend([crop, crop[:, ::-1]])
    return out


def test_augmentation_is_padded_crop_and_flip():
    d = _tiny_data(n_train=32, size=10)
    candidates = {i: _all_crops_and_flips(d.x_train[i] / np.float32(255.0)) for i in range(32)}
    assert len(candidates[0]) == 162
    seen_shift = seen_flip = 0
    for x, y in data.train_dataset(d, 16, augment=True, seed=7):
        assert x.shape == (16, 10, 10, 3)
        assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
        for img, label in zip(x.numpy(), y.numpy()):
            matches = [k for k, c in enumerate(candidates[label]) if np.array_equal(img, c)]
            assert matches, f"augmented image {label} is not a padded crop/flip of its source"
            seen_flip += any(k % 2 for k in matches)
            seen_shift += not any(k // 2 == 40 for k in matches)  # 40 = (dy=4, dx=4): no shift.
    assert seen_flip > 0 and seen_shift > 0


def test_augment_image_and_batch_are_deterministic():
    img = tf.constant(np.random.default_rng(0).random((8, 8, 3)), tf.float32)
    a = data.augment_image(img, tf.constant([1, 2]))
    b = data.augment_image(img, tf.constant([1, 2]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (8, 8, 3)
    batch = tf.stack([img] * 8)
    out = data.augment_batch(batch, tf.constant([5, 6]))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    np.testing.assert_array_equal(out.numpy(), data.augment_batch(batch, [5, 6]).numpy())
    # With padding=0 only flips remain: each output is the image or its mirror.
    flips = data.augment_batch(batch, tf.constant([0, 1]), padding=0).numpy()
    for o in flips:
        assert np.array_equal(o, img.numpy()) or np.array_equal(o, img.numpy()[:, ::-1])


def test_test_dataset_keeps_order_and_partial_batch():
    d = _tiny_data()
    batches = list(data.test_dataset(d, 2))
    assert [int(b[1].shape[0]) for b in batches] == [2, 2, 1]
    x = np.concatenate([b[0].numpy() for b in batches])
    y = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_allclose(x, d.x_test / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, d.y_test)
    assert batches[0][0].dtype == tf.float32 and batches[0][1].dtype == tf.int32
    train_split = list(data.test_dataset(d, 4, split="train"))
    assert [int(b[1].shape[0]) for b in train_split] == [4, 4, 2]
    with pytest.raises(ValueError, match="split"):
        data.test_dataset(d, 4, split="validation")
    with pytest.raises(ValueError, match="batch_size"):
        data.test_dataset(d, 0)
