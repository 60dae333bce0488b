"""Time to generate CIFAR-10-C's 12 corruptions x 5 severities for N CIFAR-10 test images.

Reads the first N test images (class-interleaved, as `rat_tf.data`'s folder loader orders them)
straight from the shared JPEG tarball (../shared/data/cifar10-jpeg.tar.gz; see its README), then

1. times `corruptions.corrupt` for every (corruption, severity) one after another (one thread;
   numpy's BLAS may still use both cores in the dense filters) and prints a per-corruption
   table, and
2. times `corruptions.generate(..., num_workers=W)`, the call evaluation uses (no cache), which
   computes the 60 sets in W threads; the last line is its wall time.

Usage: python -m benchmarks.corruption_speed [--num_images 10000] [--workers 2] [--skip_serial]
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks import runner  # noqa: E402
from rat_tf.evaluation import corruptions  # noqa: E402

TARBALL = runner.CIFAR_TAR
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def load_test_images(path: str, num_images: int) -> np.ndarray:
    """The first `num_images` test images, k-th image of every class in turn, as uint8 NHWC."""
    per_class = -(-num_images // len(CLASSES))
    if per_class > 1000:
        raise ValueError(f"CIFAR-10 has 10,000 test images, asked for {num_images}")
    wanted = {f"test/{c}/{i:04d}.jpg": (i, k) for k, c in enumerate(CLASSES)
              for i in range(per_class)}
    images = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.name in wanted:
                with Image.open(io.BytesIO(tar.extractfile(member).read())) as im:
                    images[wanted[member.name]] = np.asarray(im.convert("RGB"))
    missing = len(wanted) - len(images)
    if missing:
        raise ValueError(f"{path}: {missing} test images not found")
    return np.stack([images[key] for key in sorted(images)])[:num_images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2, help="threads for generate()")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tarball", default=TARBALL)
    parser.add_argument("--skip_serial", action="store_true",
                        help="only time generate() (no per-corruption table)")
    args = parser.parse_args()

    start = time.perf_counter()
    images = load_test_images(args.tarball, args.num_images)
    print(f"loaded {len(images)} CIFAR-10 test images {images.shape[1:]} in "
          f"{time.perf_counter() - start:.1f} s; cores: {os.cpu_count()}; frost textures: "
          f"{corruptions.frost_texture_source()}")
    corruptions.corrupt(images[:8], "zoom_blur", 1)  # warm-up (imports, first BLAS call)

    if not args.skip_serial:
        print(f"\none thread, seconds for {len(images)} images")
        header = "| corruption | " + " | ".join(f"s{s}" for s in corruptions.SEVERITIES) \
            + " | total | images/s |"
        print(header)
        print("|---|" + "---:|" * (len(corruptions.SEVERITIES) + 2))
        serial_total = 0.0
        for name in corruptions.CORRUPTIONS:
            times = []
            for severity in corruptions.SEVERITIES:
                t = time.perf_counter()
                corruptions.corrupt(images, name, severity, seed=args.seed)
                times.append(time.perf_counter() - t)
            total = sum(times)
            serial_total += total
            rate = len(images) * len(times) / total
            print(f"| {name} | " + " | ".join(f"{t:.2f}" for t in times)
                  + f" | {total:.2f} | {rate:,.0f} |")
        print(f"serial_total_seconds={serial_total:.1f}")

    t = time.perf_counter()
    sets = corruptions.generate(images, seed=args.seed, num_workers=args.workers)
    elapsed = time.perf_counter() - t
    print(f"\ngenerate(): {len(sets)} sets x {len(images)} images with {args.workers} threads")
    print(f"total_seconds={elapsed:.1f}")


if __name__ == "__main__":
    main()
