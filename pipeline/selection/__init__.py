"""Selection internals: the family's numbers, frame measures, scoring, windows, assembly, slow pass.

The public entry point is :mod:`pipeline.select` (``candidates`` and ``choose``); the modules here are
its parts, each with one job:

* :mod:`~pipeline.selection.rules`: the numbers selection takes from a family spec, and the expected
  duration, longest run and longest pause of a clip after pause shortening;
* :mod:`~pipeline.selection.frames`: per-recording prefix sums, so any window is measured in O(1);
* :mod:`~pipeline.selection.scoring`: score parts in [0, 1] and their weights;
* :mod:`~pipeline.selection.windows`: enumerating single-recording windows, non-maximum suppression;
* :mod:`~pipeline.selection.assembly`: joining short takes whose acoustics match;
* :mod:`~pipeline.selection.slow`: DNSMOS and Silero edge refinement on the finalists.
"""
