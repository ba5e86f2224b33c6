// Command push sends one event to every live session of a user through pushgate's gRPC API and
// prints each session's outcome.
//
//	push [-address host:port] [-api-key KEY] [-tls-ca ca.pem] [-client-type app] [-ack-timeout-ms 5000]
//	     [-no-ack] [-message-id ID] [-json] USER_ID EVENT [DATA_JSON]
//
// The API key defaults to $PUSHGATE_API_KEY, the address to $PUSHGATE_ADDRESS (else 127.0.0.1:50051).
// Exit status: 0 when the call succeeded, 1 with the gRPC status on stderr when it failed, 2 for bad usage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	pb "pushgate.example/pushgatev1"
)

type clientTypes []string

func (c *clientTypes) String() string     { return strings.Join(*c, ",") }
func (c *clientTypes) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	address := flag.String("address", envOr("PUSHGATE_ADDRESS", "127.0.0.1:50051"), "a node's gRPC address")
	apiKey := flag.String("api-key", os.Getenv("PUSHGATE_API_KEY"), "sent as 'authorization: Bearer <key>'")
	tlsCA := flag.String("tls-ca", "", "CA certificate (PEM) of the server's certificate; enables TLS")
	ackTimeoutMs := flag.Uint("ack-timeout-ms", 0, "per-session ack wait; 0: the server's default")
	noAck := flag.Bool("no-ack", false, "fire and forget: sessions are reported SENT")
	messageID := flag.String("message-id", "", "echoed in the response; generated when empty")
	asJSON := flag.Bool("json", false, "print the response as proto3 JSON")
	var types clientTypes
	flag.Var(&types, "client-type", "only sessions of this client type (repeatable)")
	flag.Parse()
	if flag.NArg() < 2 || flag.NArg() > 3 {
		fmt.Fprintln(os.Stderr, "usage: push [flags] USER_ID EVENT [DATA_JSON]")
		return 2
	}
	dataJSON := "null"
	if flag.NArg() == 3 {
		dataJSON = flag.Arg(2)
	}
	var raw interface{}
	if err := json.Unmarshal([]byte(dataJSON), &raw); err != nil {
		fmt.Fprintf(os.Stderr, "DATA_JSON is not JSON: %v\n", err)
		return 2
	}
	data, err := structpb.NewValue(raw)
	if err != nil {
		fmt.Fprintf(os.Stderr, "DATA_JSON: %v\n", err)
		return 2
	}

	// grpc 1.33 (Debian 12) has no credentials/insecure package: WithInsecure is its plaintext option.
	transport := grpc.WithInsecure()
	if *tlsCA != "" {
		creds, err := credentials.NewClientTLSFromFile(*tlsCA, "")
		if err != nil {
			fmt.Fprintf(os.Stderr, "-tls-ca: %v\n", err)
			return 2
		}
		transport = grpc.WithTransportCredentials(creds)
	}
	conn, err := grpc.Dial(*address, transport)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot dial %s: %v\n", *address, err)
		return 1
	}
	defer conn.Close()

	// The deadline covers the ack wait; a push is never retried (the server does not deduplicate message ids).
	timeout := 10 * time.Second
	if wait := time.Duration(*ackTimeoutMs)*time.Millisecond + 2*time.Second; wait > timeout {
		timeout = wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if *apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+*apiKey)
	}
	response, err := pb.NewPushServiceClient(conn).PushToUser(ctx, &pb.PushToUserRequest{
		UserId:       flag.Arg(0),
		Event:        flag.Arg(1),
		Data:         data,
		ClientTypes:  types,
		AckTimeoutMs: uint32(*ackTimeoutMs),
		NoAck:        *noAck,
		MessageId:    *messageID,
	})
	if err != nil {
		s := status.Convert(err)
		fmt.Fprintf(os.Stderr, "PushToUser failed: %s: %s\n", s.Code(), s.Message())
		return 1
	}

	if *asJSON {
		out, _ := protojson.Marshal(response)
		fmt.Println(string(out))
		return 0
	}
	fmt.Printf("message %s: %d acked, %d timed out, %d failed\n", response.MessageId, response.Acked, response.TimedOut, response.Failed)
	for _, d := range response.Deliveries {
		detail := d.Error
		if d.AckData != nil {
			ack, _ := protojson.Marshal(d.AckData)
			detail = string(ack)
		}
		fmt.Printf("%s\t%s\t%s\t%dus\t%s\n", d.Session.GetSessionId(), d.Session.GetClientType(),
			strings.TrimPrefix(d.Status.String(), "DELIVERY_STATUS_"), d.LatencyUs, detail)
	}
	return 0
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}
