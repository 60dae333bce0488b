"""Tests for rat_tf.evaluation.corruptions (CIFAR-10-C's 12 corruptions, loaders, scoring).

The images are natural-image crops of the photos that ship with scikit-learn
(`helpers.natural_patches`), and scikit-learn's digits drawn in colour at 32x32 for a trained
model. Real CIFAR-10 images from the shared JPEG tarball (cifar10-jpeg.tar.gz in the shared data
directory: 2,000 training and 1,000 test images, read straight from the archive) add one more
test when present. Nothing here downloads anything.
"""

import io
import os
import tarfile

import keras
import numpy as np
from PIL import Image
import pytest

from rat_tf import data as data_lib
from rat_tf.data import tfds_source
from rat_tf.evaluation import corruptions as C
from rat_tf.evaluation.corruptions import filters, frost_textures, functions, generation

from helpers import colour_digits_32, natural_patches, shared_file

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
# Corruptions that draw random numbers (the others must ignore the seed).
RANDOM = ("glass_blur", "motion_blur", "snow", "frost", "fog", "elastic_transform")


@pytest.fixture(scope="module")
def cifar():
    """(x_train (2000,32,32,3) uint8, y_train, x_test (1000,...), y_test), class-interleaved."""
    tarball = shared_file("cifar10-jpeg.tar.gz")
    if tarball is None:
        pytest.skip("cifar10-jpeg.tar.gz not in the shared data directory")
    wanted = {}
    for split, per_class in (("train", 200), ("test", 100)):
        for label, cls in enumerate(CLASSES):
            for i in range(per_class):
                wanted[f"{split}/{cls}/{i:04d}.jpg"] = (split, i, label)
    found = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            if member.name in wanted:
                with Image.open(io.BytesIO(tar.extractfile(member).read())) as im:
                    found[wanted[member.name]] = np.asarray(im.convert("RGB"))
    assert len(found) == len(wanted)
    out = []
    for split in ("train", "test"):
        keys = sorted(k for k in found if k[0] == split)  # by index, then label: interleaved
        out += [np.stack([found[k] for k in keys]), np.array([k[2] for k in keys], np.int32)]
    return tuple(out)


@pytest.fixture(scope="module")
def images():
    """16 natural 32x32 RGB images (crops of scikit-learn's sample photos), uint8."""
    return natural_patches()[:16]


# --------------------------------------------------------------------------
# Names.


def test_names_and_tfds_configs():
    assert len(C.CORRUPTIONS) == 12 and set(C.CORRUPTIONS) == set(C.TFDS_NAMES)
    assert C.TFDS_NAMES["glass_blur"] == "frosted_glass_blur"
    assert C.TFDS_NAMES["elastic_transform"] == "elastic"
    assert C.tfds_config("glass_blur", 3) == "cifar10_corrupted/frosted_glass_blur_3"
    assert C.tfds_config("elastic", 5) == "cifar10_corrupted/elastic_5"
    assert C.tfds_config("fog", 1) == "cifar10_corrupted/fog_1"
    assert C.canonical_name("frosted_glass_blur") == "glass_blur"
    assert C.canonical_name("Elastic") == "elastic_transform"
    with pytest.raises(ValueError, match="unknown corruption"):
        C.canonical_name("gaussian_noise")  # a CIFAR-10-C corruption, but not one of the 12


def test_bad_arguments_raise(images):
    with pytest.raises(ValueError, match="severity"):
        C.corrupt(images, "fog", 0)
    with pytest.raises(ValueError, match="severity"):
        C.corrupt(images, "fog", True)
    with pytest.raises(ValueError, match="seed"):
        C.corrupt(images, "fog", 1, seed=-1)
    with pytest.raises(ValueError, match="RGB"):
        C.corrupt(images[..., :1], "fog", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        C.corrupt(images.astype(np.float32), "fog", 1)  # floats in [0, 255]
    with pytest.raises(ValueError, match="dtype"):
        C.corrupt(images.astype(np.int32), "fog", 1)


# --------------------------------------------------------------------------
# Each corruption.


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_corruption_keeps_shape_dtype_range_and_changes_image(images, name):
    x = images[:8]
    for severity in (1, 5):
        y = C.corrupt(x, name, severity, seed=0)
        assert y.shape == x.shape and y.dtype == np.uint8
        assert np.any(y != x), f"{name} severity {severity} left the images unchanged"
        changed = np.mean(np.any(y != x, axis=(1, 2, 3)))
        assert changed == 1.0, f"{name} severity {severity} left some images unchanged"

        xf = x.astype(np.float32) / 255
        yf = C.corrupt(xf, name, severity, seed=0)
        assert yf.shape == x.shape and yf.dtype == np.float32
        assert yf.min() >= 0 and yf.max() <= 1 and np.all(np.isfinite(yf))
        assert np.any(yf != xf)
        # The float path is the uint8 path without np.uint8's truncation (same random draws):
        # about 0.5 grey levels apart on average, 1.0 for glass blur, which also truncates
        # before its shuffle.
        assert np.mean(np.abs(yf * 255 - y)) < 1.5

    single = C.corrupt(x[0], name, 3, seed=0)
    assert single.shape == x[0].shape and single.dtype == np.uint8
    assert C.corrupt(x[:0], name, 3).shape == (0,) + x.shape[1:]


def _block_matched_distance(corrupted: np.ndarray, clean: np.ndarray, patch: int = 4,
                            reach: int = 3) -> float:
    """Mean absolute pixel difference after each 4x4 patch moves up to 3 px to its best match.

    Why this distance: for the photometric corruptions (brightness, contrast, fog, frost, snow,
    JPEG, ...) and the blurs the best match stays in place, so it is the plain mean absolute
    difference (brightness and contrast are fine with it: the shift or scaling grows with the
    severity and clipping at 0/255 only bounds it). Plain MAD fails for elastic_transform:
    CIFAR-10-C's severity 1 is a pure random affine (control points jittered by up to 2.56 px),
    which moves everything a little and scores a large MAD though the image is intact, while
    severity 5 is a strong local elastic warp (alpha 3.2 px, sigma 0.96 px) with a small affine.
    Discounting locally rigid motion (block matching, as in video coding) measures the local
    distortion that makes the higher severity harder, and leaves the other corruptions' ranking
    as MAD gives it.
    """
    a = corrupted.astype(np.float32)
    b = np.pad(clean.astype(np.float32), ((0, 0), (reach, reach), (reach, reach), (0, 0)),
               mode="edge")
    n, h, w, c = a.shape
    best = np.full((n, h // patch, w // patch), np.inf, np.float32)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            error = np.abs(a - b[:, dy:dy + h, dx:dx + w])
            error = error.reshape(n, h // patch, patch, w // patch, patch, c).mean(axis=(2, 4, 5))
            best = np.minimum(best, error)
    return float(best.mean())


@pytest.mark.parametrize("name", C.CORRUPTIONS)
def test_severity_5_changes_images_more_than_severity_1(name):
    clean = natural_patches()[:64]
    d1 = _block_matched_distance(C.corrupt(clean, name, 1, seed=1), clean)
    d5 = _block_matched_distance(C.corrupt(clean, name, 5, seed=1), clean)
    assert d5 > d1, f"{name}: distance {d5:.2f} at severity 5 vs {d1:.2f} at severity 1"


def test_glass_blur_equals_the_reference_loop(images):
    """The one-gather-per-pass glass blur equals make_cifar_c.py's double loop, whose
    `x[h, w], x[h', w'] = x[h', w'], x[h, w]` swaps numpy views (so it copies the neighbour)."""
    x = images[:3].astype(np.float64) / 255
    for severity in (1, 5):
        sigma, delta, passes = functions.GLASS[severity - 1]
        fast = functions.glass_blur(x, severity, np.random.default_rng(7), True)

        rng = np.random.default_rng(7)
        n, h, w, _ = x.shape
        side = w - 2 * delta
        blurred = np.floor(filters.gaussian_filter(x, sigma, "nearest", 4.0) * 255 + 1e-6)
        slow = []
        images_u8 = blurred.astype(np.uint8)
        shifts = [rng.integers(-delta, delta, size=(n, (h - 2 * delta) * side, 2))
                  for _ in range(passes)]
        for i in range(n):
            img = images_u8[i].copy()
            for shift in shifts:
                for r in range(h - delta, delta, -1):
                    for c in range(w - delta, delta, -1):
                        dx, dy = shift[i, (r - delta - 1) * side + (c - delta - 1)]
                        r2, c2 = r + dy, c + dx
                        img[r, c], img[r2, c2] = img[r2, c2], img[r, c]  # the reference's line
            slow.append(img)
        slow = np.clip(filters.gaussian_filter(np.stack(slow) / 255.0, sigma, "nearest", 4.0), 0, 1)
        np.testing.assert_allclose(fast, slow * 255, atol=1e-9)


def test_motion_blur_follows_imagemagick_line_kernel():
    """A dot smeared by angle 0 lands on the dot and the pixels to its left (ImageMagick reads
    tap i at x + i), weighted exp(-i^2 / (2 sigma^2)) over 2 * ceil(radius) + 1 taps."""
    dot = np.zeros((1, 9, 21, 1))
    dot[0, 4, 15] = 1.0
    out = filters.motion_blur(dot, 6, 2.0, np.array([0.0]))[0, ..., 0]
    taps = np.exp(-np.arange(13) ** 2 / 8.0)
    taps /= taps.sum()
    expected = np.zeros((9, 21))
    expected[4, 15 - np.arange(13)] = taps
    np.testing.assert_allclose(out, expected, atol=1e-12)
    down = filters.motion_blur(dot, 6, 2.0, np.array([90.0]))[0, ..., 0]  # rows grow downwards
    assert down[4, 15] == pytest.approx(taps[0]) and down[3, 15] == pytest.approx(taps[1])


def test_filters_match_scipy():
    """The numpy re-implementations of scipy.ndimage's zoom, gaussian_filter and
    map_coordinates (used by make_cifar_c.py) give scipy's numbers, at 32 px and 64 px."""
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    for size in (32, 64):  # dense-operator path and separable path
        img = rng.random((size, size, 3))
        for factor in (1.06, 1.25, 1.75, 2.25):
            crop = int(np.ceil(size / factor))
            top = (size - crop) // 2
            ref = ndimage.zoom(img[top:top + crop, top:top + crop], (factor, factor, 1), order=1)
            trim = (ref.shape[0] - size) // 2
            np.testing.assert_allclose(filters.clipped_zoom(img[None], factor)[0],
                                       ref[trim:trim + size, trim:trim + size], atol=1e-12)
        for sigma, mode, truncate in ((0.4, "nearest", 4.0), (6.4, "reflect", 3.0),
                                      (0.96, "reflect", 3.0), (40.0, "reflect", 3.0)):
            ref = np.stack([ndimage.gaussian_filter(img[..., c], sigma, mode=mode,
                                                    truncate=truncate) for c in range(3)], -1)
            np.testing.assert_allclose(filters.gaussian_filter(img[None], sigma, mode, truncate)[0],
                                       ref, atol=1e-12)
    img = rng.random((1, 32, 32, 3))
    rows = np.arange(32)[None, :, None] + rng.normal(0, 2, (1, 32, 32))
    cols = np.arange(32)[None, None, :] + rng.normal(0, 2, (1, 32, 32))
    r0, c0 = np.floor(rows), np.floor(cols)
    mine = filters.bilinear(img, r0.astype(int), c0.astype(int), rows - r0, cols - c0, "reflect")[0]
    rr, cc, ch = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    coords = [(rows[0][..., None] + 0 * ch).ravel(), (cols[0][..., None] + 0 * ch).ravel(),
              ch.ravel()]
    ref = ndimage.map_coordinates(img[0], coords, order=1, mode="reflect").reshape(32, 32, 3)
    np.testing.assert_allclose(mine, ref, atol=1e-12)


def test_frost_falls_back_to_a_procedural_texture(images, monkeypatch):
    monkeypatch.setattr(frost_textures, "imagecorruptions_frost_dir", lambda: None)
    frost_textures.textures.cache_clear()
    try:
        assert C.frost_texture_source() == "procedural"
        y = C.corrupt(images[:4], "frost", 5, seed=0)
        assert y.shape == images[:4].shape and np.any(y != images[:4])
    finally:
        frost_textures.textures.cache_clear()


# --------------------------------------------------------------------------
# Determinism and the cache.


def test_corrupt_is_deterministic_by_seed(images):
    x = images[:4]
    for name in C.CORRUPTIONS:
        a = C.corrupt(x, name, 3, seed=5)
        np.testing.assert_array_equal(a, C.corrupt(x, name, 3, seed=5))
        other = C.corrupt(x, name, 3, seed=6)
        if name in RANDOM:
            assert np.any(a != other), f"{name} ignores its seed"
        else:
            np.testing.assert_array_equal(a, other)


def test_generate_is_deterministic_and_caches(images, tmp_path, monkeypatch):
    x = images[:6]
    names, severities = ("fog", "glass"), (1, 5)
    plain = C.generate(x, names, severities, seed=3)
    assert list(plain) == [("fog", 1), ("fog", 5), ("glass_blur", 1), ("glass_blur", 5)]
    again = C.generate(x, names, severities, seed=3, num_workers=1)
    for key in plain:
        np.testing.assert_array_equal(plain[key], again[key])
    assert np.any(plain[("fog", 1)] != C.generate(x, ["fog"], [1], seed=4)[("fog", 1)])
    # Sets are independent draws: fog at severities 1 and 5 do not share their fractal.
    assert plain[("fog", 1)].shape == x.shape

    cache = tmp_path / "cache"
    first = C.generate(x, names, severities, seed=3, cache_dir=str(cache))
    files = sorted(os.listdir(cache))
    assert len(files) == 4 and all(f.endswith(".npy") for f in files), files  # no temp files
    for key in plain:
        np.testing.assert_array_equal(first[key], plain[key])

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached set")

    monkeypatch.setattr(generation, "corrupt", fail)
    second = C.generate(x, names, severities, seed=3, cache_dir=str(cache))
    for key in plain:
        np.testing.assert_array_equal(second[key], plain[key])
    subset = C.generate(x, ["glass_blur"], [5], seed=3, cache_dir=str(cache))
    np.testing.assert_array_equal(subset[("glass_blur", 5)], plain[("glass_blur", 5)])
    monkeypatch.undo()

    # Another seed or other images are other keys.
    C.generate(x, ["fog"], [1], seed=4, cache_dir=str(cache))
    C.generate(x[:5], ["fog"], [1], seed=3, cache_dir=str(cache))
    assert len(os.listdir(cache)) == 6


# --------------------------------------------------------------------------
# Published data.


def _write_published(root, num=4, names=C.CORRUPTIONS, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    arrays = {}
    for name in names:
        arrays[name] = rng.integers(0, 256, size=(5 * num, 32, 32, 3), dtype=np.uint8)
        np.save(os.path.join(root, f"{name}.npy"), arrays[name])  # glass_blur.npy, ...
    labels = rng.integers(0, 10, size=num).astype(np.uint8)
    np.save(os.path.join(root, "labels.npy"), np.tile(labels, 5))  # published: 5 x N labels
    return arrays, labels


def test_load_npy_dir_reads_the_published_layout(tmp_path):
    root = str(tmp_path / "CIFAR-10-C")
    arrays, labels = _write_published(root)
    assert os.path.isfile(os.path.join(root, "glass_blur.npy"))
    assert os.path.isfile(os.path.join(root, "elastic_transform.npy"))
    sets, y = C.load_npy_dir(root)
    assert len(sets) == 60 and y.dtype == np.int32
    np.testing.assert_array_equal(y, labels)
    for (name, severity), images in sets.items():
        assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
        np.testing.assert_array_equal(images, arrays[name][(severity - 1) * 4:severity * 4])

    # TFDS-style file names are accepted too, and N labels instead of 5 x N.
    os.replace(os.path.join(root, "glass_blur.npy"), os.path.join(root, "frosted_glass_blur.npy"))
    np.save(os.path.join(root, "labels.npy"), labels)
    sets, y = C.load_npy_dir(root, names=["glass_blur"], severities=[2])
    np.testing.assert_array_equal(sets[("glass_blur", 2)], arrays["glass_blur"][4:8])


def test_load_npy_dir_errors(tmp_path):
    root = str(tmp_path / "c")
    _write_published(root, names=("fog", "snow"))
    with pytest.raises(ValueError, match="no contrast.npy"):
        C.load_npy_dir(root, names=["fog", "contrast"])
    with pytest.raises(ValueError, match="not found"):
        C.load_npy_dir(str(tmp_path / "missing"))
    np.save(os.path.join(root, "snow.npy"), np.zeros((7, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"snow.npy: expected \(5N"):
        C.load_npy_dir(root, names=["snow"])
    np.save(os.path.join(root, "snow.npy"), np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="like the others"):
        C.load_npy_dir(root, names=["fog", "snow"])
    with pytest.raises(ValueError, match="labels"):
        C.load_npy_dir(root, names=["snow"])  # 20 labels for N = 2
    os.remove(os.path.join(root, "labels.npy"))
    with pytest.raises(ValueError, match="no labels.npy"):
        C.load_npy_dir(root, names=["fog"])


def test_load_tfds_names_the_config_and_fails_fast_offline(tmp_path, monkeypatch):
    # Never touch the network: the probe reports the host unreachable, as it does here.
    monkeypatch.setattr(tfds_source, "probe_download_host", lambda host, **kw: f"{host} offline")
    import tensorflow_datasets as tfds  # noqa: PLC0415

    def no_download(*args, **kwargs):  # the retrying download is what "fails fast" avoids
        raise AssertionError("load_tfds started a download although the host is unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(data_lib.DatasetUnavailableError,
                       match="cifar10_corrupted/frosted_glass_blur_2.*zenodo.org offline"):
        C.load_tfds("glass_blur", 2, data_dir=str(tmp_path))


# --------------------------------------------------------------------------
# Scoring.


def test_corruption_accuracy_and_markdown_table():
    labels = np.array([0, 1, 2, 3], np.int32)

    def images_predicting(predictions):  # the model below reads its answer off pixel (0, 0)
        x = np.zeros((4, 8, 8, 3), np.uint8)
        x[:, 0, 0, 0] = predictions
        return x

    def predict_fn(batch):
        assert batch.dtype == np.float32 and batch.max() <= 1
        return np.eye(4)[np.rint(batch[:, 0, 0, 0] * 255).astype(int)] * 3.0  # logits

    sets = {("fog", 1): images_predicting([0, 1, 2, 3]),  # 4/4
            ("fog", 2): images_predicting([0, 1, 0, 0]),  # 2/4
            ("frosted_glass_blur", 1): images_predicting([1, 1, 1, 1])}  # 1/4
    result = C.corruption_accuracy(predict_fn, sets, labels, batch_size=3)
    assert result["accuracy"] == {"glass_blur": {1: 0.25}, "fog": {1: 1.0, 2: 0.5}}
    assert list(result["accuracy"]) == ["glass_blur", "fog"]  # CORRUPTIONS order
    assert result["mean"] == {"glass_blur": 0.25, "fog": 0.75}
    assert result["mca"] == pytest.approx(0.5)
    assert result["num_examples"] == 4
    # Predicted labels instead of logits work too.
    labels_fn = lambda b: np.rint(b[:, 0, 0, 0] * 255).astype(int)  # noqa: E731
    assert C.corruption_accuracy(labels_fn, sets, labels)["mca"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="labels"):
        C.corruption_accuracy(predict_fn, sets, labels[:3])

    other = {"mean": {"fog": 0.5}, "mca": 0.5}
    table = C.markdown_table({"RAT": result, "SAT": other})
    lines = table.strip().split("\n")
    assert lines[0] == "| model | Glass | Fog | mCA |"
    assert lines[1] == "|---|---:|---:|---:|"
    assert lines[2] == "| RAT | 25.00 | 75.00 | 50.00 |"
    assert lines[3] == "| SAT | – | 50.00 | 50.00 |"
    assert C.markdown_table([("RAT", result)]) == "\n".join(lines[:3]) + "\n"


def _check_accuracy_drops_with_severity(x_train, y_train, x_test, y_test, epochs):
    """Trains a small CNN for a few seconds; its accuracy at severity 5 is below severity 1 for
    at least 9 of the 12 corruptions, and mCA is below the clean accuracy."""
    keras.utils.set_random_seed(0)
    init = lambda i: keras.initializers.GlorotUniform(seed=i)  # noqa: E731
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init(0)),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(1)),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu", kernel_initializer=init(2)),
        keras.layers.Dense(10, kernel_initializer=init(3)),
    ])
    model.compile(optimizer=keras.optimizers.Adam(2e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data_lib.to_float(x_train), y_train, batch_size=64, epochs=epochs, verbose=0)

    # Typically 10 or 11 of 12 drop; elastic_transform need not (its severity 1 is a large
    # random affine, severity 5 a local warp; a weak model minds both alike), and JPEG and
    # pixelate drop by only a few tenths of a percent, hence "at least 9".
    predict = model.predict_on_batch  # compiled once, faster than eager calls
    clean = float(np.mean(np.argmax(predict(data_lib.to_float(x_test)), -1) == y_test))
    assert clean > 0.3, f"the model did not learn (clean accuracy {clean:.3f})"
    sets = {(name, s): C.corrupt(x_test, name, s, seed=0)
            for name in C.CORRUPTIONS for s in (1, 5)}
    result = C.corruption_accuracy(predict, sets, y_test, batch_size=1000)
    acc = result["accuracy"]
    lower = [n for n in C.CORRUPTIONS if acc[n][5] < acc[n][1]]
    assert len(lower) >= 9, {n: (acc[n][1], acc[n][5]) for n in C.CORRUPTIONS}
    assert result["mca"] < clean


def test_trained_model_accuracy_drops_with_severity():
    """On scikit-learn's digits drawn in colour at 32x32 (1,437 train, 360 test; about 86%
    clean after 6 epochs)."""
    _check_accuracy_drops_with_severity(*colour_digits_32(), epochs=6)


def test_trained_model_accuracy_drops_with_severity_on_real_cifar10(cifar):
    """On 2,000 real CIFAR-10 training images (about 46% clean after 12 epochs), when the
    shared tarball is present."""
    _check_accuracy_drops_with_severity(*cifar, epochs=12)
