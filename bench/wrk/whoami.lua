-- GET with the Authorization header given on wrk's command line; wrk's -d bounds the run.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")
