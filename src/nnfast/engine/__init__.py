"""The engine: :class:`Sequential` and what runs under it.

Floors, lowest first (a module imports only the ones before it): ``checks`` (argument checks),
``sample_weights``, ``inputs`` (fit/evaluate/predict input conversion), ``locks`` (threads sharing
a model), ``workspace`` (per-batch activation buffers), ``training`` (fit and the passes it shares
with evaluate/predict), ``inference`` (evaluate, predict), ``saving`` (the file format),
``model`` (Sequential, load_model). The public names are ``nnfast.Sequential`` and
``nnfast.load_model``; see docs/architecture.md.
"""
