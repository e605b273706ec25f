"""Per-domain defaults of :func:`skeleton_graph` for the synthetic domains.

A user of the classical pipeline would tune sigma and threshold to their images; these presets play
that role for the benchmark. They were picked on VALIDATION seeds (20_000_000 + i), never on the test
seeds (10_000_000 + i) the benchmark reports; see ``benchmarks/graph_quality.py --tune``.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "vessel2d-fluo": {"sigmas": (1.0, 2.0), "threshold_factor": 1.5, "min_object_size": 32, "prune_length": 5.0},
    "vessel2d-fundus": {"sigmas": (2.0, 3.0), "threshold_factor": 1.5, "min_object_size": 32, "prune_length": 5.0},
    # the synthetic volumes are drawn isotropic in voxels (their scale is metadata only), so the
    # filter scales are given in voxels rather than in the (anisotropic) physical units
    "vessel3d-lightsheet": {"sigma_units": "pixels", "sigmas": (1.0, 2.0), "min_object_size": 32, "prune_length": 5.0},
    "vessel3d-twophoton": {
        "sigma_units": "pixels",
        "sigmas": (1.0, 2.0),
        "flatten": 16.0,
        "threshold": "triangle",
        "threshold_factor": 2.0,
        "min_object_size": 32,
        "prune_length": 5.0,
    },
    "road-clean": {"sigmas": (2.0, 3.0), "threshold_factor": 1.5, "min_object_size": 150, "prune_length": 8.0},
    "road-hazy": {"sigmas": (1.0, 2.0, 3.0), "threshold": "triangle", "min_object_size": 150, "prune_length": 12.0},
}


def preset(domain: str) -> dict[str, Any]:
    """Keyword arguments for :func:`skeleton_graph` on ``domain`` (empty dict: the plain defaults)."""
    return dict(PRESETS.get(domain, {}))
