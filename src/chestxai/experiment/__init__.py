"""Experiments: a file of named runs (:mod:`.spec`) trained, evaluated and compared by :mod:`.runner`.

A resumable orchestrator above ``train``, ``evaluation`` and ``report``; ``chestxai experiment``
(commands/experiment.py) is its command-line face. The folder layout is ``rundir.ExperimentDir``.
"""
