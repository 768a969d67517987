"""Scorecards for the whole fleet, worked out in the background and kept (API and CLI share it).

One run (``pipeline``) reads every source once for the whole fleet, in parallel: the
registry's champion details (batched, and kept per version), one PromQL query per serving
signal for every server, the survey of generated repositories. The pure package
``trellis.scorecards`` turns that into facts per entity and runs every check; the facts (as
history) and each check's latest outcome go to the fact store, so the routes answer from it
(``queries``) and a restart loses nothing. ``Scorer`` runs the pipeline in the background.

A source that fails makes only its facts unknown: Prometheus down leaves registry checks
evaluated and serving checks unknown, never failed.
"""
