"""Worker scaling with MWAA's formula, and scale-in that never kills a running task.

- policy: the pure scaling policy (observations in, decisions out).
- demand: reads running/queued task counts and busy workers from the metadata DB.
- celery_settings: the Airflow [celery] settings that make scale-in drain-safe on SQS.
- worker_shutdown: loaded into workers; a warm shutdown leaves no SQS long poll open.
- deletion_cost: keeps a worker pod's `controller.kubernetes.io/pod-deletion-cost` in
  step with the tasks it runs, so a ReplicaSet scale-in removes idle pods first.
"""
