"""The approval workflow of approval.py, answered from the command line instead of a prompt.

    python examples/approval_scripted.py --db tether.sqlite --thread rel-2 \\
        --answer "reject:mention the CLI" --answer approve

Each pause takes the next --answer (approve | edit:<text> | reject:<why> | JSON, the forms of
``tether.answers``); when the answers run out the thread stays paused, and a later call with
more answers continues it. An unclear answer ("yes please", broken JSON) is refused before
anything runs: exit code 2, the accepted forms on stderr, the thread untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.approval import builder, run, typed_answer

from tether import SqliteSaver
from tether.errors import InvalidResumeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="tether.sqlite")
    parser.add_argument("--thread", default="release-1.4")
    parser.add_argument("--version", default="1.4.0")
    parser.add_argument("--answer", action="append", default=[], help="answer for the next pause (repeatable)")
    args = parser.parse_args(argv)
    try:  # every answer is checked before the thread is touched
        queue = [(text, typed_answer(text)) for text in args.answer]
    except InvalidResumeError as exc:
        print(f"error: --answer: {exc}", file=sys.stderr)
        return 2

    def answers(payload: dict[str, Any]) -> Any:
        if not queue:
            return None
        text, answer = queue.pop(0)
        print(f"answering {payload['question']!r} with {text!r}")
        return answer

    with SqliteSaver.from_conn_string(args.db) as saver:
        values = run(builder().compile(checkpointer=saver), args.thread, args.version, answers)
    return 0 if values.get("published") else 3


if __name__ == "__main__":
    sys.exit(main())
