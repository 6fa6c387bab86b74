/* echo: a signal's number written to a pipe as the signal comes, whoever
 * else asks for it, by a handler chained in front of the one Python installs.
 *
 * A followed child (cprof/collect/follow.py) ends on SIGTERM, SIGHUP and
 * SIGQUIT through a Python handler, which runs in the main thread once the
 * main thread looks: a signal that came just before it blocked (a Pool worker
 * waiting for its next task) would leave it blocked for ever. A thread of the
 * child reads the pipe and wakes the main thread. signal.set_wakeup_fd would
 * tell it too, but the program owns that one: asyncio's loops and
 * multiprocessing's forkserver set it and reset it, the forkserver in the
 * very child it forks, after every fork handler has run.
 *
 * The handler calls the one it replaced (Python's), then writes the number,
 * one byte, to the pipe; errno is kept. Python's signal.signal for one of
 * these signals puts its own handler back, and the echo of that signal
 * with it, as it should: the program then owns the signal. */
#ifndef CPROF_ECHO_H
#define CPROF_ECHO_H

/* Echo signum to the pipe: chain the handler in front of the current one,
 * which must be a function (Python's); a no-op where it is in place already.
 * 0, or -1 with errno set (EINVAL: no function handler to chain). */
int cprof_echo_signal(int signum);

/* The pipe's write end, which should not block; -1 for none (a forked
 * child drops its parent's). */
void cprof_echo_to(int fd);

#endif
