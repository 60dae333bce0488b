import numpy as np
import pytest
import tensorflow as tf

from rat_tf import region


def _triple(n=6, shape=(4, 4, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, *shape)).astype("float32")
    x_end = np.clip(x + rng.uniform(-0.03, 0.03, x.shape), 0, 1).astype("float32")
    x_first = np.clip(x + rng.uniform(-0.03, 0.03, x.shape), 0, 1).astype("float32")
    return x, x_first, x_end


def test_scale_grid():
    grid = region.scale_grid(2.0, 0.1)
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 2.0
    assert grid[7] == 0.7
    assert region.scale_grid(3.0, 0.5) == (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    with pytest.raises(ValueError, match="multiple"):
        region.scale_grid(1.0, 0.3)
    with pytest.raises(ValueError, match="scale_step"):
        region.scale_grid(1.0, 0.0)


def test_scale_zero_returns_x_exactly():
    x, xf, xe = _triple()
    cfg = region.RegionConfig(num_samples=3)
    draw = region.RegionDraw(tf.random.uniform((3, 6)), tf.zeros((3, 6)))
    out = region.sample(x, xf, xe, draw, cfg).numpy()
    np.testing.assert_array_equal(out, np.concatenate([x] * 3))


def test_samples_lie_on_the_scaled_segment_and_order():
    x, xf, xe = _triple()
    cfg = region.RegionConfig(num_samples=2, scales=region.scale_grid(2.0, 0.1), max_scale=2.0)
    draw = region.draw(cfg, 6, tf.constant([1, 2]))
    lam, s = draw.lam.numpy(), draw.scale.numpy()
    assert lam.shape == s.shape == (2, 6)
    assert np.all((lam >= 0) & (lam < 1))
    assert np.all(np.isin(s, np.asarray(cfg.scales, np.float32)))
    out = region.sample(x, xf, xe, draw, cfg).numpy()
    assert out.shape == (12, 4, 4, 3)
    for j in range(2):
        for i in range(6):
            x_bar = lam[j, i] * xf[i] + (1 - lam[j, i]) * xe[i]
            expected = np.clip(x[i] + s[j, i] * (x_bar - x[i]), 0, 1)
            np.testing.assert_allclose(out[j * 6 + i], expected, atol=1e-6)


def test_no_eps_ball_projection_and_unit_clipping():
    x, xf, xe = _triple()
    cfg = region.RegionConfig(num_samples=1)
    draw = region.RegionDraw(tf.fill((1, 6), 0.5), tf.fill((1, 6), 2.0))
    out = region.sample(x, xf, xe, draw, cfg).numpy()
    x_bar = 0.5 * xf + 0.5 * xe
    # Twice as far from x as x_bar, where [0, 1] allows: beyond the 0.03-ball.
    np.testing.assert_allclose(out, np.clip(x + 2 * (x_bar - x), 0, 1), atol=1e-6)
    assert np.abs(out - x).max() > 0.03 + 1e-3
    big = region.RegionDraw(tf.fill((1, 6), 0.5), tf.fill((1, 6), 60.0))
    far = region.sample(x, xf, xe, big, region.RegionConfig(num_samples=1, scales=None, max_scale=60.0)).numpy()
    assert far.min() == 0.0 and far.max() == 1.0


def test_collapsed_segment_at_scale_one_is_the_end_point_exactly():
    x, xf, xe = _triple()
    cfg = region.RegionConfig(num_samples=1, scales=(1.0,), max_scale=1.0, use_first_point=False)
    draw = region.draw(cfg, 6, tf.constant([3, 4]))
    np.testing.assert_array_equal(region.sample(x, xf, xe, draw, cfg).numpy(), xe)


def test_vertex_clipping_is_avmixup():
    x, _, xe = _triple()
    xe = np.clip(x + np.sign(xe - x) * 0.3, 0, 1).astype("float32")  # a vertex that clips often
    gamma = 2.0
    cfg = region.RegionConfig(num_samples=1, scales=None, max_scale=gamma, use_first_point=False, clip="vertex")
    draw = region.draw(cfg, 6, tf.constant([5, 6]))
    s = draw.scale.numpy()[0]
    assert np.all((s >= 0) & (s < gamma))
    out = region.sample(x, xe, xe, draw, cfg).numpy()
    w = (1 - s / gamma)[:, None, None, None]
    vertex = np.clip(x + gamma * (xe - x), 0, 1)
    np.testing.assert_allclose(out, w * x + (1 - w) * vertex, atol=1e-6)


def test_continuous_scale_draw_and_config_validation():
    cfg = region.RegionConfig(num_samples=4, scales=None, max_scale=3.0)
    s = region.draw(cfg, 50, tf.constant([0, 0])).scale.numpy()
    assert s.min() >= 0 and s.max() < 3.0 and s.std() > 0.5
    with pytest.raises(ValueError, match="num_samples"):
        region.RegionConfig(num_samples=0)
    with pytest.raises(ValueError, match="scales"):
        region.RegionConfig(scales=(0.0, 3.0), max_scale=2.0)
    with pytest.raises(ValueError, match="clip"):
        region.RegionConfig(clip="ball")
