/* sampler: per-thread POSIX timers, the SIGPROF handler, and the helper
 * thread that finds threads and drains samples. */
#define _GNU_SOURCE
#include "collect/sampler.h"
#include "collect/native.h"

#include <fcntl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "collect/frames.h"
#include "collect/ringbuf.h"

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* Timer slots live in chunks that are never moved while sampling, so that a
 * handler may read its slot while the helper thread adds others. A signal
 * carries its slot index and the slot's generation, so a signal of a timer
 * whose slot was reused is recognised and ignored. */
#define SLOT_BITS 20
#define CHUNK_SLOTS 1024
#define MAX_CHUNKS ((1u << SLOT_BITS) / CHUNK_SLOTS)

typedef struct {
    _Atomic int live;             /* the timer exists and the slot is in use */
    _Atomic uint32_t generation;  /* bumped when the slot is reused */
    pid_t tid;
    timer_t timer;
    int64_t interval_ns;          /* the interval last armed */
    _Atomic int64_t last_ns;      /* the slot's clock at the previous sample */
    int64_t observed_ns;          /* the clock at the helper's last look */
    clockid_t clock;              /* the thread's CPU clock, or CLOCK_MONOTONIC */
    uint64_t rng;                 /* xorshift state for jitter, handler only */
    int64_t overshoot_ns;         /* mean of measured minus asked intervals, handler only */
    uint32_t taken;               /* samples so far, handler only */
    int has_timer;                /* cpu mode: the POSIX timer exists */
    /* Wall mode (helper_lock): the thread's CPU clock tells whether it ran. */
    clockid_t cpu_clock;
    int64_t cpu_seen;             /* that clock at the helper's last visit */
    int64_t cpu_stacked;          /* cpu_seen when its stack was last taken, or -1 */
    uint32_t idle_visits;         /* visits in a row that found it had not run */
    int settling;                 /* signalled; a little CPU is its wake-up, until it is still */
    uint32_t repeat_count;        /* repeats of its latest stack not yet queued */
    int64_t repeat_ns;            /* and their time */
    _Atomic int has_stack;        /* a stack of it is known: a sample or a snapshot */
} slot_t;

typedef struct {
    pid_t tid;
    uint32_t index;
} tid_slot_t;

/* All state below is written under the GIL by control functions or by the
 * helper thread (which holds `helper_lock` for the slot table), and read by
 * signal handlers through the atomics. */
static struct {
    _Atomic int active;           /* handlers record only while set */
    _Atomic int in_flight;        /* handlers past their entry: stop frees nothing until 0 */
    pid_t pid;                    /* the process that started: wall mode's signals are its own */
    int64_t busy_ns;              /* wall mode: CPU between visits that means "it is running" */
    tid_slot_t *by_tid;           /* wall mode: live slots by tid, as of the last scan */
    size_t n_by_tid, cap_by_tid;
    cprof_record_t *snap;         /* wall mode: one stack being taken (GIL) */
    cprof_sampler_config_t cfg;
    Py_hash_t label_hash;
    cprof_ringbuf_t rb;
    cprof_stacks_t stacks;        /* GIL held */
    slot_t *_Atomic chunks[MAX_CHUNKS];
    size_t n_slots;               /* slots ever used (helper thread) */
    struct sigaction previous;    /* SIGPROF's disposition before start */
    pthread_t helper;
    int helper_started;
    _Atomic int helper_stop;
    pid_t helper_tid;
    pthread_mutex_t helper_lock;  /* slot table, between helper and stop */
    pthread_cond_t helper_wake;   /* with helper_lock: stop wakes the helper */
    int helper_wake_ready;        /* helper_wake was initialised (GIL) */
    _Atomic uint64_t samples;
    uint64_t threads_seen, timer_errors, drains;
    int64_t lost_reported;
    int drain_failed;             /* memory ran out while draining (GIL) */
    _Atomic int drain_pending;    /* a pending call to drain is queued */
    _Atomic pid_t profiler_tid;   /* the thread running a drain from a pending call, or 0 */
    _Atomic int64_t last_drain_ns;
    int64_t start_ns;             /* CLOCK_MONOTONIC at start */
    _Atomic int taken_over;       /* SIGPROF's handler was replaced while sampling */
    int64_t taken_over_ns;        /* when that was seen (monotonic) */
    int64_t taken_over_clock_ns;  /* and the process CPU (cpu) or monotonic (wall) clock then */
    uint64_t taken_over_threads;  /* threads watched then */
    int retired;                  /* stop left the state to a handler still inside */
    int forking;                  /* os.fork is on its way: the helper takes no GIL (helper_lock) */
    _Atomic int taking_gil;       /* the helper is in PyGILState_Ensure ... Release */
    _Atomic int helper_ready;     /* the helper thread runs helper_main */
} S = {.helper_lock = PTHREAD_MUTEX_INITIALIZER};

static slot_t *slot_at(size_t index)
{
    slot_t *chunk = atomic_load_explicit(&S.chunks[index / CHUNK_SLOTS], memory_order_acquire);
    return chunk != NULL ? &chunk[index % CHUNK_SLOTS] : NULL;
}

/* --- signal-safe section ---------------------------------------------------- */

static uint64_t xorshift_sigsafe(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* An interval drawn uniformly from [period/2, 3*period/2): jitter on every
 * expiry, so that a program with its own rhythm is not aliased. */
static int64_t jittered_sigsafe(uint64_t *rng, int64_t period)
{
    return period / 2 + (int64_t)(xorshift_sigsafe(rng) % (uint64_t)period);
}

static void arm_sigsafe(slot_t *slot, int64_t interval)
{
    struct itimerspec spec = {
        .it_value = {.tv_sec = interval / 1000000000, .tv_nsec = interval % 1000000000}};
    slot->interval_ns = interval;
    timer_settime(slot->timer, 0, &spec, NULL);
}

/* The interrupted thread's stack with its C frames: Python frames (with call
 * marks) into the second half of the record's frames, C frames onto this
 * handler's stack, both merged into the first half. */
static size_t native_stack_sigsafe(PyThreadState *tstate, void *ucontext, cprof_record_t *rec,
                                   size_t *total, void **coroutine)
{
    size_t max = S.cfg.max_depth, py_total = 0;
    cprof_frame_t *py = rec->frames + max;
    size_t n_py = tstate == NULL ? 0 : cprof_frames_capture_marked_sigsafe(
                                            tstate, py, max, &py_total, coroutine);
    cprof_cframe_t c[CPROF_NATIVE_MAX_DEPTH];  /* 8 KiB of the handler's stack */
    size_t n = cprof_native_unwind_sigsafe(ucontext, c, CPROF_NATIVE_MAX_DEPTH);
    return cprof_native_merge_sigsafe(c, n, py, n_py, rec->frames, max, total);
}

/* The id of the cprof.labels() set in force in tstate, or 0. */
static uint64_t label_set_sigsafe(PyThreadState *tstate)
{
    if (S.cfg.label_var == NULL)
        return 0;
    PyObject *value = cprof_frames_contextvar_sigsafe(tstate, S.cfg.label_var, S.label_hash);
    if (value != NULL && Py_TYPE(value) == S.cfg.labelset_type)
        return ((cprof_labelset_object_t *)value)->id;
    return 0;
}

static void record_sigsafe(slot_t *slot, int64_t weight, void *ucontext)
{
    uint64_t position;
    cprof_record_t *rec = cprof_ringbuf_claim_sigsafe(&S.rb, &position);
    if (rec == NULL)
        return;  /* counted as lost by the buffer */
    rec->tid = (uint32_t)slot->tid;
    rec->weight_ns = weight;
    rec->flags = 0;
    rec->label_set = 0;
    rec->coroutine = 0;
    rec->depth = rec->total_depth = 0;
    PyThreadState *tstate = cprof_frames_tstate_sigsafe();
    if (slot->tid == atomic_load_explicit(&S.profiler_tid, memory_order_relaxed)) {
        rec->flags |= CPROF_RECORD_PROFILER;  /* the stack is the program's, the time cprof's */
    } else if (tstate == NULL && !S.cfg.native) {
        rec->flags |= CPROF_RECORD_NO_THREAD_STATE;
    } else {
        size_t total;
        void *coroutine = NULL;
        rec->depth = (uint32_t)(S.cfg.native
            ? native_stack_sigsafe(tstate, ucontext, rec, &total, &coroutine)
            : cprof_frames_capture_sigsafe(tstate, rec->frames, S.cfg.max_depth, &total,
                                           &coroutine));
        rec->total_depth = (uint32_t)total;
        rec->coroutine = (uintptr_t)coroutine;
        if (tstate != NULL)
            rec->label_set = label_set_sigsafe(tstate);
    }
    atomic_fetch_add_explicit(&S.samples, 1, memory_order_relaxed);
    cprof_ringbuf_commit_sigsafe(&S.rb, position);
}

static void on_sigprof_sigsafe(int signo, siginfo_t *info, void *context)
{
    (void)signo;
    int saved_errno = errno;
    /* Counted in before the first look at S, so that stop, having cleared
     * active, knows when no handler can still be using what it frees. Both
     * sides are sequentially consistent: either stop sees this handler, or
     * this handler sees active cleared. */
    atomic_fetch_add(&S.in_flight, 1);
    int ours = info->si_code == SI_TIMER || (info->si_code == SI_QUEUE && info->si_pid == S.pid);
    if (!ours || !atomic_load(&S.active))
        goto done;
    unsigned value = (unsigned)info->si_value.sival_int;
    slot_t *slot = slot_at(value & ((1u << SLOT_BITS) - 1));
    if (slot == NULL || !atomic_load_explicit(&slot->live, memory_order_acquire) ||
        (atomic_load_explicit(&slot->generation, memory_order_relaxed) & 0xfff) !=
            value >> SLOT_BITS)
        goto done;
    /* The weight is the time measured since the previous sample, not the
     * interval asked for: CPU-clock timers expire on scheduler ticks (often
     * 250 Hz), so at high rates each expiry stands for more than one period. */
    struct timespec now;
    int64_t weight = slot->interval_ns;
    if (clock_gettime(slot->clock, &now) == 0) {
        int64_t ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
        weight = ns - atomic_exchange_explicit(&slot->last_ns, ns, memory_order_relaxed);
    }
    /* CPU-clock expiries land on the next scheduler tick, so intervals run
     * long: learn by how much (a moving mean over about 8 samples) and ask
     * for that much less, so that hz samples come per CPU second where the
     * tick allows. (Wall mode has no timer: the helper thread signals.) */
    if (slot->has_timer) {
        if (slot->taken++ > 0)  /* the first weight also holds the time before the timer */
            slot->overshoot_ns += (weight - slot->interval_ns - slot->overshoot_ns) / 8;
        int64_t next = jittered_sigsafe(&slot->rng, S.cfg.period_ns) - slot->overshoot_ns;
        if (next < S.cfg.period_ns / 8)
            next = S.cfg.period_ns / 8;
        arm_sigsafe(slot, next);
    }
    record_sigsafe(slot, weight, context);
    atomic_store_explicit(&slot->has_stack, 1, memory_order_relaxed);
done:
    atomic_fetch_sub(&S.in_flight, 1);
    errno = saved_errno;
}

/* --- helper thread: finding threads ---------------------------------------- */

static clockid_t thread_cpu_clock(pid_t tid)
{
    /* The kernel's encoding of a thread CPU clock (MAKE_THREAD_CPUCLOCK with
     * CPUCLOCK_SCHED), as glibc's pthread_getcpuclockid builds it; it works
     * from a tid, which /proc gives us, where pthread_getcpuclockid needs a
     * pthread_t. */
    return (clockid_t)(((unsigned)~tid << 3) | 6u);
}

static slot_t *new_slot(size_t *index)
{
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *s = slot_at(i);
        if (!atomic_load(&s->live) && s->tid == 0) {
            *index = i;
            return s;
        }
    }
    size_t i = S.n_slots;
    if (i >= (size_t)MAX_CHUNKS * CHUNK_SLOTS)
        return NULL;
    if (slot_at(i) == NULL) {
        slot_t *chunk = calloc(CHUNK_SLOTS, sizeof *chunk);
        if (chunk == NULL)
            return NULL;
        atomic_store_explicit(&S.chunks[i / CHUNK_SLOTS], chunk, memory_order_release);
    }
    S.n_slots++;
    *index = i;
    return slot_at(i);
}

static int64_t clock_ns(clockid_t clock)
{
    struct timespec now;
    if (clock_gettime(clock, &now) != 0)
        return -1;
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* Queue the time a thread spent after its last sample (flags: 0, or
 * CPROF_RECORD_STOPPED), as repeats samples of it (CPROF_RECORD_REPEAT when
 * more than 0). Lock-free; any thread. */
static void push_tail(pid_t tid, int64_t ns, uint32_t flags, uint32_t repeats)
{
    if (ns <= 0)
        return;
    uint64_t position;
    cprof_record_t *rec = cprof_ringbuf_claim_sigsafe(&S.rb, &position);
    if (rec == NULL)
        return;
    memset(rec, 0, sizeof *rec);
    rec->tid = (uint32_t)tid;
    rec->flags = CPROF_RECORD_TAIL | flags | (repeats > 0 ? CPROF_RECORD_REPEAT : 0);
    rec->repeats = repeats;
    rec->weight_ns = ns;
    cprof_ringbuf_commit_sigsafe(&S.rb, position);
}

/* Each thread's last clock reading when the previous profile stopped (its
 * tail was counted up to there), for a start that resumes it: a cut, which
 * stops and restarts at once, must not lose the time between the two. */
typedef struct {
    pid_t tid;
    int64_t ns;
} reading_t;

static struct {
    reading_t *at;
    size_t n, cap;
    cprof_mode_t mode;
    int active;  /* the starting scans take readings from here (helper_lock) */
} R;

static void remember_reading(pid_t tid, int64_t ns)
{
    if (cprof_grow((void **)&R.at, &R.cap, R.n, sizeof *R.at) < 0)
        return;  /* that thread's time between the two profiles is not counted */
    R.at[R.n++] = (reading_t){tid, ns};
}

/* The previous profile's last reading of tid's clock, or -1. */
static int64_t resumed_reading(pid_t tid)
{
    for (size_t i = 0; R.active && i < R.n; i++)
        if (R.at[i].tid == tid)
            return R.at[i].ns;
    return -1;
}

/* from_birth: the thread started after the profile did, so in cpu mode all
 * its CPU time counts, also what it used before it was found. */
static void watch_thread(pid_t tid, int from_birth)
{
    size_t index;
    slot_t *slot = new_slot(&index);
    if (slot == NULL) {
        S.timer_errors++;
        return;
    }
    uint32_t generation = atomic_load(&slot->generation) + 1;
    atomic_store(&slot->generation, generation);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_notify_thread_id = tid;
    sev.sigev_value.sival_int = (int)(index | (generation & 0xfff) << SLOT_BITS);
    clockid_t clock = S.cfg.mode == CPROF_MODE_CPU ? thread_cpu_clock(tid) : CLOCK_MONOTONIC;
    slot->has_timer = 0;
    if (S.cfg.mode == CPROF_MODE_CPU) {
        if (timer_create(clock, &sev, &slot->timer) != 0) {
            /* The thread ended between the scan and now, or is not ours to time. */
            S.timer_errors++;
            return;
        }
        slot->has_timer = 1;
    }
    slot->tid = tid;
    slot->cpu_clock = thread_cpu_clock(tid);
    slot->cpu_seen = clock_ns(slot->cpu_clock);
    slot->cpu_stacked = -1;
    slot->idle_visits = slot->repeat_count = 0;
    slot->settling = 0;
    slot->repeat_ns = 0;
    atomic_store(&slot->has_stack, 0);
    slot->clock = clock;
    slot->overshoot_ns = 0;
    slot->taken = 0;
    int64_t now = clock_ns(clock);
    int64_t start = from_birth && S.cfg.mode == CPROF_MODE_CPU ? 0 : (now > 0 ? now : 0);
    int64_t before = from_birth ? -1 : resumed_reading(tid);
    if (before >= 0 && before <= start)
        start = before;  /* a cut: the time since the previous profile's last look counts */
    atomic_store(&slot->last_ns, start);
    slot->observed_ns = now > 0 ? now : start;
    slot->rng = (uint64_t)tid * 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL) ^ generation;
    if (slot->rng == 0)
        slot->rng = 1;
    /* The first expiry is uniform over one period. */
    int64_t first = 1 + (int64_t)(xorshift_sigsafe(&slot->rng) % (uint64_t)S.cfg.period_ns);
    atomic_store_explicit(&slot->live, 1, memory_order_release);
    if (slot->has_timer)
        arm_sigsafe(slot, first);
    S.threads_seen++;
}

/* Queue the repeats wall mode counted for the slot since it last did. */
static void flush_repeats(slot_t *slot)
{
    if (slot->repeat_count == 0)
        return;
    push_tail(slot->tid, slot->repeat_ns, 0, slot->repeat_count);
    slot->repeat_count = 0;
    slot->repeat_ns = 0;
}

/* The thread is gone or the profile stops: stop its timer, and queue the time
 * since its last sample (up to observed_ns, the latest reading): its latest
 * sample's, or <sampling stopped>'s once SIGPROF was taken over. */
static void unwatch_slot(slot_t *slot)
{
    flush_repeats(slot);
    push_tail(slot->tid, slot->observed_ns - atomic_load(&slot->last_ns),
              atomic_load(&S.taken_over) ? CPROF_RECORD_STOPPED : 0, 0);
    atomic_store_explicit(&slot->live, 0, memory_order_release);
    if (slot->has_timer)
        timer_delete(slot->timer);
    slot->has_timer = 0;
    slot->tid = 0;
}

static int compare_tids(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static int append_tid(pid_t **tids, size_t *cap, size_t *n, pid_t tid)
{
    if (*n == *cap) {
        size_t bigger = *cap ? *cap * 2 : 256;
        pid_t *grown = realloc(*tids, bigger * sizeof *grown);
        if (grown == NULL)
            return -1;
        *tids = grown;
        *cap = bigger;
    }
    (*tids)[(*n)++] = tid;
    return 0;
}

static int contains_tid(const pid_t *sorted, size_t n, pid_t tid)
{
    return n > 0 && bsearch(&tid, sorted, n, sizeof *sorted, compare_tids) != NULL;
}

static void index_slots(void);

/* A record of getdents64 (the kernel's struct linux_dirent64). */
typedef struct {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
} dirent64_t;

/* One look at /proc/self/task: timers for new threads, none for gone ones.
 * Sorted lists keep this O(n log n) for processes with thousands of threads. */
static void scan_threads(int from_birth)
{
    /* Kept between scans to spare allocations; used under helper_lock. */
    static pid_t *found, *known;
    static size_t found_cap, known_cap;
    size_t n_found = 0, n_known = 0;
    if (atomic_load(&S.taken_over))
        return;  /* no timer may send SIGPROF to someone else's handler */
    /* getdents64 into a static buffer, not opendir: opendir allocates, and a
     * helper that allocates on every poll makes an allocator without fork
     * handlers (ASan's) deadlock in a child forked meanwhile. */
    static _Alignas(8) char buf[16384];
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    long got;
    int full = 0;
    while (!full && (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long at = 0; at < got && !full;) {
            const dirent64_t *entry = (const dirent64_t *)(buf + at);
            at += entry->d_reclen;
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
                continue;
            pid_t tid = (pid_t)atoi(entry->d_name);
            if (tid != S.helper_tid && append_tid(&found, &found_cap, &n_found, tid) < 0)
                full = 1;
        }
    }
    close(fd);
    if (n_found > 1)
        qsort(found, n_found, sizeof *found, compare_tids);
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *s = slot_at(i);
        if (s->tid == 0)
            continue;
        /* Absent from the listing is not proof of death: a thread that exits
         * while getdents walks past it ends the walk early, and the threads
         * after it are missing from that one look. Taken as gone and then found
         * again, a live thread would be watched anew from its birth and its CPU
         * time counted twice. Its CPU clock answers only while it lives (and
         * only for threads of this process). */
        if (!contains_tid(found, n_found, s->tid) && clock_ns(s->cpu_clock) < 0) {
            unwatch_slot(s);
            continue;
        }
        int64_t now = clock_ns(s->clock);
        if (now >= 0)
            s->observed_ns = now;
        if (append_tid(&known, &known_cap, &n_known, s->tid) < 0)
            return;
    }
    if (n_known > 1)
        qsort(known, n_known, sizeof *known, compare_tids);
    for (size_t i = 0; i < n_found; i++)
        if (!contains_tid(known, n_known, found[i]))
            watch_thread(found[i], from_birth);
    if (S.cfg.mode == CPROF_MODE_WALL)
        index_slots();
}

/* --- wall mode ------------------------------------------------------------------
 * A signal to every thread at every tick made each thread blocked in
 * lock.acquire() wake, retake the GIL and wait again: with a thousand idle
 * threads the program stood still. So wall mode has no timers: the helper
 * thread ticks, reads each thread's CPU clock, and signals only the threads
 * that ran since its last look. A thread that did not run is where its latest
 * stack says: the tick counts one more sample of that stack (a repeat), with
 * the wall time since its previous sample as weight. Latest stacks come from
 * the signals and from snapshots: whoever drains holds the GIL, so no other
 * thread can change its Python frames meanwhile, and each thread that ran
 * since its stack was taken has it taken again there. The program pays for
 * the threads that run, not for the ones that wait. */

#define WALL_IDLE_AFTER 2      /* visits that found a thread idle before it may be looked at less */
#define WALL_VISITS_PER_TICK 512  /* beyond as many threads, idle ones take turns */

static int compare_tid_slots(const void *a, const void *b)
{
    pid_t x = ((const tid_slot_t *)a)->tid, y = ((const tid_slot_t *)b)->tid;
    return (x > y) - (x < y);
}

/* Rebuild by_tid from the live slots (helper_lock held). */
static void index_slots(void)
{
    size_t n = 0;
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *slot = slot_at(i);
        if (!atomic_load(&slot->live))
            continue;
        if (cprof_grow((void **)&S.by_tid, &S.cap_by_tid, n, sizeof *S.by_tid) < 0)
            break;  /* the snapshot then takes the stacks of the threads left out */
        S.by_tid[n++] = (tid_slot_t){slot->tid, (uint32_t)i};
    }
    if (n > 1)
        qsort(S.by_tid, n, sizeof *S.by_tid, compare_tid_slots);
    S.n_by_tid = n;
}

static slot_t *slot_of(pid_t tid)
{
    tid_slot_t key = {tid, 0};
    tid_slot_t *found = S.n_by_tid == 0 ? NULL : bsearch(&key, S.by_tid, S.n_by_tid,
                                                         sizeof key, compare_tid_slots);
    if (found == NULL)
        return NULL;
    slot_t *slot = slot_at(found->index);
    return slot != NULL && slot->tid == tid && atomic_load(&slot->live) ? slot : NULL;
}

static void signal_slot(slot_t *slot, size_t index)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGPROF;
    info.si_code = SI_QUEUE;
    info.si_pid = S.pid;
    info.si_uid = getuid();
    uint32_t generation = atomic_load(&slot->generation);
    info.si_value.sival_int = (int)(index | (generation & 0xfff) << SLOT_BITS);
    syscall(SYS_rt_tgsigqueueinfo, S.pid, slot->tid, SIGPROF, &info);
}

/* One tick (helper_lock held): signal the threads that ran, count a repeat of
 * the others' latest stacks. */
/* One wall tick: signal the threads that ran, count repeats for the others.
 * 1 when no thread looked at used any CPU and one ran since its stack was
 * last taken: its latest stack may be an old one (it moved to a wait using
 * too little CPU to be signalled, or while it settled), and the GIL is free
 * for a snapshot to take its new one. */
static int wall_tick_locked(uint64_t tick)
{
    int64_t now = monotonic_ns();
    int still = 1, stale = 0;
    /* Each look is a system call: past WALL_VISITS_PER_TICK threads, those
     * found idle are looked at in turn, one tick in stride. */
    uint64_t stride = S.n_by_tid / WALL_VISITS_PER_TICK + 1;
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *slot = slot_at(i);
        if (!atomic_load(&slot->live))
            continue;
        if (slot->idle_visits >= WALL_IDLE_AFTER && (tick + i) % stride != 0)
            continue;
        int64_t cpu = clock_ns(slot->cpu_clock);
        if (cpu < 0)
            continue;  /* it ended: the next scan unwatches it */
        /* Running: it used over 5% of a period. Moved: it used any CPU,
         * so its stack may be another, unless that is the wake-up our last
         * signal caused (a thread waiting in lock.acquire() retakes the GIL,
         * which may take long among many, before it waits again): until a
         * look finds it still, a little CPU means nothing, or each signal
         * would cause the next. */
        int64_t used = cpu - slot->cpu_seen;
        slot->cpu_seen = cpu;
        if (used == 0)
            slot->settling = 0;
        else
            still = 0;
        if (slot->cpu_stacked != cpu)
            stale = 1;
        int moved = used > S.busy_ns || (used > 0 && !slot->settling);
        if (moved || !atomic_load(&slot->has_stack)) {
            slot->idle_visits = 0;
            slot->settling = 1;
            flush_repeats(slot);  /* they belong to the stack before this sample */
            signal_slot(slot, i);
            continue;
        }
        /* As many samples as periods went by: a thread looked at once in
         * stride ticks still has hz samples a second. */
        int64_t ns = now - atomic_exchange(&slot->last_ns, now);
        int64_t periods = (ns + S.cfg.period_ns / 2) / S.cfg.period_ns;
        slot->idle_visits++;
        slot->repeat_ns += ns;
        slot->repeat_count += periods > 0 ? (uint32_t)periods : 1;
    }
    return still && stale;
}

/* Add the slot's repeats to its thread's latest stack now (GIL and
 * helper_lock held, the buffer drained: they are older than what is in it). */
static int add_repeats_gil(slot_t *slot)
{
    if (slot->repeat_count == 0)
        return 0;
    cprof_record_t tail;
    memset(&tail, 0, sizeof tail);
    tail.tid = (uint32_t)slot->tid;
    tail.flags = CPROF_RECORD_TAIL | CPROF_RECORD_REPEAT;
    tail.repeats = slot->repeat_count;
    tail.weight_ns = slot->repeat_ns;
    slot->repeat_count = 0;
    slot->repeat_ns = 0;
    return cprof_stacks_add(&S.stacks, &tail);
}

/* Take the stack of every other thread of the interpreter that ran since its
 * stack was last taken, as its latest (GIL held: their Python frames cannot
 * change meanwhile), after adding its repeats to the stack before. */
static int snapshot_gil(void)
{
    if (S.cfg.mode != CPROF_MODE_WALL || !atomic_load(&S.active) || S.snap == NULL)
        return 0;
    PyThreadState *self = PyThreadState_Get();
    int rc = 0;
    pthread_mutex_lock(&S.helper_lock);
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(self->interp); ts != NULL && rc == 0;
         ts = PyThreadState_Next(ts)) {
        pid_t tid = (pid_t)ts->native_thread_id;
        if (ts == self || tid == 0)
            continue;
        slot_t *slot = slot_of(tid);
        if (slot != NULL) {
            if (atomic_load(&slot->has_stack) && slot->cpu_stacked == slot->cpu_seen)
                continue;  /* it has not run since */
            rc = add_repeats_gil(slot);
            slot->cpu_stacked = slot->cpu_seen;
        }
        cprof_record_t *rec = S.snap;
        size_t total = 0;
        void *coroutine = NULL;
        rec->tid = (uint32_t)tid;
        rec->flags = CPROF_RECORD_STACK;
        rec->weight_ns = 0;
        /* Native mode names C frames with libunwind, which reads only the
         * sampled thread: not the catalogue, here either. */
        rec->depth = (uint32_t)(S.cfg.native ? cprof_frames_capture_unnamed_sigsafe
                                             : cprof_frames_capture_sigsafe)(
            ts, rec->frames, S.cfg.max_depth, &total, &coroutine);
        rec->total_depth = (uint32_t)total;
        rec->coroutine = (uintptr_t)coroutine;
        rec->label_set = label_set_sigsafe(ts);
        if (rc == 0)
            rc = cprof_stacks_add(&S.stacks, rec);
        if (slot != NULL)
            atomic_store(&slot->has_stack, 1);
    }
    /* Every thread's latest stack is now as current as a snapshot can make
     * it: one without Python frames (a library's own thread) has none to
     * take, and a wall tick must not find it stale for ever (the helper
     * would take the GIL every other period while the program is still). */
    for (size_t i = 0; i < S.n_slots && rc == 0; i++) {
        slot_t *slot = slot_at(i);
        if (atomic_load(&slot->live)) {
            rc = add_repeats_gil(slot);
            slot->cpu_stacked = slot->cpu_seen;
        }
    }
    pthread_mutex_unlock(&S.helper_lock);
    return rc;
}

/* --- draining (GIL held) ------------------------------------------------------ */

static int drain_gil(void)
{
    cprof_record_t *rec;
    while ((rec = cprof_ringbuf_peek(&S.rb)) != NULL) {
        if (!S.drain_failed && cprof_stacks_add(&S.stacks, rec) < 0)
            S.drain_failed = 1;
        cprof_ringbuf_release(&S.rb);
    }
    S.drains++;
    return S.drain_failed ? -1 : 0;
}

typedef struct {
    PyObject *code;
} dying_t;

static void resolve_dying(cprof_record_t *rec, void *arg)
{
    if (!S.drain_failed && cprof_stacks_resolve_code_in(&S.stacks, rec, ((dying_t *)arg)->code) < 0)
        S.drain_failed = 1;
}

/* A code object is about to die: nothing may refer to it afterwards. Records
 * the reader can take are taken; records behind one still being written
 * (another thread's handler, preempted) have their frames of this code
 * resolved in place. */
static void on_code_death(PyObject *code)
{
    if (S.rb.slots == NULL)
        return;
    drain_gil();
    dying_t dying = {code};
    cprof_ringbuf_visit_ready(&S.rb, resolve_dying, &dying);
    cprof_stacks_forget_code(&S.stacks, code);
}

static void call_hook_gil(void)
{
    if (S.cfg.hook == NULL)
        return;
    PyObject *r = PyObject_CallNoArgs(S.cfg.hook);
    if (r == NULL)
        PyErr_WriteUnraisable(S.cfg.hook);
    Py_XDECREF(r);
}

static int finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* --- the helper thread ----------------------------------------------------------- */

static void notice_takeover_locked(void);

#define DRAIN_EVERY_NS 50000000      /* 50 ms: 2048 slots then hold 40,000 samples/s */
#define PENDING_PATIENCE_NS 100000000 /* then take the GIL the slow way */


/* Drains run in whichever thread holds the GIL next: a thread that keeps
 * releasing and retaking the GIL (an event loop polling with a zero timeout)
 * would starve a helper waiting in PyGILState_Ensure for seconds, so the
 * helper first asks for a pending call, which the interpreter runs at its
 * next check between bytecodes. */
static int drain_from_pending_call(void *arg)
{
    (void)arg;
    if (S.helper_started) {
        cprof_sampler_drain(1);
        atomic_store(&S.last_drain_ns, monotonic_ns());
    }
    atomic_store(&S.drain_pending, 0);
    return 0;
}

/* Signals that a fault in the thread itself raises: blocked, they would kill
 * the process without a word (and without faulthandler's report). */
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};

static void *helper_main(void *arg)
{
    (void)arg;
    S.helper_tid = (pid_t)syscall(SYS_gettid);
    atomic_store(&S.helper_ready, 1);
    int64_t asked_at = 0, next_scan = 0, wake_ns = 0;
    uint64_t tick = 0, rng = (uint64_t)monotonic_ns() | 1;
    int wall = S.cfg.mode == CPROF_MODE_WALL;
    while (!atomic_load(&S.helper_stop)) {
        int still = 0;
        /* Sleep one poll interval (wall mode: one jittered period, a tick;
         * the first one uniform over a period, as timers start), or until
         * stop wakes us. */
        int64_t now = monotonic_ns();
        if (!wall)
            wake_ns = now + S.cfg.poll_ns;
        else if (tick == 0)
            wake_ns = now + 1 + (int64_t)(xorshift_sigsafe(&rng) % (uint64_t)S.cfg.period_ns);
        else {  /* from the previous tick's time, so that wake-up delays do not add up */
            int64_t next = wake_ns + jittered_sigsafe(&rng, S.cfg.period_ns);
            wake_ns = next > now ? next : now;
        }
        struct timespec deadline = {.tv_sec = (time_t)(wake_ns / 1000000000),
                                    .tv_nsec = (long)(wake_ns % 1000000000)};
        pthread_mutex_lock(&S.helper_lock);
        if (!atomic_load(&S.helper_stop))
            pthread_cond_timedwait(&S.helper_wake, &S.helper_lock, &deadline);
        if (!atomic_load(&S.helper_stop)) {
            notice_takeover_locked();
            int64_t woke = monotonic_ns();
            if (!wall || woke >= next_scan) {
                scan_threads(1);
                next_scan = woke + S.cfg.poll_ns;
            }
            if (wall && atomic_load(&S.active))
                still = wall_tick_locked(tick++);
        }
        pthread_mutex_unlock(&S.helper_lock);
        if (atomic_load(&S.helper_stop))
            break;
        now = monotonic_ns();
        int64_t since = now - atomic_load(&S.last_drain_ns);
        if (finalizing())
            continue;
        /* Wall mode, every thread still and one's stack maybe old: no thread
         * runs Python code to take a pending call, and the GIL is free, so
         * take it now (at most every other period): that thread's wait is
         * named within a few periods, not after a drain's patience (150 ms;
         * a sleep right after a select lent it half the select). */
        int take_now = still && since >= 2 * S.cfg.period_ns;
        if (!take_now && since < DRAIN_EVERY_NS)
            continue;
        if (!take_now && !atomic_load(&S.drain_pending)) {
            atomic_store(&S.drain_pending, 1);
            asked_at = now;
            if (Py_AddPendingCall(drain_from_pending_call, NULL) != 0)
                atomic_store(&S.drain_pending, 0);  /* the queue is full: ask again */
            continue;
        }
        if (!take_now && now - asked_at < PENDING_PATIENCE_NS)
            continue;
        /* No bytecode ran for a while (the main thread is blocked in C), so
         * the GIL is probably free. Not while os.fork is on its way: the
         * thread state Ensure allocates would be half made in the child. */
        pthread_mutex_lock(&S.helper_lock);
        int gate_open = !S.forking;
        if (gate_open)
            atomic_store(&S.taking_gil, 1);
        pthread_mutex_unlock(&S.helper_lock);
        if (!gate_open)
            continue;
        PyGILState_STATE gil = PyGILState_Ensure();
        if (!atomic_load(&S.helper_stop)) {
            if (drain_gil() == 0 && snapshot_gil() < 0)
                S.drain_failed = 1;
            call_hook_gil();
            atomic_store(&S.last_drain_ns, monotonic_ns());
        }
        PyGILState_Release(gil);
        atomic_store(&S.taking_gil, 0);
        asked_at = monotonic_ns();
    }
    return NULL;
}

/* --- control (GIL held) ----------------------------------------------------------- */

static int handler_is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigprof_sigsafe;
}

static int foreign_handler(const struct sigaction *sa)
{
    if (sa->sa_flags & SA_SIGINFO)
        return sa->sa_sigaction != NULL && sa->sa_sigaction != on_sigprof_sigsafe;
    return sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN;
}

/* SIGPROF's handler is no longer cprof's (a library's own profiler, or
 * signal.signal): sampling stops for good, as cleanly as stop would, and the
 * disposition stays theirs. No timer of ours may feed their handler, and the
 * time each thread spent since its last sample is <sampling stopped>'s, not
 * that sample's. stop adds the time that followed. helper_lock held. */
static void notice_takeover_locked(void)
{
    if (atomic_load(&S.taken_over) || !atomic_load(&S.active))
        return;
    struct sigaction current;
    if (sigaction(SIGPROF, NULL, &current) != 0 || handler_is_ours(&current))
        return;
    atomic_store(&S.taken_over, 1);
    atomic_store(&S.active, 0);
    S.taken_over_ns = monotonic_ns();
    S.taken_over_clock_ns = clock_ns(S.cfg.mode == CPROF_MODE_CPU ? CLOCK_PROCESS_CPUTIME_ID
                                                                  : CLOCK_MONOTONIC);
    S.taken_over_threads = 0;
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *slot = slot_at(i);
        if (!atomic_load(&slot->live))
            continue;
        int64_t now = clock_ns(slot->clock);
        if (now >= 0)
            slot->observed_ns = now;
        unwatch_slot(slot);
        S.taken_over_threads++;
    }
}

/* The time from the takeover to now, which no sample saw: the process's CPU
 * time (cpu mode) or every watched thread's wall time (wall mode). */
static int64_t unsampled_since_takeover(void)
{
    if (S.cfg.mode == CPROF_MODE_CPU)
        return clock_ns(CLOCK_PROCESS_CPUTIME_ID) - S.taken_over_clock_ns;
    return (clock_ns(CLOCK_MONOTONIC) - S.taken_over_clock_ns) * (int64_t)S.taken_over_threads;
}

#define STUCK_PATIENCE_NS 1000000000  /* a handler takes microseconds */

/* Wait until no handler is inside, active being clear: 0, or -1 when one
 * still was after a second (its thread stopped in a debugger, say): stop must
 * not hang on it, nor free what it uses. */
static int wait_for_handlers(void)
{
    int64_t deadline = monotonic_ns() + STUCK_PATIENCE_NS;
    while (atomic_load(&S.in_flight) > 0) {
        if (monotonic_ns() > deadline)
            return -1;
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
    return 0;
}

/* Free the profile's state; with keep, leave all of it as it is for a
 * handler that may still use it (wait_for_handlers failed): the next start
 * frees it once no handler is inside, or refuses to start. */
static void release_state(int keep)
{
    S.retired = keep;
    if (keep)
        return;
    for (size_t c = 0; c < MAX_CHUNKS; c++) {
        free(atomic_load(&S.chunks[c]));
        atomic_store(&S.chunks[c], NULL);
    }
    S.n_slots = 0;
    free(S.by_tid);
    S.by_tid = NULL;
    S.n_by_tid = S.cap_by_tid = 0;
    free(S.snap);
    S.snap = NULL;
    cprof_ringbuf_free(&S.rb);
    Py_CLEAR(S.cfg.label_var);
    Py_CLEAR(S.cfg.hook);
    Py_CLEAR(S.cfg.labelset_type);
}

/* No handler records, no timer remains, no SIGPROF stays pending, and the
 * disposition is what it was before start (unless someone replaced ours). */
static void disarm(void)
{
    atomic_store_explicit(&S.active, 0, memory_order_release);
    pthread_mutex_lock(&S.helper_lock);
    R.n = 0;
    R.mode = S.cfg.mode;
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *slot = slot_at(i);
        if (!atomic_load(&slot->live))
            continue;
        int64_t now = clock_ns(slot->clock);
        if (now >= 0)
            slot->observed_ns = now;
        if (!atomic_load(&S.taken_over))
            remember_reading(slot->tid, slot->observed_ns);
        unwatch_slot(slot);
    }
    pthread_mutex_unlock(&S.helper_lock);
    struct sigaction current, ignore;
    sigaction(SIGPROF, NULL, &current);
    if (handler_is_ours(&current)) {
        /* Setting SIG_IGN discards SIGPROFs still pending in any thread, which
         * the default disposition would otherwise turn into process death. */
        memset(&ignore, 0, sizeof ignore);
        ignore.sa_handler = SIG_IGN;
        sigaction(SIGPROF, &ignore, NULL);
        sigaction(SIGPROF, &S.previous, NULL);
    }
}

/* In the child, at fork: only this thread exists. The helper thread may have
 * held helper_lock, and a drain the parent queued as a pending call may run
 * before cprof_sampler_after_fork_child: the lock must be usable at once. */
static int fork_locked;

/* Open or close the helper's way to the GIL; 0 where no helper of this
 * process runs. */
static int set_forking(int forking)
{
    if (!S.helper_started || getpid() != S.pid)
        return 0;
    pthread_mutex_lock(&S.helper_lock);
    S.forking = forking;
    pthread_mutex_unlock(&S.helper_lock);
    return 1;
}

void cprof_sampler_before_fork(void)
{
    if (!set_forking(1))
        return;
    /* A helper already in PyGILState_Ensure waits for the GIL this thread
     * holds: let it through, and wait until it has let go of its thread state
     * (unless this is the helper, forking from a hook it runs). */
    while (atomic_load(&S.taking_gil) && !pthread_equal(pthread_self(), S.helper)) {
        Py_BEGIN_ALLOW_THREADS
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
        Py_END_ALLOW_THREADS
    }
}

void cprof_sampler_after_fork_parent(void)
{
    set_forking(0);
}

/* Before fork, the helper thread is kept out of its work (the slot table, the
 * thread scan and what they allocate), so that the child's copy of them is
 * whole and no allocator lock is held by a thread the child will not have. The
 * forking thread holds the GIL, and the helper never waits for the GIL while
 * it holds helper_lock: no deadlock. */
static void at_fork_prepare(void)
{
    if (S.helper_started && getpid() == S.pid) {
        pthread_mutex_lock(&S.helper_lock);
        fork_locked = 1;
    }
}

static void at_fork_parent(void)
{
    if (fork_locked) {
        fork_locked = 0;
        pthread_mutex_unlock(&S.helper_lock);
    }
}

static void at_fork_child(void)
{
    atomic_store(&S.active, 0);
    atomic_store(&S.taking_gil, 0);
    S.forking = 0;
    fork_locked = 0;
    pthread_mutex_init(&S.helper_lock, NULL);
}

int cprof_sampler_running(void)
{
    return S.helper_started;
}

int cprof_sampler_start(const cprof_sampler_config_t *cfg, cprof_error_t *err)
{
    static int atfork_registered;
    if (S.helper_started)
        return cprof_fail(err, CPROF_E_BUSY, "cpu profiling already in use: stop the running "
                          "CPU profile first (one per process, as in Go)");
    if (cfg->period_ns < 1000 || cfg->max_depth < 1 || cfg->buffer_samples < 2)
        return cprof_fail(err, CPROF_E_BUSY, "invalid sampler configuration");
    if (S.retired) {
        if (atomic_load(&S.in_flight) > 0)
            return cprof_fail(err, CPROF_E_BUSY, "the previous CPU profile's signal handler "
                              "has not returned (is a thread stopped inside it, in a "
                              "debugger?): try again once it has");
        release_state(0);
    }
    struct sigaction current;
    sigaction(SIGPROF, NULL, &current);
    if (foreign_handler(&current))
        return cprof_fail(err, CPROF_E_SIGNAL,
                          "SIGPROF already has a handler (another profiler, or "
                          "signal.signal(SIGPROF, ...)); cprof will not replace it. Restore "
                          "the default with signal.signal(signal.SIGPROF, signal.SIG_DFL) "
                          "or stop the other profiler first");
    if (cprof_frames_init() < 0 || (cfg->native && cprof_native_init() < 0))
        return CPROF_E_PYTHON;
    if (!atfork_registered && pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child) == 0)
        atfork_registered = 1;
    if (!S.helper_wake_ready) {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&S.helper_wake, &attr);
        pthread_condattr_destroy(&attr);
        S.helper_wake_ready = 1;
    }
    S.cfg = *cfg;
    Py_XINCREF(S.cfg.label_var);
    Py_XINCREF(S.cfg.hook);
    Py_XINCREF(S.cfg.labelset_type);
    S.label_hash = cfg->label_var != NULL ? cprof_frames_contextvar_hash(cfg->label_var) : 0;
    S.previous = current;
    S.threads_seen = S.timer_errors = S.drains = 0;
    S.drain_failed = 0;
    S.pid = getpid();
    S.busy_ns = cfg->period_ns / 20;
    atomic_store(&S.taken_over, 0);
    S.taken_over_threads = 0;
    S.start_ns = monotonic_ns();
    atomic_store(&S.samples, 0);
    atomic_store(&S.helper_stop, 0);
    atomic_store(&S.last_drain_ns, monotonic_ns());
    int rc = CPROF_OK;
    /* Native stacks need room for the Python frames beside the merged ones. */
    if (cprof_ringbuf_init(&S.rb, cfg->buffer_samples,
                           cfg->native ? 2 * cfg->max_depth : cfg->max_depth) < 0) {
        rc = cprof_fail(err, CPROF_E_NOMEM, "out of memory for the sample buffer");
        goto fail;
    }
    if (cprof_stacks_init(&S.stacks, cfg->max_depth) < 0) {
        rc = CPROF_E_PYTHON;
        goto fail;
    }
    if (cfg->mode == CPROF_MODE_WALL &&
        (S.snap = malloc(sizeof *S.snap + cfg->max_depth * sizeof(cprof_frame_t))) == NULL) {
        cprof_stacks_clear(&S.stacks);
        rc = cprof_fail(err, CPROF_E_NOMEM, "out of memory for the sample buffer");
        goto fail;
    }
    if (cprof_frames_watch_code(on_code_death) < 0) {
        cprof_stacks_clear(&S.stacks);
        rc = CPROF_E_PYTHON;
        goto fail;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigprof_sigsafe;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    atomic_store_explicit(&S.active, 1, memory_order_release);
    S.helper_tid = 0;
    pthread_mutex_lock(&S.helper_lock);
    /* Every thread is timed from the start. Twice: a thread that exits while
     * the listing is read can hide the threads after it from that look, and a
     * thread first found by a later scan would be counted from its birth. */
    R.active = cfg->resume && R.mode == cfg->mode;
    scan_threads(0);
    scan_threads(0);
    R.active = 0;
    R.n = 0;
    pthread_mutex_unlock(&S.helper_lock);
    if (snapshot_gil() < 0)  /* wall mode: where every other thread is */
        S.drain_failed = 1;
    atomic_store(&S.helper_ready, 0);
    /* The helper is born with every signal blocked but those a fault raises:
     * a signal sent to the process goes to any thread that does not block
     * it, and taken here it would interrupt none of the program's waits (a
     * main thread in lock.acquire() waiting for SIGTERM's handler waited for
     * ever). Blocked before the thread exists, so no signal comes in between. */
    sigset_t all, old;
    sigfillset(&all);
    for (size_t i = 0; i < sizeof fault_signals / sizeof *fault_signals; i++)
        sigdelset(&all, fault_signals[i]);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int created = pthread_create(&S.helper, NULL, helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (created != 0) {
        rc = cprof_fail(err, CPROF_E_OS, "could not start cprof's sampler thread: %s",
                        strerror(created));
        disarm();
        cprof_frames_unwatch_code(on_code_death);
        cprof_stacks_clear(&S.stacks);
        release_state(wait_for_handlers() < 0);
        return rc;
    }
    /* Return once the thread runs our code: a thread still being made (by
     * the C library, or ASan's, which allocates there) while the program
     * forks leaves the child an allocator lock nobody will release. */
    while (!atomic_load(&S.helper_ready)) {
        struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
    }
    S.helper_started = 1;
    return CPROF_OK;
fail:
    release_state(0);  /* no handler was installed yet */
    return rc;
}

int cprof_sampler_stop(cprof_stacks_t *out, cprof_sampler_stats_t *stats, cprof_error_t *err)
{
    if (!S.helper_started)
        return cprof_fail(err, CPROF_E_BUSY, "no CPU profile is running");
    pthread_mutex_lock(&S.helper_lock);
    atomic_store(&S.helper_stop, 1);
    pthread_cond_signal(&S.helper_wake);
    pthread_mutex_unlock(&S.helper_lock);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(S.helper, NULL);
    Py_END_ALLOW_THREADS
    S.helper_started = 0;
    pthread_mutex_lock(&S.helper_lock);
    notice_takeover_locked();
    pthread_mutex_unlock(&S.helper_lock);
    disarm();
    int stuck = wait_for_handlers() < 0;
    int rc = drain_gil();
    uint64_t lost = atomic_load(&S.rb.lost);
    if (rc == 0 && lost > 0)
        rc = cprof_stacks_add_synthetic(&S.stacks, CPROF_FUNC_LOST, (int64_t)lost,
                                        (int64_t)lost * S.cfg.period_ns);
    int taken_over = atomic_load(&S.taken_over);
    if (rc == 0 && taken_over) {
        int64_t after = unsampled_since_takeover();
        if (after > 0)
            rc = cprof_stacks_add_synthetic(&S.stacks, CPROF_FUNC_STOPPED,
                                            after / S.cfg.period_ns, after);
    }
    cprof_frames_unwatch_code(on_code_death);
    stats->samples = atomic_load(&S.samples);
    stats->lost = lost;
    stats->threads_seen = S.threads_seen;
    stats->timer_errors = S.timer_errors;
    stats->drains = S.drains;
    stats->taken_over_after_ns = taken_over ? S.taken_over_ns - S.start_ns : -1;
    stats->handlers_stuck = stuck;
    *out = S.stacks;
    memset(&S.stacks, 0, sizeof S.stacks);
    release_state(stuck);
    if (rc != 0)
        return cprof_fail(err, CPROF_E_NOMEM, "out of memory while collecting samples");
    return CPROF_OK;
}

int cprof_sampler_new_coroutines(size_t *cursor, int (*visit)(uintptr_t, void *), void *arg)
{
    for (; *cursor < S.stacks.n_aggs; (*cursor)++) {
        uintptr_t coroutine = S.stacks.aggs[*cursor].coroutine;
        if (coroutine != 0) {
            int rc = visit(coroutine, arg);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

void cprof_sampler_thread_started(void)
{
    if (!S.helper_started)
        return;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&S.helper_lock);
    int known = 0;
    for (size_t i = 0; i < S.n_slots && !known; i++) {
        slot_t *slot = slot_at(i);
        known = slot->tid == tid && atomic_load(&slot->live);
    }
    if (!known && !atomic_load(&S.taken_over))
        watch_thread(tid, 1);
    pthread_mutex_unlock(&S.helper_lock);
}

void cprof_sampler_thread_exiting(void)
{
    if (!S.helper_started)
        return;
    /* The thread's CPU clock answers only while it lives: take a last reading
     * now, for the tail the scan queues once the thread is gone. The slot stays
     * watched until then. The thread outlives its Python code (its state and
     * thread-locals are freed on its way out, which may run __del__): taken off
     * here, it was found by the next scan as a new thread, timed from its birth
     * again, and all its CPU time counted twice. */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&S.helper_lock);
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *slot = slot_at(i);
        if (slot->tid != tid || !atomic_load(&slot->live))
            continue;
        int64_t now = clock_ns(slot->clock);
        if (now > slot->observed_ns)
            slot->observed_ns = now;
        break;
    }
    pthread_mutex_unlock(&S.helper_lock);
}

uint64_t cprof_sampler_sample_count(void)
{
    return S.helper_started ? atomic_load(&S.samples) : 0;
}

#ifdef CPROF_BENCH_HOOKS
double cprof_sampler_measure_record_ns(size_t n, size_t max_depth, PyObject *label_var,
                                       int native)
{
    if (S.helper_started || S.retired || n == 0 || cprof_frames_init() < 0 ||
        (native && cprof_native_init() < 0))
        return -1;
    if (cprof_ringbuf_init(&S.rb, 16, native ? 2 * max_depth : max_depth) < 0)
        return -1;
    S.cfg.max_depth = max_depth;
    S.cfg.native = native;
    S.cfg.label_var = label_var;
    S.label_hash = label_var != NULL ? cprof_frames_contextvar_hash(label_var) : 0;
    slot_t slot = {.tid = (pid_t)syscall(SYS_gettid)};
    int64_t start = monotonic_ns();
    ucontext_t uc;  /* native: unwind from here, as from a signal's context */
    /* getcontext returns twice: a counter in a register could be clobbered. */
    for (volatile size_t i = 0; i < n; i++) {
        if (native)
            getcontext(&uc);
        record_sigsafe(&slot, 1, native ? &uc : NULL);
        cprof_ringbuf_release(&S.rb);  /* keep the buffer from filling */
    }
    int64_t elapsed = monotonic_ns() - start;
    cprof_ringbuf_free(&S.rb);
    S.cfg.label_var = NULL;
    S.cfg.native = 0;
    atomic_store(&S.samples, 0);
    return (double)elapsed / (double)n;
}
#endif

int cprof_sampler_drain(int call_hook)
{
    if (!S.helper_started || getpid() != S.pid)
        return 0;  /* none runs, or it is the parent's (a fork's child, not yet told) */
    pthread_mutex_lock(&S.helper_lock);
    notice_takeover_locked();
    pthread_mutex_unlock(&S.helper_lock);
    atomic_store(&S.profiler_tid, (pid_t)syscall(SYS_gettid));
    int rc = drain_gil();
    if (rc == 0 && snapshot_gil() < 0) {
        S.drain_failed = 1;
        rc = -1;
    }
    if (call_hook)
        call_hook_gil();
    atomic_store(&S.profiler_tid, 0);
    return rc;
}

void cprof_sampler_after_fork_child(void)
{
    if (!S.helper_started && S.rb.slots == NULL)
        return;
    /* The helper thread and the timers stayed in the parent. */
    atomic_store(&S.active, 0);
    S.helper_started = 0;
    pthread_mutex_init(&S.helper_lock, NULL);
    S.helper_wake_ready = 0;  /* the parent's helper may have been waiting on it */
    for (size_t i = 0; i < S.n_slots; i++) {
        slot_t *slot = slot_at(i);
        atomic_store(&slot->live, 0);
        slot->tid = 0;
    }
    struct sigaction current;
    sigaction(SIGPROF, NULL, &current);
    if (handler_is_ours(&current))
        sigaction(SIGPROF, &S.previous, NULL);
    cprof_frames_unwatch_code(on_code_death);
    cprof_stacks_clear(&S.stacks);
    atomic_store(&S.in_flight, 0);  /* handlers in flight were in the parent's threads */
    release_state(0);
}
