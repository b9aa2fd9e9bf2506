"""The task slice: the queue and its dispatcher (ready tasks, assignment by capability and priority,
leases with fencing tokens, results, retries, cancellation), the pure rules it applies (routing.py,
attempts.py), the service the routes call, and the task routes."""
