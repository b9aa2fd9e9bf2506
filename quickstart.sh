#!/usr/bin/env bash
# Hive's quick start, in one command: install, start hived on the embedded SQLite default,
# declare example agents, run work on them, run an example workflow, and show the fleet.
set -euo pipefail
cd "$(dirname "$0")"
./install.sh
hivectl=.venv/bin/hivectl
$hivectl daemon start
$hivectl apply -f workflows-examples/quickstart-agents.yaml
echo "==> a task for an exec agent (needs capability 'shell'):"
$hivectl task submit greet --payload '{"name": "operator"}' --requires shell --wait -o json
echo "==> a task for an in-process python agent:"
$hivectl task submit echo --payload '{"hello": "hive"}' --requires python --wait
$hivectl agent list
echo "==> a workflow: three reviewers in parallel, then a verdict (workflows-examples/code-review.yaml):"
$hivectl workflow run workflows-examples/code-review.yaml --wait
echo
echo "hived keeps running in the background: '$hivectl status', '$hivectl daemon stop'."
