"""A stand-in for an agent that calls a paid model (exec handler), for the budgeted example.

payload {prompt, cost_usd: 0.4, tokens: 1000, parts: 2, every: 0.1, hold: 0} -> {"answer": ..., "parts": N}.
It reports what it spends as it goes, one `::hive-usage` line per part (cost_usd / parts and
tokens / parts each, as input and output tokens), then works `hold` seconds more and answers."""

import json
import sys
import time

MODEL = "example-small"


def main():
    payload = json.load(sys.stdin)
    parts = int(payload.get("parts", 1))
    cost = float(payload.get("cost_usd", 0.0))
    tokens = int(payload.get("tokens", 0))
    for _ in range(parts):
        usage = {
            "cost_usd": cost / parts,
            "input_tokens": tokens // parts // 2,
            "output_tokens": 0,
            "model": MODEL,
        }
        usage["output_tokens"] = tokens // parts - usage["input_tokens"]
        print("::hive-usage " + json.dumps(usage), flush=True)
        time.sleep(float(payload.get("every", 0.0)))
    for line in payload.get("say", []):  # lines to print as they are (a test's malformed usage lines)
        print(line, flush=True)
    time.sleep(float(payload.get("hold", 0.0)))
    print(json.dumps({"answer": f"done: {payload.get('prompt', '')}", "parts": parts}))


if __name__ == "__main__":
    main()
