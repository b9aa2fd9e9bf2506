"""The usage slice: what handlers report they spent (recorded once per report, summed per attempt,
task, run, agent, model and day), the budgets over that spend and what crossing one does, and the
routes. Pure rules in rules.py; SQL in hived.store.usage."""
