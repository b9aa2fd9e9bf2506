"""The HTTP face of hived: the FastAPI app, the dependencies through which routes reach the services,
the request body limit, the probes (/healthz, /readyz, /metrics, /status) and the event stream."""
