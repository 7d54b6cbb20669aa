"""Stage 3, analysis: one recording in, its measurements out.

Takes: a path (decoded through :mod:`pipeline.audio`).
Gives: the :class:`~pipeline.analysis.base.Analysis` of a recording (what selection reads), made by the
streaming fast pass (:mod:`~pipeline.analysis.fastpass`: VAD, speech runs and pauses, SNR in
the band the delivered clip keeps, the noise under the speech, rumble and mains hum, reverb, clipping, true
peak, bandwidth, loudness, frame features, from one decode), the slow models on
demand (DNSMOS, Silero edges), one module per meter, and the public ``analyze()``, ``check()`` and
``check_families()`` (:mod:`~pipeline.analysis.inspection`, which applies :mod:`pipeline.rules` to the
measurements).
A metric that cannot be computed is ``None`` with a reason, never NaN.
May import: :mod:`pipeline.rules`, :mod:`pipeline.audio`, :mod:`pipeline.errors`.
"""
