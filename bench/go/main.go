// The benchmark function served by the OFFICIAL Go Inngest SDK (github.com/inngest/inngestgo,
// pinned in go.mod) on net/http. The same function as bench/rust/server.rs and
// bench/ts/server.mjs: step "first", `event.data.middle` steps "middle", step "final"; every
// step returns a string.
//
// Env: PORT (required; 127.0.0.1:$PORT); INNGEST_SIGNING_KEY set: cloud mode, every request
// must be signed; unset: dev mode. Prints one line `READY` once listening.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/inngest/inngestgo"
	"github.com/inngest/inngestgo/step"
)

type benchData struct {
	Middle int `json:"middle"`
}

func bench(ctx context.Context, input inngestgo.Input[benchData]) (any, error) {
	text := func(value string) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { return value, nil }
	}
	if _, err := step.Run(ctx, "first", text("first")); err != nil {
		return nil, err
	}
	for i := 0; i < input.Event.Data.Middle; i++ {
		if _, err := step.Run(ctx, "middle", text("middle")); err != nil {
			return nil, err
		}
	}
	if _, err := step.Run(ctx, "final", text("final")); err != nil {
		return nil, err
	}
	return "done", nil
}

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "PORT is required")
		os.Exit(2)
	}
	signingKey := os.Getenv("INNGEST_SIGNING_KEY")
	opts := inngestgo.ClientOpts{
		AppID: "bench",
		Dev:   inngestgo.BoolPtr(signingKey == ""),
		// Quiet: a log line per request would be part of what is measured.
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if signingKey != "" {
		opts.SigningKey = &signingKey
	}
	client, err := inngestgo.NewClient(opts)
	if err != nil {
		panic(err)
	}
	_, err = inngestgo.CreateFunction(client, inngestgo.FunctionOpts{ID: "bench"},
		inngestgo.EventTrigger("bench/run", nil), bench)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/inngest", client.Serve())
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		panic(err)
	}
	fmt.Println("READY")
	if err := http.Serve(listener, mux); err != nil {
		panic(err)
	}
}
