// Command serve is the load generator of `grefine serve` (vegeta, loopback only, bounded
// in count and time). It starts the grefine binary given by -grefine as a child process
// on a free loopback port and runs, by -mode:
//
//   - throughput: n assess and n refine requests (the sample resized to 96×64; refine
//     at 2+2 steps) at concurrency 1, 2 and 4, through the server (JSON with a base64
//     image) and through the pipeline API in this process (decode, then Assess or
//     Refine), both with 4 slots; it prints throughput and p50/p99 and the overhead
//     ratio (pipeline throughput / server throughput);
//   - overload: 10× the single-slot assess throughput for 10 s against --slots 1
//     --queue 4; it prints the status codes (expect 200 and 429 only), the 5xx count
//     and the server's peak RSS;
//   - sigterm: six clients refining against --slots 2 --queue 8, SIGTERM after 4 s;
//     it classifies every request (200, clean JSON error, refused after the listener
//     closed, lost) and prints the exit status;
//   - soak: two clients (3 assess : 1 refine) for -soak (10 min) against --slots 2,
//     RSS sampled every 5 s, first minute against last (run by hand).
//
// Run from the repository root (tools/env.sh sets the ONNX Runtime path):
//
//	go build -o /tmp/grefine ./cmd/grefine
//	go run ./bench/serve -grefine /tmp/grefine -mode all
//	go run ./bench/serve -grefine /tmp/grefine -mode soak -soak 10m
//
// The numbers go to bench/RESULTS.md, section Serving.
package main
