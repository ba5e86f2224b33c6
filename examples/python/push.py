"""Push one event to every live session of a user through pushgate, and print each session's outcome.

Usage: python3 push.py [--address HOST:PORT] [--api-key KEY] [--tls-ca CA.pem] [--client-type TYPE]...
                       [--ack-timeout-ms MS] [--no-ack] [--message-id ID] [--json] USER_ID EVENT [DATA_JSON]

The API key defaults to $PUSHGATE_API_KEY and the address to $PUSHGATE_ADDRESS (else 127.0.0.1:50051).
The stubs generated from proto/ (see README.md) must be on PYTHONPATH. Exits 0 when the call
succeeded, 1 with the gRPC status on stderr when it failed.
"""

import argparse
import json
import sys

import grpc
from google.protobuf import json_format, struct_pb2

from pushgate.v1 import push_service_pb2, push_service_pb2_grpc

import channel


def main() -> int:
    parser = argparse.ArgumentParser(description="Push an event to a user's live sessions.")
    channel.add_arguments(parser)
    parser.add_argument("user_id")
    parser.add_argument("event")
    parser.add_argument("data", nargs="?", default="null", help="any JSON value (default: null)")
    parser.add_argument("--client-type", action="append", default=[], help="only sessions of this client type (repeatable)")
    parser.add_argument("--ack-timeout-ms", type=int, default=0, help="per-session ack wait; 0: the server's default")
    parser.add_argument("--no-ack", action="store_true", help="fire and forget: sessions are reported SENT")
    parser.add_argument("--message-id", default="", help="echoed in the response; generated when empty")
    parser.add_argument("--json", action="store_true", help="print the response as proto3 JSON")
    args = parser.parse_args()

    request = push_service_pb2.PushToUserRequest(
        user_id=args.user_id,
        event=args.event,
        client_types=args.client_type,
        ack_timeout_ms=args.ack_timeout_ms,
        no_ack=args.no_ack,
        message_id=args.message_id,
    )
    try:
        request.data.CopyFrom(json_format.ParseDict(json.loads(args.data), struct_pb2.Value()))
    except json.JSONDecodeError as err:
        print(f"DATA_JSON is not JSON: {err}", file=sys.stderr)
        return 2

    # A push is not retried: the server does not deduplicate message ids, so a retry could deliver twice.
    deadline_s = max(10.0, args.ack_timeout_ms / 1000 + 2)
    with channel.open_channel(args) as chan:
        stub = push_service_pb2_grpc.PushServiceStub(chan)
        try:
            response = stub.PushToUser(request, timeout=deadline_s, metadata=channel.metadata(args))
        except grpc.RpcError as err:
            print(f"PushToUser failed: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1

    if args.json:
        print(json_format.MessageToJson(response))
        return 0
    print(f"message {response.message_id}: {response.acked} acked, {response.timed_out} timed out, {response.failed} failed")
    for delivery in response.deliveries:
        status = push_service_pb2.DeliveryStatus.Name(delivery.status).removeprefix("DELIVERY_STATUS_")
        ack = json.dumps(json_format.MessageToDict(delivery.ack_data)) if delivery.HasField("ack_data") else ""
        print(f"{delivery.session.session_id}\t{delivery.session.client_type}\t{status}\t{delivery.latency_us}us\t{ack or delivery.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
