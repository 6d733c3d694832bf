"""Serving a trained run: ``predict`` on files, the HTTP API and its web viewer.

The service is a thin layer over the same library calls as the CLI: decode with
:func:`chestxai.data.decode.decode_image` (the decoder ``prepare`` uses), resize to the cache size
the model was trained on, preprocess from the checkpoint, one batched forward, then optional
explanations (:class:`chestxai.explain.Explainer`) and MC-dropout uncertainty
(:mod:`chestxai.uncertainty`).

Importing this package imports neither torch nor FastAPI: ``predict --onnx`` runs without torch,
and the HTTP pieces (``app``, ``batching``, ``limits``) need the ``[serve]`` extra only when used.
"""
