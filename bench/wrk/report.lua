-- Prints wrk's figures as one machine-readable line, for bench/run.sh:
-- BENCH requests=… seconds=… rps=… p50_ms=… p99_ms=… max_ms=… bad_status=… socket_errors=…
-- A script that stops itself before -d's end gives its own seconds as bench_seconds().
function done(summary, latency, requests)
  local e = summary.errors
  local seconds = (bench_seconds and bench_seconds()) or summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.2f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f bad_status=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
