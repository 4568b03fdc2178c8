"""Economic models: pure ``jax.numpy`` functions of one grid point.

One model per file (``standard``, ``sectors`` for ``modes`` and ``coordination``,
``dynamic``). Nothing here jits, vmaps, reads files or knows about configs: the
batch is formed once in :mod:`pipeline.kernels`.
"""
