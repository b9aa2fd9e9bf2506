"""The workflow slice: templates and runs. The engine drives each run from its in-memory state
(live.py) by the pure rules of rules.py, renders step payloads (templates.py), and writes every change
before acting on it, so runs survive a restart. The document itself is hived.model.workflow."""
