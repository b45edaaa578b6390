-- Each request with the next of many tokens, read from the file BENCH_TOKENS (one a line):
--   BENCH_MODE=whoami      GET the URL with "Authorization: Bearer <token>"
--   BENCH_MODE=oauth_refresh   POST the OAuth refresh grant's form with the token
--   BENCH_MODE=legacy_refresh  POST /refresh's JSON with the token
--   BENCH_MODE=exchange    POST the authorization code grant's form with the token as the code
--   BENCH_MODE=upsert      POST Synapse's upsert_device for ex0 with the token as the device
--                          ID, with "Authorization: Bearer $BENCH_SECRET"
--   BENCH_MODE=introspect  POST the URL the form Synapse sends, token=<token>&token_type_hint=
--                          access_token, with "Authorization: Bearer $BENCH_SECRET" (read here
--                          from the environment, so it is on no command line)
-- The requests are formatted once, in init; each thread starts at its own place in the list.
-- With BENCH_ONCE=1 (for one wrk thread: -t 1) no token is used twice: the thread stops by
-- itself after BENCH_MAX_REQUESTS responses, and if it runs out of tokens first it sends one
-- that no server knows (a 401, which fails the run) rather than reuse one. wrk itself would
-- wait out -d even so: the thread then ends the run as Ctrl-C does (SIGINT to wrk's main
-- thread), and the seconds reported are those from the first request to the last answer.
-- Otherwise the list is cycled through, and wrk's -d bounds the run. Reports
-- through report.lua.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local mode = os.getenv("BENCH_MODE") or "whoami"
local once = os.getenv("BENCH_ONCE") == "1"
local max = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")

local threads = {}
function setup(thread)
  thread:set("index", #threads)
  threads[#threads + 1] = thread
end

local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if line ~= "" then tokens[#tokens + 1] = line end
end

local function format(token)
  if mode == "oauth_refresh" then
    return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "grant_type=refresh_token&client_id=benchclient&refresh_token=" .. token)
  end
  if mode == "legacy_refresh" then
    return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
      '{"refresh_token":"' .. token .. '"}')
  end
  if mode == "exchange" then
    return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "grant_type=authorization_code&client_id=benchclient&redirect_uri=https%3A%2F%2Fbench.example.org%2Fcb"
      .. "&code_verifier=bench-verifier-0123456789-0123456789-0123456789&code=" .. token)
  end
  if mode == "upsert" then
    return wrk.format("POST", nil, {
      ["Authorization"] = "Bearer " .. os.getenv("BENCH_SECRET"),
      ["Content-Type"] = "application/json",
    }, '{"localpart":"ex0","device_id":"' .. token .. '"}')
  end
  if mode == "introspect" then
    return wrk.format("POST", nil, {
      ["Authorization"] = "Bearer " .. os.getenv("BENCH_SECRET"),
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Accept"] = "application/json",
      ["X-MAS-Supports-Device-Id"] = "1",
    }, "token=" .. token .. "&token_type_hint=access_token")
  end
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
end

local requests, next_request = {}, 1
function init(args)
  local offset = once and 0 or (index or 0) * 7919
  for i = 1, #tokens do
    requests[i] = format(tokens[(i - 1 + offset) % #tokens + 1])
  end
end

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
  int getpid(void);
  long syscall(long number, ...);
]]
local timespec = ffi.new("bench_timespec")
local function now() -- CLOCK_MONOTONIC, in seconds
  ffi.C.clock_gettime(1, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

function request()
  if once and next_request == 1 then first_sent = first_sent or now() end
  if next_request > #requests then
    if once then return format("bench-ran-out-of-tokens") end
    next_request = 1
  end
  local r = requests[next_request]
  next_request = next_request + 1
  return r
end

if once then
  local seen = 0
  function response(status, headers, body)
    seen = seen + 1
    last_answer = now()
    if seen >= max then
      wrk.thread:stop()
      -- tgkill(2) (syscall 234 on x86-64): SIGINT to the main thread, whose sleep(-d) it ends.
      local pid = ffi.C.getpid()
      ffi.C.syscall(234, ffi.cast("long", pid), ffi.cast("long", pid), ffi.cast("long", 2))
    end
  end
  -- For report.lua: from the first request sent to the last answer, over the threads.
  function bench_seconds()
    local first, last
    for _, thread in ipairs(threads) do
      local f, l = thread:get("first_sent"), thread:get("last_answer")
      if f and l then
        first, last = math.min(first or f, f), math.max(last or l, l)
      end
    end
    return first and last - first
  end
end
