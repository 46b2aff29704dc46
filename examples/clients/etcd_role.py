#!/usr/bin/env python3
"""A role command for splitbrain's `command` system: says whether an etcd member leads.

Usage: etcd_role.py HOST PORT

Asks the member at HOST:PORT for its status (`POST /v3/maintenance/status` on etcd's v3
JSON gateway) and prints one line, `leader TERM` when the member's id is the leader id it
reports, else `follower TERM`. Exits 1, with the reason on stderr, when the member does
not answer within two seconds. Standard library only.

In a campaign (docs/command-system.md, "Who leads"):

    node:
      role: [python3, examples/clients/etcd_role.py, "{ip}", "{port}"]
"""

import http.client
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: etcd_role.py HOST PORT")
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2)
        conn.request(
            "POST",
            "/v3/maintenance/status",
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        reply = conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            sys.exit(f"status {reply.status}: {body[:200]!r}")
        status = json.loads(body)
        member = status["header"]["member_id"]
        term = int(status.get("raftTerm", status["header"].get("raft_term", 0)))
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"no status from {host}:{port}: {e}")
    role = "leader" if status.get("leader") == member else "follower"
    print(f"{role} {term}")


if __name__ == "__main__":
    main()
