"""Signed distance functions (SDFs) of ShapeWorld's shapes, on torch coordinate grids.

Chapter 03 (datasets). Every function takes normalised coordinates ``x, y`` (any broadcastable
float tensors, in units of the object's radius, origin at the object's centre, **y pointing down**
as in an image) and returns the signed distance to the shape's outline in the same units:
negative inside, positive outside, zero on the edge. Every shape fits in the square
``[-1, 1] x [-1, 1]``, so an object of radius r pixels never leaves its r-neighbourhood.

Multiplying by the radius gives a distance in pixels, and ``clamp(0.5 - d_px, 0, 1)`` is the
fraction of a pixel the shape covers (a one-pixel linear ramp: cheap anti-aliasing). Convex shapes
use the "max over half-planes" form, exact near the edges (which is all the anti-aliasing needs) and
slightly underestimated outside a corner.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Tensor = torch.Tensor


def circle(x: Tensor, y: Tensor) -> Tensor:
    """Disc of radius 1."""
    return torch.sqrt(x * x + y * y) - 1.0


def ring(x: Tensor, y: Tensor) -> Tensor:
    """Annulus between radii 0.5 and 1."""
    return (torch.sqrt(x * x + y * y) - 0.75).abs_() - 0.25


def square(x: Tensor, y: Tensor) -> Tensor:
    """Axis-aligned square of half-side 0.85 (so its area is close to the circle's)."""
    return torch.maximum(x.abs(), y.abs()) - 0.85


def diamond(x: Tensor, y: Tensor) -> Tensor:
    """Square rotated by 45 degrees with its vertices at distance 1 on the axes."""
    return (x.abs() + y.abs() - 1.0) * (1.0 / math.sqrt(2.0))


def _polygon(x: Tensor, y: Tensor, angles: tuple[float, ...], apothem: float) -> Tensor:
    """Convex polygon as the max over its edges' half-planes (outward normals at ``angles``)."""
    d = None
    for a in angles:
        e = x * math.cos(a) + y * math.sin(a)
        d = e if d is None else torch.maximum(d, e)
    return d - apothem


# normals: down, up-left, up-right
_TRI = tuple(math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))
_HEX = tuple(k * math.pi / 3 for k in range(6))


def triangle(x: Tensor, y: Tensor) -> Tensor:
    """Equilateral triangle pointing up, side 2: apex at (0, -0.866), base at y = 0.866."""
    # Circumradius 2 / sqrt(3), apothem 1 / sqrt(3); the centroid sits 0.289 below the origin so
    # that the bounding box is centred.
    return _polygon(x, y - 0.2887, _TRI, 0.5774)


def hexagon(x: Tensor, y: Tensor) -> Tensor:
    """Regular hexagon with flat top and bottom, circumradius 1."""
    return _polygon(x, y, tuple(a + math.pi / 6 for a in _HEX), math.cos(math.pi / 6))


def cross(x: Tensor, y: Tensor) -> Tensor:
    """Plus sign: union of two bars of half-width 0.33 and half-length 1."""
    ax, ay = x.abs(), y.abs()
    bar_h = torch.maximum(ax - 1.0, ay - 0.33)
    bar_v = torch.maximum(ax - 0.33, ay - 1.0)
    return torch.minimum(bar_h, bar_v)


_STAR_POINTS = 5
_STAR_INNER = 0.45  # inner vertex radius relative to the outer one


def star(x: Tensor, y: Tensor) -> Tensor:
    """Five-pointed star, one point straight up, outer radius 1, inner radius 0.45.

    By symmetry it is enough to fold every point into the half-sector between an outer vertex
    (angle 0 after the fold) and the neighbouring inner vertex (angle pi/5), and measure the signed
    distance to the one edge joining them.
    """
    sector = 2 * math.pi / _STAR_POINTS
    theta = torch.atan2(x, -y)  # 0 = straight up, in image coordinates
    phi = torch.remainder(theta + sector / 2, sector) - sector / 2
    phi = phi.abs_()
    rho = torch.sqrt(x * x + y * y)
    qx, qy = rho * torch.cos(phi), rho * torch.sin(phi)
    ax, ay = 1.0, 0.0
    bx, by = _STAR_INNER * math.cos(sector / 2), _STAR_INNER * math.sin(sector / 2)
    ex, ey = bx - ax, by - ay
    length2 = ex * ex + ey * ey
    t = ((qx - ax) * ex + (qy - ay) * ey).div_(length2).clamp_(0.0, 1.0)
    dx, dy = qx - ax - t * ex, qy - ay - t * ey
    dist = torch.sqrt(dx * dx + dy * dy)
    # Outward normal of the edge (pointing away from the origin): (-ey, ex) rotated to face out.
    side = (qx - ax) * ey - (qy - ay) * ex
    return torch.where(side > 0, dist, -dist)


def heart(x: Tensor, y: Tensor) -> Tensor:
    """Heart: two discs for the lobes and a downward triangle for the point (union = min)."""
    lobe = 0.52
    left = torch.sqrt((x + 0.45) ** 2 + (y + 0.42) ** 2) - lobe
    right = torch.sqrt((x - 0.45) ** 2 + (y + 0.42) ** 2) - lobe
    # Triangle with its tip at (0, 1) and top corners at (+-0.92, -0.3).
    nx, ny = 1.3, 0.92
    norm = math.hypot(nx, ny)
    side = (x.abs() * nx + y * ny - 0.92) / norm
    top = -0.3 - y
    point = torch.maximum(side, top)
    return torch.minimum(torch.minimum(left, right), point)


SDF: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "circle": circle,
    "square": square,
    "triangle": triangle,
    "diamond": diamond,
    "cross": cross,
    "star": star,
    "heart": heart,
    "ring": ring,
    "hexagon": hexagon,
}


def coverage(sdf_px: Tensor) -> Tensor:
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels (1-pixel linear ramp)."""
    return (0.5 - sdf_px).clamp_(0.0, 1.0)
