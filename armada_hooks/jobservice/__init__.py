"""The job service: a cache of Armada job states, shared by every process of a deployment.

It follows each (queue, job set) that callers ask about with one watching
``GetJobSetEvents`` stream, keeps the states in a store (SQLite), and answers Armada's
historic ``jobservice.JobService`` API and a batched API of its own. See the README's
"Job service" section.
"""
