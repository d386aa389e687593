"""Job specs as users write them: Kubernetes quantities, manifests, and job files.

:mod:`armada_hooks.job_requests` turns every form into a ``JobSubmitRequestItem``; the
modules here each do one step of that (nothing here imports protobuf at import time).
"""
