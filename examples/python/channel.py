"""The connection settings both examples share: address, API key, TLS."""

import argparse
import os

import grpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=os.environ.get("PUSHGATE_ADDRESS", "127.0.0.1:50051"), help="a node's gRPC address")
    parser.add_argument("--api-key", default=os.environ.get("PUSHGATE_API_KEY", ""), help="sent as 'authorization: Bearer <key>'")
    parser.add_argument("--tls-ca", default="", help="CA certificate (PEM) of the server's certificate; enables TLS")


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    if not args.tls_ca:
        return grpc.insecure_channel(args.address)
    with open(args.tls_ca, "rb") as ca:
        return grpc.secure_channel(args.address, grpc.ssl_channel_credentials(root_certificates=ca.read()))


def metadata(args: argparse.Namespace) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {args.api_key}")] if args.api_key else []
