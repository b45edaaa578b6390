-- POST /_matrix/client/v3/login (m.login.password) over and over, as BENCH_LOGIN_USER with
-- BENCH_LOGIN_PASSWORD; each thread stops by itself after BENCH_MAX_REQUESTS responses
-- (wrk's -d bounds the time). Reports through report.lua.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"%s"},"password":"%s"}',
  os.getenv("BENCH_LOGIN_USER"), os.getenv("BENCH_LOGIN_PASSWORD"))

local max = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "1000000")
local seen = 0
function response(status, headers, body)
  seen = seen + 1
  if seen >= max then
    wrk.thread:stop()
  end
end
