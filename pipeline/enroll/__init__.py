"""Stage 7, enroll: ready clips in, cloned voices out, and the record of every voice made.

Takes: a run folder's ``clips.jsonl`` (from :mod:`pipeline.batch`) and API keys from the environment.
Gives: :mod:`~pipeline.enroll.submit` (submit ready clips, never a duplicate voice, dry run),
:mod:`~pipeline.enroll.ledger` (the SQLite voice ledger: intent before a create, outcome after),
:mod:`~pipeline.enroll.voices` (list, show, sync, delete), :mod:`~pipeline.enroll.speak` (synthesise with a
voice: ``voiceprep speak``) and :mod:`~pipeline.enroll.providers` (the only code that talks to the network:
one HTTP layer and one WebSocket layer with retries and redaction, one client per service).
May import: :mod:`pipeline.batch` (manifests and config) and every stage below, :mod:`pipeline.errors`.
"""
