/*
 * proc.c - child processes, their logs and config templates (see proc.h).
 *
 * Owns the process-wide table of spawned children and the temporary folder;
 * both are cleaned by an atexit handler registered on first use, and only by
 * the process that created them (Check forks test children, which inherit
 * the table of a parent fixture but must not kill the parent's children).
 */
#include "proc.h"
#include "support.h"
#include "net.h"

#include <shockwave/conf.h>
#include <shockwave/core.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64

struct child_slot {
    pid_t pid;   /* child, 0 = free slot */
    pid_t owner; /* the process that spawned it */
};

static struct child_slot children[MAX_CHILDREN]; /* every spawned child */
static char tmpdir[256];                         /* "" until created */
static pid_t tmpdir_owner;                       /* creator of tmpdir */
static bool atexit_done;                         /* handler registered */
static unsigned log_seq;                         /* unique log names */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void
cleanup_at_exit(void)
{
    pid_t self = getpid();
    bool any = false;
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid > 0 && children[i].owner == self) {
            if (kill(children[i].pid, SIGTERM) == 0) {
                any = true;
            }
        }
    }
    /* Give children up to 2 s to exit on SIGTERM, then SIGKILL. */
    uint64_t deadline = sw_now_ms() + 2000;
    while (any && sw_now_ms() < deadline) {
        any = false;
        for (size_t i = 0; i < MAX_CHILDREN; i++) {
            if (children[i].pid <= 0 || children[i].owner != self) {
                continue;
            }
            pid_t r = waitpid(children[i].pid, NULL, WNOHANG);
            if (r == children[i].pid || (r < 0 && errno == ECHILD)) {
                children[i].pid = 0;
            } else {
                any = true;
            }
        }
        if (any) {
            sw_test_sleep_ms(10);
        }
    }
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid > 0 && children[i].owner == self) {
            kill(children[i].pid, SIGKILL);
            waitpid(children[i].pid, NULL, 0);
            children[i].pid = 0;
        }
    }
    if (tmpdir[0] != '\0' && tmpdir_owner == self &&
        getenv("SW_TEST_KEEP") == NULL) {
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void
ensure_atexit(void)
{
    if (!atexit_done) {
        atexit(cleanup_at_exit);
        atexit_done = true;
    }
}

static void
track(pid_t pid)
{
    ensure_atexit();
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid == 0) {
            children[i].pid = pid;
            children[i].owner = getpid();
            return;
        }
    }
    fprintf(stderr, "proc: child table full, killing %d\n", (int)pid);
    kill(pid, SIGKILL);
}

static void
untrack(pid_t pid)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid == pid) {
            children[i].pid = 0;
        }
    }
}

const char *
sw_test_tmpdir(void)
{
    if (tmpdir[0] != '\0' && tmpdir_owner == getpid()) {
        return tmpdir;
    }
    ensure_atexit();
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    snprintf(tmpdir, sizeof(tmpdir), "%s/swtest.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        fprintf(stderr, "proc: mkdtemp %s: %s\n", tmpdir, strerror(errno));
        abort();
    }
    tmpdir_owner = getpid();
    return tmpdir;
}

const char *
sw_test_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr,
                "proc: environment variable %s is not set "
                "(run through `meson test`)\n",
                name);
        abort();
    }
    return v;
}

char *
sw_test_plugin_so(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/plugins/%s/%s.so", sw_test_env("SW_BUILD_ROOT"), name,
             name);
    return out;
}

bool
sw_test_proc_spawn(struct sw_test_proc *p, const char *tag, char *const argv[])
{
    memset(p, 0, sizeof(*p));
    snprintf(p->log_path, sizeof(p->log_path), "%s/%s.%u.%d.log",
             sw_test_tmpdir(), tag, log_seq++, (int)getpid());
    const char *daemon = getenv("SW_SHOCKWAVE");
    for (size_t i = 1; daemon != NULL && strcmp(argv[0], daemon) == 0 &&
                       argv[i] != NULL && argv[i + 1] != NULL;
         i++) {
        if (strcmp(argv[i], "-c") == 0) {
            snprintf(p->conf, sizeof(p->conf), "%s", argv[i + 1]);
            if (!sw_test_conf_engine(p->conf)) {
                return false;
            }
        }
    }
    int fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "proc: open %s: %s\n", p->log_path, strerror(errno));
        return false;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return false;
    }
    if (pid == 0) {
        /* Die with the test process, even when it is SIGKILLed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    p->pid = pid;
    track(pid);
    return true;
}

static void
reap(struct sw_test_proc *p, int status)
{
    p->status = status;
    p->reaped = true;
    untrack(p->pid);
    p->pid = 0;
}

bool
sw_test_proc_alive(struct sw_test_proc *p)
{
    if (p->pid <= 0) {
        return false;
    }
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        reap(p, st);
        return false;
    }
    if (r < 0 && errno == ECHILD) {
        reap(p, 0);
        return false;
    }
    return true;
}

static char *
read_file_from(const char *path, long from, long *size_out)
{
    char *text = NULL;
    size_t len = 0;
    size_t cap = 0;
    FILE *f = fopen(path, "rb");
    if (f != NULL) {
        if (from > 0) {
            fseek(f, from, SEEK_SET);
        }
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
            if (len + n + 1 > cap) {
                cap = (len + n + 1) * 2;
                text = realloc(text, cap);
                if (text == NULL) {
                    abort();
                }
            }
            memcpy(text + len, chunk, n);
            len += n;
        }
        fclose(f);
    }
    if (text == NULL) {
        text = calloc(1, 1);
        if (text == NULL) {
            abort();
        }
    }
    text[len] = '\0';
    if (size_out != NULL) {
        *size_out = from + (long)len;
    }
    return text;
}

char *
sw_test_proc_log(const struct sw_test_proc *p)
{
    return read_file_from(p->log_path, 0, NULL);
}

long
sw_test_proc_log_size(const struct sw_test_proc *p)
{
    struct stat st;
    if (stat(p->log_path, &st) != 0) {
        return 0;
    }
    return (long)st.st_size;
}

long
sw_test_proc_wait_log(struct sw_test_proc *p, const char *needle, long from,
                      int timeout_ms)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        /* Check liveness before reading, so output printed right before an
         * exit is still seen. */
        bool alive = sw_test_proc_alive(p);
        char *text = read_file_from(p->log_path, from, NULL);
        char *hit = strstr(text, needle);
        long off =
            hit != NULL ? from + (long)(hit - text) + (long)strlen(needle) : -1;
        free(text);
        if (off >= 0) {
            return off;
        }
        if (!alive || sw_now_ms() >= deadline) {
            return -1;
        }
        sw_test_sleep_ms(10);
    }
}

char *
sw_test_proc_log_line(struct sw_test_proc *p, long from, const char *needle,
                      int timeout_ms)
{
    long end = sw_test_proc_wait_log(p, needle, from, timeout_ms);
    if (end < 0) {
        return NULL;
    }
    char *text = read_file_from(p->log_path, from, NULL);
    char *hit = strstr(text, needle);
    if (hit == NULL) {
        free(text);
        return NULL;
    }
    while (hit > text && hit[-1] != '\n') {
        hit--;
    }
    char *line = strndup(hit, strcspn(hit, "\n"));
    free(text);
    if (line == NULL) {
        abort();
    }
    return line;
}

int
sw_test_proc_log_count(const struct sw_test_proc *p, long from, ...)
{
    const char *needles[16];
    size_t nn = 0;
    va_list ap;
    va_start(ap, from);
    const char *s;
    while ((s = va_arg(ap, const char *)) != NULL && nn < 16) {
        needles[nn++] = s;
    }
    va_end(ap);

    char *text = read_file_from(p->log_path, from, NULL);
    int count = 0;
    char *line = text;
    while (*line != '\0') {
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        bool all = true;
        for (size_t i = 0; i < nn; i++) {
            if (strstr(line, needles[i]) == NULL) {
                all = false;
                break;
            }
        }
        if (all) {
            count++;
        }
        if (nl == NULL) {
            break;
        }
        line = nl + 1;
    }
    free(text);
    return count;
}

void
sw_test_proc_dump(const struct sw_test_proc *p)
{
    char *text = sw_test_proc_log(p);
    fprintf(stderr, "---- %s ----\n%s---- end ----\n", p->log_path, text);
    free(text);
}

bool
sw_test_proc_signal(struct sw_test_proc *p, int sig)
{
    if (!sw_test_proc_alive(p)) {
        return false;
    }
    if (sig == SIGHUP && p->conf[0] != '\0' && !sw_test_conf_engine(p->conf)) {
        return false;
    }
    return kill(p->pid, sig) == 0;
}

bool
sw_test_proc_wait(struct sw_test_proc *p, int timeout_ms, int *status)
{
    uint64_t deadline = sw_now_ms() + (uint64_t)timeout_ms;
    while (sw_test_proc_alive(p)) {
        if (sw_now_ms() >= deadline) {
            return false;
        }
        sw_test_sleep_ms(5);
    }
    if (status != NULL) {
        *status = p->status;
    }
    return p->reaped;
}

int
sw_test_proc_stop(struct sw_test_proc *p, int timeout_ms)
{
    if (!sw_test_proc_alive(p)) {
        return p->reaped ? p->status : -1;
    }
    kill(p->pid, SIGTERM);
    int st;
    if (sw_test_proc_wait(p, timeout_ms, &st)) {
        return st;
    }
    kill(p->pid, SIGKILL);
    sw_test_proc_wait(p, 5000, &st);
    return st;
}

int
sw_test_run(char *const argv[], int timeout_ms, char **out)
{
    struct sw_test_proc p;
    if (out != NULL) {
        *out = NULL;
    }
    if (!sw_test_proc_spawn(&p, "run", argv)) {
        return -1;
    }
    int st = 0;
    bool done = sw_test_proc_wait(&p, timeout_ms, &st);
    if (!done) {
        fprintf(stderr, "proc: %s did not finish in %d ms, killing it\n",
                argv[0], timeout_ms);
        sw_test_proc_stop(&p, 100);
    }
    if (out != NULL) {
        *out = sw_test_proc_log(&p);
    }
    if (!done || !WIFEXITED(st)) {
        return -1;
    }
    return WEXITSTATUS(st);
}

bool
sw_test_which(const char *name, char *path, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v '%s'", name);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    char *out = NULL;
    int rc = sw_test_run(argv, 10000, &out);
    path[0] = '\0';
    if (rc == 0 && out != NULL && out[0] == '/') {
        snprintf(path, cap, "%.*s", (int)strcspn(out, "\n"), out);
    }
    free(out);
    return path[0] != '\0';
}

long
sw_test_proc_hwm_kb(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *text = read_file_from(path, 0, NULL);
    long kb = -1;
    char *hit = strstr(text, "VmHWM:");
    if (hit != NULL) {
        kb = strtol(hit + 6, NULL, 10);
    }
    free(text);
    return kb;
}

bool
sw_test_write_file(const char *path, const char *text)
{
    /* Write a sibling and rename it, so a reloading daemon never reads a
     * half-written file. */
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        fprintf(stderr, "proc: fopen %s: %s\n", tmp, strerror(errno));
        return false;
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    return ok;
}

const char *
sw_test_io_engine(void)
{
    const char *e = getenv("SW_TEST_IO_ENGINE");
    if (e == NULL || e[0] == '\0') {
        return "epoll";
    }
    if (strcmp(e, "epoll") != 0 && strcmp(e, "io_uring") != 0) {
        fprintf(stderr,
                "proc: SW_TEST_IO_ENGINE=%s: expected epoll or "
                "io_uring\n",
                e);
        abort();
    }
    return e;
}

bool
sw_test_on_io_uring(void)
{
    return strcmp(sw_test_io_engine(), "io_uring") == 0;
}

bool
sw_test_kernel_relay(void)
{
    const char *e = getenv("SW_TEST_KERNEL_RELAY");
    return e != NULL && strcmp(e, "on") == 0;
}

bool
sw_test_conf_engine(const char *path)
{
    const char *e = getenv("SW_TEST_IO_ENGINE");
    const char *tmp = sw_test_tmpdir();
    size_t n = strlen(tmp);
    bool engine = e != NULL && e[0] != '\0';
    if ((!engine && !sw_test_kernel_relay()) || strncmp(path, tmp, n) != 0 ||
        path[n] != '/') {
        return true;
    }
    char *text = read_file_from(path, 0, NULL);
    size_t len = strlen(text);
    size_t cap = len + 128;
    char *more = malloc(cap);
    char dir[512];
    if (more == NULL) {
        abort();
    }
    /* The newline first: the file may end in a comment without one. */
    snprintf(more, cap, "%s\n%s%s%s%s", text, engine ? "io_engine " : "",
             engine ? sw_test_io_engine() : "",
             engine ? "; # SW_TEST_IO_ENGINE\n" : "",
             sw_test_kernel_relay()
                 ? "ws_kernel_relay on; # SW_TEST_KERNEL_RELAY\n"
                 : "");
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    char err[256];
    struct sw_conf *cf = sw_conf_load_string(more, path, dir, err, sizeof(err));
    /* A new file replaces the old one: it keeps the old one's mode. */
    struct stat st;
    bool ok =
        cf == NULL || (stat(path, &st) == 0 && sw_test_write_file(path, more) &&
                       chmod(path, st.st_mode & 07777) == 0);
    sw_conf_unref(cf);
    free(more);
    free(text);
    return ok;
}

bool
sw_test_conf_render(const char *name, const char *out_path,
                    const char *const *kv)
{
    char src[768];
    snprintf(src, sizeof(src), "%s/tests/conf/%s",
             sw_test_env("SW_SOURCE_ROOT"), name);
    char *tpl = read_file_from(src, 0, NULL);
    bool ok = false;
    size_t cap = strlen(tpl) * 2 + 4096;
    size_t len = 0;
    char *res = malloc(cap);
    if (res == NULL) {
        abort();
    }
    if (tpl[0] == '\0') {
        fprintf(stderr, "proc: empty or missing template %s\n", src);
        goto done;
    }
    for (const char *s = tpl; *s != '\0';) {
        const char *end = *s == '@' ? strchr(s + 1, '@') : NULL;
        const char *val = NULL;
        size_t klen = end != NULL ? (size_t)(end - s - 1) : 0;
        bool is_key = klen > 0;
        for (size_t i = 0; is_key && i < klen; i++) {
            char ch = s[1 + i];
            if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '_')) {
                is_key = false;
            }
        }
        if (is_key) {
            for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
                if (strlen(kv[i]) == klen && memcmp(kv[i], s + 1, klen) == 0) {
                    val = kv[i + 1];
                }
            }
            if (val == NULL) {
                fprintf(stderr, "proc: %s: no value for @%.*s@\n", src,
                        (int)klen, s + 1);
                goto done;
            }
        }
        const char *piece = is_key ? val : s;
        size_t plen = is_key ? strlen(val) : 1;
        if (len + plen + 1 > cap) {
            cap = (len + plen + 1) * 2;
            res = realloc(res, cap);
            if (res == NULL) {
                abort();
            }
        }
        memcpy(res + len, piece, plen);
        len += plen;
        s = is_key ? end + 1 : s + 1;
    }
    res[len] = '\0';
    ok = sw_test_write_file(out_path, res);
done:
    free(res);
    free(tpl);
    return ok;
}

int
sw_test_conf_check(const char *name, const char *const *kv, char **out)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/check-%s", sw_test_tmpdir(), name);
    *out = NULL;
    if (!sw_test_conf_render(name, path, kv)) {
        *out = strdup("");
        return -1;
    }
    char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-t", "-c", path,
                    NULL};
    return sw_test_run(argv, 10000, out);
}

int
sw_test_shell(char **out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return sw_test_run(argv, 60000, out);
}

const char *
sw_test_itoa(long v)
{
    static char ring[32][24];
    static unsigned next;
    char *s = ring[next++ % 32];
    snprintf(s, sizeof(ring[0]), "%ld", v);
    return s;
}

bool
sw_test_backend_start(struct sw_test_proc *p, const char *name, int *port)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int prt = sw_test_free_port();
        char listen[64];
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", prt);
        char *argv[] = {(char *)sw_test_env("SW_SWLOAD"),
                        "echo",
                        "--listen",
                        listen,
                        "--name",
                        (char *)name,
                        NULL};
        char tag[64];
        snprintf(tag, sizeof(tag), "backend-%s", name);
        if (!sw_test_proc_spawn(p, tag, argv)) {
            return false;
        }
        if (sw_test_proc_wait_log(p, "listening on", 0, 10000) >= 0) {
            *port = prt;
            return true;
        }
        sw_test_proc_dump(p);
        sw_test_proc_stop(p, 1000);
    }
    return false;
}

static void
gw_kv(const struct sw_test_gw *g, const char **kv, size_t cap)
{
    size_t n = 0;
    kv[n++] = "PORT";
    kv[n++] = sw_test_itoa(g->port);
    kv[n++] = "ADMIN";
    kv[n++] = sw_test_itoa(g->admin_port);
    for (size_t i = 0; i < g->nvars && n + 2 < cap; i++) {
        kv[n++] = g->vars[i][0];
        kv[n++] = g->vars[i][1];
    }
    kv[n] = NULL;
}

static void
gw_keep_vars(struct sw_test_gw *g, const char *const *kv)
{
    g->nvars = 0;
    for (size_t i = 0; kv != NULL && kv[i] != NULL && g->nvars < 16; i += 2) {
        snprintf(g->vars[g->nvars][0], sizeof(g->vars[0][0]), "%s", kv[i]);
        snprintf(g->vars[g->nvars][1], sizeof(g->vars[0][1]), "%s", kv[i + 1]);
        g->nvars++;
    }
}

bool
sw_test_gw_render(struct sw_test_gw *g, const char *conf_name,
                  const char *const *kv)
{
    const char *all[40];
    gw_keep_vars(g, kv);
    gw_kv(g, all, sizeof(all) / sizeof(all[0]));
    return sw_test_conf_render(conf_name, g->conf_path, all);
}

bool
sw_test_gw_start(struct sw_test_gw *g, const char *conf_name,
                 const char *const *kv)
{
    memset(g, 0, sizeof(*g));
    for (int attempt = 0; attempt < 3; attempt++) {
        g->port = sw_test_free_port();
        g->admin_port = sw_test_free_port();
        while (g->admin_port == g->port) {
            g->admin_port = sw_test_free_port();
        }
        snprintf(g->conf_path, sizeof(g->conf_path), "%s/gw.%d.conf",
                 sw_test_tmpdir(), g->port);
        if (!sw_test_gw_render(g, conf_name, kv)) {
            return false;
        }
        /* -R: the suites run as root with configurations that name no
         * `user` (privs_test covers the drop and the refusal). */
        char *argv[] = {(char *)sw_test_env("SW_SHOCKWAVE"), "-R", "-c",
                        g->conf_path, NULL};
        if (!sw_test_proc_spawn(&g->proc, "shockwave", argv)) {
            return false;
        }
        if (sw_test_proc_wait_log(&g->proc, "ready", 0, 10000) >= 0) {
            return true;
        }
        fprintf(stderr,
                "proc: shockwave did not log \"ready\" (attempt %d)"
                "\n",
                attempt + 1);
        sw_test_proc_dump(&g->proc);
        bool exited = !sw_test_proc_alive(&g->proc);
        sw_test_proc_stop(&g->proc, 1000);
        if (!exited) {
            /* Running but never ready: retrying will not help. */
            return false;
        }
    }
    return false;
}

int
sw_test_gw_stop(struct sw_test_gw *g)
{
    return sw_test_proc_stop(&g->proc, 5000);
}

bool
sw_test_gw_stop_clean(struct sw_test_gw *g, int *status)
{
    int st = sw_test_gw_stop(g);
    bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!clean) {
        sw_test_proc_dump(&g->proc);
    }
    *status = st;
    return clean;
}

void
sw_test_gw_teardown(struct sw_test_gw *g, struct sw_test_proc *backend)
{
    int st = 0;
    bool clean = sw_test_gw_stop_clean(g, &st);
    if (backend != NULL) {
        sw_test_proc_stop(backend, 2000);
    }
    ck_assert_msg(clean, "shockwave did not exit 0 on SIGTERM (status 0x%x)",
                  st);
}

void
sw_test_haproxy_start(struct sw_test_proc *p, const char *cfg_text,
                      const int *ports, size_t n)
{
    char path[600];
    ck_assert_msg(sw_test_which("haproxy", path, sizeof(path)),
                  "haproxy is not installed: run scripts/deps.sh");
    char cfg[600];
    snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", sw_test_tmpdir());
    ck_assert(sw_test_write_file(cfg, cfg_text));
    char *argv[] = {path, "-db", "-f", cfg, NULL};
    ck_assert(sw_test_proc_spawn(p, "haproxy", argv));
    uint64_t deadline = sw_now_ms() + 10000;
    for (size_t i = 0; i < n;) {
        int fd = sw_test_connect(ports[i], 200);
        if (fd >= 0) {
            close(fd);
            i++;
            continue;
        }
        if (sw_now_ms() >= deadline || !sw_test_proc_alive(p)) {
            sw_test_proc_dump(p);
            ck_abort_msg("haproxy did not listen on %d", ports[i]);
        }
        sw_test_sleep_ms(20);
    }
}
