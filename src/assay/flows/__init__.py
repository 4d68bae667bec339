"""Flows: what one command does, as a domain function above the packages it composes (engines, evals, judge, report).
The command line (``assay.cli``) parses, calls one flow, renders; tests call the flows directly.

- ``flows.eval``: ``evaluate`` (the run, then the judge / recheck / tracker passes, the headline), ``rescore_run``,
  and how ``--suite`` / ``--data`` / ``--suite-opt`` become suites.
"""
