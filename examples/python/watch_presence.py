"""Follow pushgate's presence stream and print one JSON line per event, resuming after a lost connection.

Usage: python3 watch_presence.py [--address HOST:PORT] [--api-key KEY] [--tls-ca CA.pem] [--user USER_ID]...
                                 [--snapshot] [--resume CURSOR] [--count N]

Each line is the PresenceEvent as proto3 JSON ({"kind": "PRESENCE_EVENT_KIND_SESSION_CONNECTED", "userId": ...}).
When the stream breaks (UNAVAILABLE: the node restarted) or ends (the node drained), it reconnects
with resume_after set to the last event's cursor, so no event is lost or repeated while the node
keeps the events (cluster mode: Redis). A cursor the server no longer holds (FAILED_PRECONDITION)
ends the script with exit code 3: take a snapshot instead. --count stops after N events (exit 0).
"""

import argparse
import json
import sys
import time

import grpc
from google.protobuf import json_format

from pushgate.v1 import presence_pb2, push_service_pb2, push_service_pb2_grpc

import channel

MAX_BACKOFF_S = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description="Print presence events as JSON lines.")
    channel.add_arguments(parser)
    parser.add_argument("--user", action="append", default=[], help="only this user (repeatable); every user by default")
    parser.add_argument("--snapshot", action="store_true", help="start with the sessions already live")
    parser.add_argument("--resume", default="", help="start after this cursor")
    parser.add_argument("--count", type=int, default=0, help="exit after this many events")
    args = parser.parse_args()
    if args.snapshot and args.resume:
        parser.error("--snapshot and --resume cannot be combined")

    cursor, snapshot, seen, backoff = args.resume, args.snapshot, 0, 0.1
    with channel.open_channel(args) as chan:
        stub = push_service_pb2_grpc.PushServiceStub(chan)
        while True:
            request = push_service_pb2.WatchPresenceRequest(user_ids=args.user, include_snapshot=snapshot, resume_after=cursor)
            stream = stub.WatchPresence(request, metadata=channel.metadata(args))
            try:
                for response in stream:
                    event = response.event
                    print(json.dumps(json_format.MessageToDict(event)), flush=True)
                    seen, backoff = seen + 1, 0.1
                    # Resume by cursor from now on, except in the middle of a snapshot (which restarts whole).
                    if not snapshot or event.kind == presence_pb2.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE:
                        cursor, snapshot = event.cursor, False
                    if args.count and seen >= args.count:
                        stream.cancel()
                        return 0
                reason = "the stream ended (the node is draining)"
            except grpc.RpcError as err:
                code = err.code()
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    print(f"cannot resume after {cursor}: {err.details()}", file=sys.stderr)
                    return 3
                if code != grpc.StatusCode.UNAVAILABLE:
                    print(f"WatchPresence failed: {code.name}: {err.details()}", file=sys.stderr)
                    return 1
                reason = f"{code.name}: {err.details()}"
            print(f"reconnecting in {backoff:.1f} s after {reason}", file=sys.stderr, flush=True)
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
