#!/usr/bin/env python3
"""A client program for splitbrain's `command` system that talks to etcd's v3 JSON gateway.

Usage: etcd_gateway_client.py HOST PORT [--serializable]

It reads one JSON request per line on stdin and answers one JSON line on stdout, as
docs/command-system.md specifies. Standard library only.

Key layout (the same as the built-in etcd client, so their histories are comparable):
register K lives at `r/K`; set K is every key under `s/K/`, one per element.
Values are integers stored as decimal text.

Outcomes follow Jepsen: `fail` when the request certainly had no effect (refused
connection, failed compare, any read that went wrong), `info` when a write, cas or add
may or may not have happened (timeout or broken connection after sending).

Transactions (`{"f": "txn", "value": [["append", 1, 2], ["r", 1, null]]}`, workloads
list-append and rw-register) are answered with the same micro-operations, reads filled
in (`[["append", 1, 2], ["r", 1, [1, 2]]]`). Key K lives at `t/K` (a list as `[1,2]`, a
register as `2`), as in the built-in client: one etcd Txn reads every key the
transaction touches (a snapshot, with mod revisions), the micro-operations are applied
to it here, and one more Txn puts the written keys if no key changed since. A changed
key is `fail` (nothing is retried); a commit whose reply never came is `info`.
"""

import base64
import http.client
import json
import socket
import sys
import time


class NotSent(Exception):
    """The request never reached etcd."""


class MaybeSent(Exception):
    """The request may have reached etcd; its reply is unknown."""


class Rejected(Exception):
    """etcd answered with an error."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


GRPC_INVALID_ARGUMENT = 3


def b64(text):
    return base64.b64encode(text.encode()).decode()


def unb64(text):
    return base64.b64decode(text).decode()


def key_text(key):
    return key if isinstance(key, str) else json.dumps(key)


def encode_value(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotSent(f"etcd values are integers, got {value!r}")
    return str(value)


def decode_value(text):
    try:
        return int(text)
    except ValueError:
        return text


def prefix_end(prefix):
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return base64.b64encode(bytes(raw)).decode()
        raw.pop()
    return base64.b64encode(b"\0").decode()


class Gateway:
    """One keep-alive HTTP/1.1 connection to an etcd member, re-opened after any error."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.conn = None

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, path, body, deadline):
        try:
            return self._call(path, body, deadline)
        except (NotSent, MaybeSent):
            self.drop()
            raise

    def _remaining(self, deadline, before_sending):
        left = deadline - time.monotonic()
        if left <= 0:
            raise (NotSent if before_sending else MaybeSent)("timed out")
        return left

    def _call(self, path, body, deadline):
        if self.conn is None:
            conn = http.client.HTTPConnection(
                self.host, self.port, timeout=self._remaining(deadline, True)
            )
            try:
                conn.connect()
            except OSError as e:
                raise NotSent(f"connect: {e}") from e
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conn = conn
        self.conn.sock.settimeout(self._remaining(deadline, True))
        payload = json.dumps(body)
        try:
            self.conn.request(
                "POST", path, payload, {"Content-Type": "application/json"}
            )
            self.conn.sock.settimeout(self._remaining(deadline, False))
            response = self.conn.getresponse()
            data = response.read()
        except socket.timeout as e:
            raise MaybeSent("timed out") from e
        except (OSError, http.client.HTTPException) as e:
            raise MaybeSent(f"connection broken: {e}") from e
        try:
            reply = json.loads(data)
        except ValueError as e:
            raise MaybeSent(f"unreadable reply: {data[:200]!r}") from e
        if response.status != 200:
            raise Rejected(
                reply.get("message") or reply.get("error") or str(reply),
                reply.get("code", -1),
            )
        return reply


class Client:
    def __init__(self, host, port, serializable):
        self.gateway = Gateway(host, port)
        self.serializable = serializable

    def read(self, key, value, deadline):
        body = {"key": b64(f"r/{key_text(key)}"), "serializable": self.serializable}
        kvs = self.gateway.call("/v3/kv/range", body, deadline).get("kvs", [])
        return decode_value(unb64(kvs[0].get("value", ""))) if kvs else None

    def write(self, key, value, deadline):
        body = {"key": b64(f"r/{key_text(key)}"), "value": b64(encode_value(value))}
        self.gateway.call("/v3/kv/put", body, deadline)
        return value

    def cas(self, key, value, deadline):
        if not isinstance(value, list) or len(value) != 2:
            raise NotSent(f"cas needs [expected, new], got {value!r}")
        expected, new = value
        k = b64(f"r/{key_text(key)}")
        if expected is None:
            # No nil in etcd: expecting nil means expecting the key to be absent.
            compare = {"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        else:
            compare = {"key": k, "target": "VALUE", "result": "EQUAL",
                       "value": b64(encode_value(expected))}
        body = {
            "compare": [compare],
            "success": [{"request_put": {"key": k, "value": b64(encode_value(new))}}],
        }
        reply = self.gateway.call("/v3/kv/txn", body, deadline)
        if not reply.get("succeeded", False):
            raise Rejected("compare-failed", None)
        return value

    def add(self, key, value, deadline):
        element = encode_value(value)
        body = {"key": b64(f"s/{key_text(key)}/{element}"), "value": b64(element)}
        self.gateway.call("/v3/kv/put", body, deadline)
        return value

    def read_set(self, key, value, deadline):
        prefix = f"s/{key_text(key)}/"
        body = {"key": b64(prefix), "range_end": prefix_end(prefix),
                "serializable": self.serializable}
        kvs = self.gateway.call("/v3/kv/range", body, deadline).get("kvs", [])
        return sorted(decode_value(unb64(kv.get("value", ""))) for kv in kvs)

    def txn(self, key, ops, deadline):
        if not isinstance(ops, list) or not all(
            isinstance(op, list) and len(op) == 3 and op[0] in ("append", "w", "r")
            and isinstance(op[1], int) for op in ops
        ):
            raise NotSent(f"a transaction is a list of [f, key, value], got {ops!r}")
        keys = sorted({op[1] for op in ops})
        try:
            snapshot = self.gateway.call(
                "/v3/kv/txn",
                {"success": [{"request_range": {"key": b64(f"t/{k}")}} for k in keys]},
                deadline,
            )
        except (MaybeSent, Rejected) as e:
            # Nothing was written yet: the transaction certainly had no effect.
            raise NotSent(f"reading the keys: {e}") from e
        state, revisions = {}, {}
        for k, response in zip(keys, snapshot.get("responses", [])):
            kvs = response.get("response_range", {}).get("kvs", [])
            revisions[k] = kvs[0].get("mod_revision", "0") if kvs else "0"
            state[k] = json.loads(unb64(kvs[0].get("value", ""))) if kvs else None
        if len(revisions) != len(keys):
            raise NotSent("the snapshot read answered fewer keys than it asked")
        completed, written = [], set()
        for f, k, v in ops:
            if f == "r":
                current = state.get(k)
                completed.append([f, k, list(current) if isinstance(current, list) else current])
                continue
            if f == "append":
                state[k] = (state.get(k) or []) + [v]
            else:
                state[k] = v
            written.add(k)
            completed.append([f, k, v])
        if not written:
            return completed
        body = {
            "compare": [{"key": b64(f"t/{k}"), "target": "MOD", "result": "EQUAL",
                         "mod_revision": revisions[k]} for k in keys],
            "success": [{"request_put": {"key": b64(f"t/{k}"),
                                         "value": b64(json.dumps(state[k], separators=(",", ":")))}}
                        for k in sorted(written)],
        }
        reply = self.gateway.call("/v3/kv/txn", body, deadline)
        if not reply.get("succeeded", False):
            raise Rejected("conflict: a key changed since the transaction read it", None)
        return completed

    def handle(self, request):
        f = request.get("f")
        operation = {
            "read": self.read, "write": self.write, "cas": self.cas,
            "add": self.add, "read_set": self.read_set, "txn": self.txn,
        }.get(f)
        if operation is None:
            return {"type": "fail", "error": f"unknown function {f!r}"}
        is_read = f in ("read", "read_set")
        deadline = time.monotonic() + request.get("timeout_ms", 1000) / 1000.0
        if f == "txn":
            try:
                value = self.txn(None, request.get("value"), deadline)
                return {"type": "ok", "value": value}
            except NotSent as e:
                return {"type": "fail", "error": str(e)}
            except MaybeSent as e:
                # The commit was sent; its reply never came.
                return {"type": "info", "error": str(e)}
            except Rejected as e:
                definite = e.code in (None, GRPC_INVALID_ARGUMENT)
                return {"type": "fail" if definite else "info", "error": str(e)}
        try:
            value = operation(request.get("key"), request.get("value"), deadline)
            return {"type": "ok", "value": value}
        except NotSent as e:
            return {"type": "fail", "error": str(e)}
        except MaybeSent as e:
            return {"type": "fail" if is_read else "info", "error": str(e)}
        except Rejected as e:
            definite = is_read or e.code in (None, GRPC_INVALID_ARGUMENT)
            return {"type": "fail" if definite else "info", "error": str(e)}


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 64
    client = Client(argv[1], int(argv[2]), "--serializable" in argv[3:])
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
        except ValueError as e:
            reply = {"type": "fail", "error": f"unreadable request: {e}"}
        else:
            reply = client.handle(request)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
