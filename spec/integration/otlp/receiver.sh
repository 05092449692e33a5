# spec/integration/otlp/receiver.sh - the OTLP tests' receiver (receiver.js:
# the official OpenTelemetry decoders behind @grpc/grpc-js and HTTP).
# Sourced after lib.sh; ends the test at once when its packages are missing.
#
#   receiver TAG ARGS...   starts one on free ports, its output in
#                          $T/rx_TAG.* and what it got in $T/TAG.jsonl;
#                          sets GPORT (gRPC) and HPORT (HTTP)

RECV="$SHOAL_ROOT/spec/integration/otlp/receiver.js"
if [ ! -d "$SHOAL_ROOT/spec/integration/otlp/node_modules" ]; then
    fail "receiver packages installed" "run scripts/test (npm ci in spec/integration/otlp)"
    finish
fi

receiver() {
    local tag=$1
    shift
    start_bg "rx_$tag" node "$RECV" --grpc-port 0 --http-port 0 --out "$T/$tag.jsonl" "$@"
    wait_for "grep -q '^listening' '$T/rx_$tag.out'" 20 ||
        { fail "$tag starts" "$(cat "$T/rx_$tag.err")"; finish; }
    GPORT=$(sed -n 's/^listening grpc=\([0-9]*\).*/\1/p' "$T/rx_$tag.out")
    HPORT=$(sed -n 's/^listening.*http=\([0-9]*\).*/\1/p' "$T/rx_$tag.out")
}
