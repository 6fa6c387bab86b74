/* echo: see echo.h. */
#define _GNU_SOURCE
#include "collect/echo.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

/* Each echoed signal's previous handler, read by the handler: written only
 * while the echo is not installed for that signal, before it is. */
static struct sigaction chained[NSIG];
static atomic_int echo_fd = -1;

/* --- signal-safe section ---------------------------------------------------- */

static void echo_sigsafe(int signum, siginfo_t *info, void *context)
{
    int saved = errno;
    const struct sigaction *next = &chained[signum];
    if (next->sa_flags & SA_SIGINFO)
        next->sa_sigaction(signum, info, context);
    else if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN)
        next->sa_handler(signum);
    int fd = atomic_load(&echo_fd);
    if (fd >= 0) {
        unsigned char number = (unsigned char)signum;
        ssize_t written = write(fd, &number, 1);
        (void)written;  /* a full pipe holds enough of them already */
    }
    errno = saved;
}

/* --- end of signal-safe section --------------------------------------------- */

int cprof_echo_signal(int signum)
{
    if (signum <= 0 || signum >= NSIG || signum > 255) {
        errno = EINVAL;
        return -1;
    }
    struct sigaction current;
    if (sigaction(signum, NULL, &current) != 0)
        return -1;
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == echo_sigsafe)
        return 0;
    if (!(current.sa_flags & SA_SIGINFO) &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)) {
        errno = EINVAL;
        return -1;
    }
    chained[signum] = current;
    struct sigaction echo = current;
    echo.sa_flags |= SA_SIGINFO;
    echo.sa_sigaction = echo_sigsafe;
    return sigaction(signum, &echo, NULL);
}

void cprof_echo_to(int fd)
{
    atomic_store(&echo_fd, fd);
}
