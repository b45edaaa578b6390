"""Times whole processes against a yardstick process, in alternating rounds.

    python3 paired.py RUNS YARDSTICK_NAME YARDSTICK_COMMAND [NAME COMMAND]...

Each round runs every command once (the first one of the round rotating), so a drift of the
machine's speed, which is large here, falls on the yardstick and on the commands alike;
timing all runs of one command and then all runs of the next, as hyperfine does, would put
the drift into the difference. After one warm-up round, prints `NAME<TAB>median ms` for each
command and, for each but the yardstick, `NAME.extra<TAB>ms`: the median over the rounds of
the command's time minus the yardstick's in the same round. Commands are split as by a shell
and run without one, their output discarded; one that fails stops the run.
"""

import shlex
import statistics
import subprocess
import sys
import time


def timed_ms(argv):
    started = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        sys.exit(f"paired: {argv[0]} exited with {done.returncode}: {' '.join(tail)}")
    return elapsed


def main():
    runs = int(sys.argv[1])
    pairs = sys.argv[2:]
    if runs < 1 or len(pairs) < 2 or len(pairs) % 2:
        sys.exit(__doc__)
    names = pairs[0::2]
    commands = [shlex.split(c) for c in pairs[1::2]]
    times = {name: [] for name in names}
    for round_ in range(-1, runs):  # round -1: the warm-up, not counted
        for k in range(len(names)):
            i = (max(round_, 0) + k) % len(names)
            elapsed = timed_ms(commands[i])
            if round_ >= 0:
                times[names[i]].append(elapsed)
    yardstick = times[names[0]]
    for name in names:
        print(f"{name}\t{statistics.median(times[name]):.1f}")
        if name != names[0]:
            extra = [t - y for t, y in zip(times[name], yardstick)]
            print(f"{name}.extra\t{statistics.median(extra):.1f}")


main()
