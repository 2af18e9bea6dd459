/*
 * proc.h - child processes for the integration suites: the daemon, the
 * `swload echo` backends and one-shot commands (`shockwave -t`, `curl`).
 *
 * Every child's stdout and stderr go to a log file in a private temporary
 * folder; tests wait for a line ("ready", "listening on", "reloaded") by
 * polling that file with a deadline, so nothing here can block forever.
 *
 * Cleanup: every spawned pid is recorded in a process-wide table. An atexit
 * handler (Check's forked test child exits through exit(), also after a
 * failed assertion) sends SIGTERM, then SIGKILL after a short grace, to every
 * child still alive and removes the temporary folder. Children also get
 * PR_SET_PDEATHSIG(SIGKILL) so they die with the test process even when it is
 * killed (Check's timeout); spawn from the main thread only, since the death
 * signal follows the thread that forked. Children stay in the test's process
 * group, which Check kills as a whole on timeout.
 *
 * Config templates: tests/conf/NAME.conf may hold @KEY@ placeholders that
 * sw_test_conf_render() replaces from NULL-terminated key/value lists.
 *
 * Threading: spawn, stop and render from the main thread; the log readers are
 * safe from any thread (they only read the file).
 */
#ifndef SW_TEST_PROC_H
#define SW_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sw_test_proc {
    pid_t pid;          /* child pid, 0 when not running */
    int status;         /* wait status once reaped */
    bool reaped;        /* status is valid */
    char log_path[512]; /* file holding the child's stdout and stderr */
    char conf[512];     /* the daemon's `-c FILE`, "" for other programs */
};

/* The private temporary folder of this test process (created on first use,
 * removed at exit). */
const char *sw_test_tmpdir(void);

/* Environment variable or abort with a message: SW_SHOCKWAVE, SW_SWLOAD,
 * SW_SOURCE_ROOT. */
const char *sw_test_env(const char *name);

/* The path of the built plugin NAME (SW_BUILD_ROOT/plugins/NAME/NAME.so)
 * into out; returns out. */
char *sw_test_plugin_so(const char *name, char *out, size_t n);

/*
 * Start argv[0] (a path) with argv; stdout and stderr go to a new log file
 * whose name starts with `tag`. Returns false when fork/exec set-up failed.
 */
bool sw_test_proc_spawn(struct sw_test_proc *p, const char *tag,
                        char *const argv[]);

/* True while the child has not exited (reaps it when it has). */
bool sw_test_proc_alive(struct sw_test_proc *p);

/*
 * Wait until the log holds `needle` at or after byte `from`. Returns the
 * offset just past the match, or -1 on timeout or when the child exits
 * without printing it.
 */
long sw_test_proc_wait_log(struct sw_test_proc *p, const char *needle,
                           long from, int timeout_ms);

/* The first line of the log at or after byte `from` (a line start) that
 * holds `needle`, waited for as sw_test_proc_wait_log: malloc'd, without
 * its newline; NULL on timeout. */
char *sw_test_proc_log_line(struct sw_test_proc *p, long from,
                            const char *needle, int timeout_ms);

/* The whole log as a NUL-terminated malloc'd string (never NULL). */
char *sw_test_proc_log(const struct sw_test_proc *p);

/* Current size of the log: a mark for sw_test_proc_wait_log(). */
long sw_test_proc_log_size(const struct sw_test_proc *p);

/* Count lines of the log after `from` that contain every one of the
 * NULL-terminated needles. */
int sw_test_proc_log_count(const struct sw_test_proc *p, long from, ...)
    __attribute__((sentinel));

/* Copy the log to stderr, prefixed, so a failing test shows what happened. */
void sw_test_proc_dump(const struct sw_test_proc *p);

/* Send a signal; false when the child is gone. */
bool sw_test_proc_signal(struct sw_test_proc *p, int sig);

/* Wait up to timeout_ms for exit. Returns true and sets *status (if not
 * NULL) once reaped. */
bool sw_test_proc_wait(struct sw_test_proc *p, int timeout_ms, int *status);

/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the wait status
 * (or -1 when nothing was running). */
int sw_test_proc_stop(struct sw_test_proc *p, int timeout_ms);

/*
 * Run a command to completion with a deadline (SIGKILL when passed), capture
 * its stdout and stderr together. Returns the exit code, or -1 when it was
 * killed or failed to start. *out (if not NULL) gets a malloc'd string.
 */
int sw_test_run(char *const argv[], int timeout_ms, char **out);

/* The same for a /bin/sh command line (printf-formatted, stdin from
 * /dev/null unless it pipes) with a 60 s deadline. */
int sw_test_shell(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The path of program `name` on PATH (the shell's `command -v`) into
 * path[cap]; false when there is none. */
bool sw_test_which(const char *name, char *path, size_t cap);

/* Peak resident set (VmHWM) of a process in KiB, or -1. */
long sw_test_proc_hwm_kb(pid_t pid);

/*
 * Render tests/conf/<name> into `out_path`, replacing each @KEY@ with its
 * value from `kv` (KEY, VALUE, KEY, VALUE, ..., NULL). Unknown @KEY@ is an
 * error. Returns false (with a message on stderr) on failure.
 */
bool sw_test_conf_render(const char *name, const char *out_path,
                         const char *const *kv);

/* Render tests/conf/<name> with `kv` into the temporary folder (as
 * check-<name>) and run `shockwave -t -c` on it: its exit code (-1 when
 * rendering failed), *out its output (malloc'd, never NULL). */
int sw_test_conf_check(const char *name, const char *const *kv, char **out);

/*
 * The engine switch (README.md, "Testing on both engines"): with
 * SW_TEST_IO_ENGINE=epoll or io_uring in the environment, every
 * configuration the suites hand the daemon runs on that engine.
 *
 * sw_test_io_engine() is that engine, "epoll" (the daemon's default) when
 * the variable is unset or empty; any other value aborts the test with a
 * message.
 *
 * sw_test_conf_engine() ends the file at `path` with `io_engine ENGINE;`.
 * The line goes last, at the top level, so every line and column of the
 * file stays where it was (tests match errors by position). Left as it is:
 * without the variable; a file outside sw_test_tmpdir() (tests/conf/ in
 * the source tree); and a file that, with the line, does not load
 * (sw_conf_load_string: a file made to fail, or one that names its engine
 * itself). The daemon gets every file through it: sw_test_proc_spawn()
 * calls it on the `-c FILE` of SW_SHOCKWAVE (start, -t and -T) and
 * sw_test_proc_signal() again before a SIGHUP, so re-rendered files keep
 * the engine across reloads. False only when the file could not be
 * rewritten.
 *
 * The kernel relay switch works the same way: with SW_TEST_KERNEL_RELAY=on
 * (`meson test --setup kernel_relay`) the file also gets
 * `ws_kernel_relay on;`, the default of every route that does not say.
 */
const char *sw_test_io_engine(void);
bool sw_test_on_io_uring(void); /* sw_test_io_engine() is io_uring */
bool sw_test_conf_engine(const char *path);
bool sw_test_kernel_relay(void); /* SW_TEST_KERNEL_RELAY=on */

/* Write text to a file. */
bool sw_test_write_file(const char *path, const char *text);

/*
 * Start `swload echo --listen 127.0.0.1:P --name NAME` on a free port and
 * wait for "listening on". *port receives P. Retries on a port race.
 */
bool sw_test_backend_start(struct sw_test_proc *p, const char *name, int *port);

/* A running daemon with its listener and admin ports. */
struct sw_test_gw {
    struct sw_test_proc proc; /* the shockwave process */
    int port;                 /* `listen` port (@PORT@) */
    int admin_port;           /* `admin` port (@ADMIN@) */
    char conf_path[512];      /* rendered configuration file */
    char vars[16][2][128];    /* caller's key/values, kept for re-renders */
    size_t nvars;             /* pairs in vars */
};

/*
 * Pick ports for @PORT@ and @ADMIN@, render tests/conf/<conf_name> with them
 * and `kv`, start `shockwave -c FILE` and wait for "ready". Dumps the log on
 * failure. Returns false when the daemon did not become ready in time.
 */
bool sw_test_gw_start(struct sw_test_gw *g, const char *conf_name,
                      const char *const *kv);

/* Re-render the config file of a running daemon from another template and
 * key/values, keeping @PORT@ and @ADMIN@ (for reload tests). */
bool sw_test_gw_render(struct sw_test_gw *g, const char *conf_name,
                       const char *const *kv);

/* Stop the daemon gracefully (SIGTERM, then SIGKILL after 5 s). */
int sw_test_gw_stop(struct sw_test_gw *g);

/* The same, and true when it exited 0; otherwise its log is copied to
 * stderr first. *status receives the wait status. */
bool sw_test_gw_stop_clean(struct sw_test_gw *g, int *status);

/* The usual fixture teardown: SIGTERM the daemon, stop `backend` (NULL:
 * none) whatever happened, then assert that the daemon exited 0. */
void sw_test_gw_teardown(struct sw_test_gw *g, struct sw_test_proc *backend);

/* Start Debian's haproxy (`haproxy -db`) on the configuration `cfg_text`
 * (written to the test's folder) and wait until each of the n `ports`
 * accepts a connection. Fails the test when haproxy is missing, exits or
 * does not listen in time (its log copied to stderr). */
void sw_test_haproxy_start(struct sw_test_proc *p, const char *cfg_text,
                           const int *ports, size_t n);

/* The port as a string in a static per-call buffer ring (for kv lists). */
const char *sw_test_itoa(long v);

#endif
