"""Procedural SEM-like fracture-surface textures for `fracdata synth` (numpy only, vectorised).

Every texture is drawn in a "growth frame": `u` points along the crack-growth direction and
`v` across it, rotated by `angle` (radians) from the image x axis. Direction-bearing cues
follow that frame: striations are arcs convex towards +u, river lines merge towards +u,
secondary cracks run along v. Isotropic cues (dimples, pores, grains) ignore it.
Intensities are floats around 0..1; `finish` adds the microscope (contrast, blur, noise)
and quantises to 8-bit. Timing: one 128x128 image costs 2-9 ms on one core
(benchmarks/perf/synth_throughput.py).
"""

from __future__ import annotations

import numpy as np

OVERLAY = ("gas_pore", "secondary_crack")  # drawn on top of a matrix texture in two-feature images


def _frame(h, w, angle):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x -= (w - 1) / 2
    y -= (h - 1) / 2
    c, s = np.cos(angle), np.sin(angle)
    return x, y, x * c + y * s, -x * s + y * c


def blur(img, sigma):
    """Gaussian blur through the FFT, reflect-padded so edges do not wrap around."""
    if sigma <= 0.05:
        return img
    pad = int(3 * sigma) + 1
    p = np.pad(img, pad, mode="reflect")
    fy = np.fft.fftfreq(p.shape[0])[:, None]
    fx = np.fft.rfftfreq(p.shape[1])[None, :]
    # transfer function of a Gaussian of std sigma px: exp(-2 pi^2 sigma^2 f^2)
    out = np.fft.irfft2(np.fft.rfft2(p) * np.exp(-2 * np.pi**2 * sigma**2 * (fx**2 + fy**2)), s=p.shape)
    return out[pad:-pad, pad:-pad]


def noise(rng, h, w, beta, fmin=0.0):
    """Zero-mean, unit-std fractal noise with power spectrum ~ 1/f^beta (beta 2-4: rough to smooth)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    amp = np.where(f > max(fmin, 1.0 / max(h, w)), f, np.inf) ** (-beta / 2)
    spec = amp * (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape))
    out = np.fft.irfft2(spec, s=(h, w))
    return (out - out.mean()) / (out.std() + 1e-12)


def _voronoi(x, y, seeds):
    """Nearest and second-nearest seed distances (F1, F2) and the nearest seed's index (few seeds)."""
    d = np.sqrt((x[..., None] - seeds[:, 0]) ** 2 + (y[..., None] - seeds[:, 1]) ** 2)
    idx = d.argmin(-1)
    f1 = np.take_along_axis(d, idx[..., None], -1)[..., 0]
    np.put_along_axis(d, idx[..., None], np.inf, -1)
    return f1, d.min(-1), idx


def _cells(rng, x, y, s, jitter, size_sigma=0.0):
    """Voronoi cells of a jittered grid (spacing s px), searched in each pixel's 5x5 grid block.

    Nearest seeds lie in the neighbouring grid cells, so 25 candidates per pixel replace
    hundreds (128x128 px at s=7 has ~450 seeds): ~18x less work. `size_sigma` weights
    distances per seed (d / size) so cells come in mixed sizes with rounded boundaries.
    Returns F1, F2 (weighted), the nearest seed's flat index, seed x, seed y, seed size.
    """
    h, w = x.shape
    m = int(max(h, w) / s) + 6  # 2 cells of margin on each side + rounding
    o = -max(h, w) / 2 - 2 * s
    jit = rng.uniform(-jitter, jitter, (2, m, m)) * s
    sx = (o + (np.arange(m)[None, :] + 0.5) * s + jit[0]).ravel()
    sy = (o + (np.arange(m)[:, None] + 0.5) * s + jit[1]).ravel()
    size = np.exp(rng.normal(0, size_sigma, m * m)) if size_sigma else np.ones(m * m)
    base = np.floor((y - o) / s).astype(np.intp) * m + np.floor((x - o) / s).astype(np.intp)
    f1, f2, idx = np.full(x.shape, np.inf), np.full(x.shape, np.inf), base
    for di in range(-2, 3):  # running F1/F2 over the 25 candidates: 2-D arrays only
        for dj in range(-2, 3):
            c = base + (di * m + dj)
            d = np.hypot(x - sx[c], y - sy[c]) / size[c]
            closer = d < f1
            f2 = np.where(closer, f1, np.minimum(f2, d))
            idx = np.where(closer, c, idx)
            f1 = np.where(closer, d, f1)
    return f1, f2, idx, sx, sy, size


def _shade(height, light, k):
    """SEM-like topographic contrast: slopes facing the detector (light) are brighter."""
    gy, gx = np.gradient(height)
    return k * (gx * np.cos(light) + gy * np.sin(light))


def dimples(rng, h, w, angle, light):
    """Equiaxed dimples: round cups of mixed sizes, dark bottoms, bright rims, some with a particle."""
    x, y, _, _ = _frame(h, w, angle)
    s = rng.uniform(7, 16)
    f1, f2, idx, sx, _, size = _cells(rng, x, y, s, 0.45, rng.uniform(0.1, 0.35))  # mixed cup sizes
    t = np.clip(2 * f1 / (f1 + f2 + 1e-9), 0, 1)  # 0 at the cup bottom, 1 on the rim
    img = 0.15 + 0.4 * t**3 + _shade(-(1 - t**2) * s * rng.uniform(0.5, 1.0), light, 0.12)
    img += rng.uniform(0.15, 0.35) * np.exp(-(((f2 - f1) * s / rng.uniform(0.6, 1.2)) ** 2))  # bright rim
    # a particle (inclusion) sits in some cups: a small bright blob at the seed
    has = rng.random(len(sx)) < rng.uniform(0.0, 0.35)
    r = rng.uniform(0.1, 0.2) * s
    pd = f1 * size[idx]
    img = np.where(has[idx] & (pd < r), 0.7 + 0.2 * (1 - pd / r), img)
    return img + 0.02 * noise(rng, h, w, 2.0)


def grains(rng, h, w, angle, light):
    """Intergranular facets: polyhedral grains, each a tilted plane lit from one side."""
    x, y, _, _ = _frame(h, w, angle)
    s = rng.uniform(18, 42)
    f1, f2, idx, sx, sy, _ = _cells(rng, x, y, s, 0.45)
    n = len(sx)
    tilt, az = rng.uniform(0.1, 0.9, n), rng.uniform(0, 2 * np.pi, n)
    lam = 0.5 + 0.45 * np.sin(tilt) * np.cos(az - light)  # Lambert term of each facet's normal
    grad = 0.12 * ((x - sx[idx]) * np.cos(az[idx]) + (y - sy[idx]) * np.sin(az[idx])) / s
    img = 0.08 + 0.75 * lam[idx] + grad
    edge = np.exp(-(((f2 - f1) / rng.uniform(0.6, 1.2)) ** 2))
    img = img * (1 - 0.5 * edge) + 0.45 * edge * (rng.random() < 0.6)  # bright or dark triple-junction edges
    return img + 0.025 * noise(rng, h, w, 1.5)


def _rivers(rng, u, v):
    """Branching river lines over one facet's pixels (1-D u, v): tributaries at v0 merge into
    a trunk at vt downstream (+u), so the pattern points along the crack-growth direction."""
    out = np.zeros_like(u)
    wid = rng.uniform(0.5, 0.9)
    lo, hi = u.min(), u.max()
    for vt in np.arange(v.min() - 12, v.max() + 12, rng.uniform(10, 22)) + rng.uniform(0, 10):
        wav = rng.uniform(0.5, 2.5) * np.sin(u / rng.uniform(8, 20) + rng.uniform(0, 6.3))
        for _ in range(rng.integers(1, 5)):
            v0 = vt + rng.uniform(-12, 12)
            um, ln = lo + rng.uniform(0.1, 0.9) * (hi - lo), rng.uniform(10, 35)
            sm = np.clip((um - u) / ln, 0, 1)  # 1 upstream (separate), 0 past the merge point
            line = vt + wav + (v0 - vt) * sm * sm * (3 - 2 * sm)
            out = np.maximum(out, np.exp(-(((v - line) / wid) ** 2)))
    return out


def cleavage(rng, h, w, angle, light):
    """A few large flat facets with river patterns; facet edges are bright tear ridges."""
    x, y, _, _ = _frame(h, w, angle)
    k = int(rng.integers(2, 6))
    seeds = rng.uniform(-0.6, 0.6, (k, 2)) * (w, h)
    f1, f2, idx = _voronoi(x, y, seeds)
    tone = rng.uniform(0.25, 0.65, k)
    gdir = rng.uniform(0, 2 * np.pi, k)
    img = tone[idx] + 0.1 * (x * np.cos(gdir[idx]) + y * np.sin(gdir[idx])) / max(h, w)
    for i in range(k):
        m = idx == i
        if not m.any():
            continue
        a = angle + rng.normal(0, 0.15)  # rivers in every facet run with the growth direction
        xm, ym = x[m], y[m]
        r = _rivers(rng, xm * np.cos(a) + ym * np.sin(a), -xm * np.sin(a) + ym * np.cos(a))
        img[m] += rng.uniform(0.15, 0.35) * r
    img += 0.45 * np.exp(-(((f2 - f1) / 0.8) ** 2))
    return img + 0.03 * noise(rng, h, w, 1.0)


def striations(rng, h, w, angle, light):
    """Fine, evenly spaced arcs (one per load cycle) convex towards +u, wavy and patchy."""
    _, _, u, v = _frame(h, w, angle)
    p = rng.uniform(2.8, 6.5)  # spacing in px; >= 2.8 keeps them above the Nyquist limit
    rad = rng.uniform(1.3, 5.0) * max(h, w)  # arc radius: gently curved fronts
    r = np.sqrt((u + rad) ** 2 + (v - rng.uniform(-0.5, 0.5) * max(h, w)) ** 2)
    phase = 2 * np.pi * r / p + rng.uniform(0.5, 2.0) * noise(rng, h, w, 3.5)
    prof = (0.5 + 0.5 * np.cos(phase)) ** rng.uniform(1, 3)
    base = 0.4 + 0.06 * noise(rng, h, w, 3.0)
    amp = rng.uniform(0.15, 0.4) * (0.7 + 0.3 * np.clip(noise(rng, h, w, 3.5), -1, 1))
    img = base + amp * prof
    if rng.random() < 0.5:  # a tear ridge running along u separates two striation patches
        off = rng.uniform(-0.3, 0.3) * max(h, w)
        img += 0.35 * np.exp(-(((v - off - 3 * np.sin(u / 15)) / 1.0) ** 2))
    return img


def fish_eye(rng, h, w, angle, light):
    """A bright round zone around a subsurface origin (an inclusion) in a rougher fatigue surface."""
    x, y, _, _ = _frame(h, w, angle)
    cx, cy = rng.uniform(-0.15, 0.15, 2) * (w, h)
    rad = rng.uniform(0.26, 0.42) * min(h, w)
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    th = np.arctan2(y - cy, x - cx)
    rough = noise(rng, h, w, 2.0)
    radial = np.cos(th * rng.integers(20, 50) + 2 * noise(rng, h, w, 3.0))  # faint radial marks
    inside = 1 / (1 + np.exp((d - rad) / rng.uniform(1.0, 2.5)))
    img = 0.33 + 0.07 * rough + 0.03 * radial
    img += inside * (rng.uniform(0.18, 0.32) - 0.05 * rough + 0.03 * radial * (d / rad))
    ring = 1 / (1 + np.exp((d - rng.uniform(0.15, 0.3) * rad) / 1.0))  # darker fine-granular area
    img -= ring * rng.uniform(0.08, 0.18) * (1 + 0.4 * rough)
    r0 = rng.uniform(1.8, 4.0)
    img = np.where(d < r0, rng.choice([0.1, 0.85]) + 0.05 * rough, img)  # the inclusion itself
    return img


def rough_surface(rng, h, w, angle, light):
    """A rough, featureless matrix for secondary cracks or pores on their own."""
    hgt = noise(rng, h, w, rng.uniform(2.6, 3.4))
    sh = _shade(hgt, light, 1.0)
    return 0.45 + 0.04 * hgt + rng.uniform(0.04, 0.09) * sh / sh.std() + 0.02 * noise(rng, h, w, 1.5)


def smooth_surface(rng, h, w, angle, light):
    return 0.45 + 0.08 * noise(rng, h, w, 4.0) + 0.02 * noise(rng, h, w, 2.0)


def add_pores(rng, img, angle, light):
    """Smooth round pores: dark interior, smoothly lit walls, a thin bright rim."""
    h, w = img.shape
    x, y, _, _ = _frame(h, w, angle)
    for _ in range(rng.integers(1, 6)):
        r = rng.uniform(3.5, 13)
        cx, cy = rng.uniform(-0.42, 0.42, 2) * (w, h)
        e, a = rng.uniform(0.8, 1.0), rng.uniform(0, np.pi)
        dx, dy = x - cx, y - cy
        pu, pv = dx * np.cos(a) + dy * np.sin(a), (-dx * np.sin(a) + dy * np.cos(a)) / e
        rho = np.sqrt(pu**2 + pv**2) / r
        wall = 0.05 + 0.12 * rho**2 + 0.3 * np.clip((dx * np.cos(light) + dy * np.sin(light)) / r, 0, 1) * rho**4
        rim = 0.85 * np.exp(-(((rho - 1) * r / rng.uniform(0.8, 1.6)) ** 2))
        img = np.where(rho < 1, wall, np.maximum(img, rim))
    return img


def add_cracks(rng, img, angle, light):
    """Narrow dark secondary cracks, meandering along v (across the growth direction), some branched.

    Drawn as polylines with PIL at 4x resolution and box-downsampled: anti-aliased, ~0.3 ms
    (point-to-segment distances over every pixel cost ~10 ms).
    """
    from PIL import Image, ImageDraw

    h, w = img.shape
    ss = 4
    canvas = Image.new("L", (w * ss, h * ss), 0)
    draw = ImageDraw.Draw(canvas)
    wd = rng.uniform(1.3, 2.6)  # crack width in px
    for _ in range(rng.integers(1, 4)):
        start = rng.uniform(-0.3, 0.3, 2) * (w, h)
        heading = angle + np.pi / 2 + rng.normal(0, 0.3)
        walks = [(start, heading), (start, heading + np.pi)]  # grow both ways from a mid point
        for start, heading in walks:
            n = int(rng.integers(5, 20))
            steps = heading + np.cumsum(rng.normal(0, 0.2, n))
            pts = np.vstack([start, start + np.cumsum(np.stack([np.cos(steps), np.sin(steps)], 1) * 3.0, 0)])
            px = (pts + ((w - 1) / 2, (h - 1) / 2) + 0.5) * ss  # frame -> pixel corners at 4x
            draw.line([tuple(p) for p in px.tolist()], fill=255, width=max(1, round(wd * ss)), joint="curve")
            if len(walks) < 4 and rng.random() < 0.3:  # a branch leaves at 40 degrees
                walks.append((pts[n // 2], heading + rng.choice([-0.7, 0.7])))
    core = np.asarray(canvas.resize((w, h), Image.Resampling.BOX), dtype=np.float64) / 255
    lip = np.clip(blur(core, 1.2) * 2.5 - core * 3, 0, 1)  # a bright lip just outside the dark core
    return img * (1 - 0.9 * core) + 0.12 * lip


MATRIX_DRAW = {
    "dimple_equiaxed": dimples, "cleavage_facet": cleavage, "ig_facet": grains,
    "striation_ductile": striations, "fish_eye": fish_eye,
    "secondary_crack": rough_surface, "gas_pore": smooth_surface,
}
OVERLAY_DRAW = {"gas_pore": add_pores, "secondary_crack": add_cracks}


def render(features, rng, h, w, angle, style):
    """Draw one image with these features (first = matrix, second = overlay); uint8 (h, w).

    `style` = the microscope: contrast, brightness, blur (px), noise (std), shared by a paper.
    """
    light = rng.uniform(0, 2 * np.pi)  # detector side: random, it is not a growth-direction cue
    matrix = [f for f in features if f not in OVERLAY] or [features[0]]  # pores alone: smooth matrix
    img = MATRIX_DRAW[matrix[0]](rng, h, w, angle, light)
    for f in features:
        if f in OVERLAY:
            img = OVERLAY_DRAW[f](rng, img, angle, light)
    return finish(rng, img, style, fine="striation_ductile" in features)


def finish(rng, img, style, fine=False):
    """The microscope: uneven illumination, contrast/brightness, blur, noise, 8-bit quantisation."""
    h, w = img.shape
    _, _, u, _ = _frame(h, w, rng.uniform(0, 2 * np.pi))  # illumination falls off in a random direction
    img = img + rng.uniform(0, 0.12) * u / max(h, w) + 0.04 * noise(rng, h, w, 4.0)
    c = style["contrast"] * rng.uniform(0.85, 1.15)
    img = (img - img.mean()) * c + 0.45 + style["brightness"] + rng.uniform(-0.06, 0.06)
    sigma = style["blur"] * rng.uniform(0.5, 1.3)
    img = blur(img, min(sigma, 0.6) if fine else sigma)  # heavier blur would erase 3-px striations
    img = img + rng.normal(0, style["noise"] * rng.uniform(0.7, 1.3), img.shape)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
