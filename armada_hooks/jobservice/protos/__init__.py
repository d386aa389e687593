"""The job service's wire contract: ``.proto`` files and the stubs generated from them.

- ``jobservice.proto``: Armada's historic ``jobservice.JobService`` (GetJobStatus, Health),
  unchanged, so that the clients armada-airflow 0.5.x published work against ours;
- ``job_states.proto``: ``armada_hooks.jobservice.JobStates``, our batched RPC answering
  Armada's own ``JobState`` and the reason.

The ``*_pb2*`` modules are generated (``make protos``, see :mod:`..codegen`) and checked in;
a test regenerates them and compares. The historic file's proto package is ``jobservice``,
as in the old stubs: the two cannot be imported into one process (protobuf's descriptor
pool refuses a second ``jobservice.JobServiceRequest``), so an old client runs in its own.
"""
