"""Procedural ``(image, graph)`` generators in 2D/3D with named domain styles, patches and datasets."""

from .domains import (
    DOMAIN_PAIRS,
    DOMAINS,
    DomainSpec,
    domain_info,
    get_domain,
    iter_samples,
    make_sample,
    render,
    sample_graph,
    structure_mask,
)
from .dataset import (
    DatasetRecord,
    SPLIT_SEED_BASE,
    dataset_info,
    iter_dataset,
    read_dataset,
    split_seeds,
    write_dataset,
)
from .geometry import GEOMETRY_KINDS, Geometry, make_geometry
from .patches import crop_graph, crop_patch, random_patches

__all__ = [
    "DatasetRecord",
    "SPLIT_SEED_BASE",
    "crop_graph",
    "crop_patch",
    "dataset_info",
    "iter_dataset",
    "random_patches",
    "read_dataset",
    "split_seeds",
    "write_dataset",
    "DOMAINS",
    "DOMAIN_PAIRS",
    "DomainSpec",
    "GEOMETRY_KINDS",
    "Geometry",
    "domain_info",
    "get_domain",
    "iter_samples",
    "make_geometry",
    "make_sample",
    "render",
    "sample_graph",
    "structure_mask",
]
