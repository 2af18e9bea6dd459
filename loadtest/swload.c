/*
 * swload.c - main(): picks the command, plus the command line helpers that
 * every command shares (addresses, numbers, the file descriptor limit).
 *
 *   swload echo   --listen ADDR [--listen ADDR...] [--name N] [--threads N]
 *   swload sink   --listen ADDR [...]
 *   swload client --url ws://HOST:PORT/PATH --scenario NAME [...]
 *   swload broadcast --listen ADDR [--interval MS] [--size BYTES]
 *   swload subscribe --url ws://HOST:PORT/PATH --clients N [...]
 *
 * Owns nothing. Runs on the main thread before any worker starts.
 */
#include "swload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <time.h>

enum sw_status
swload_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    enum sw_status rc = SW_EINVAL;
    char host[128];
    const char *colon;
    const char *hs;
    size_t hn;
    uint64_t port;

    memset(ss, 0, sizeof(*ss));
    if (text[0] == '[') {
        const char *rb = strchr(text, ']');
        if (rb == NULL || rb[1] != ':') {
            goto out;
        }
        hs = text + 1;
        hn = (size_t)(rb - hs);
        colon = rb + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL) {
            goto out;
        }
        hs = text;
        hn = (size_t)(colon - text);
    }
    if (hn == 0 || hn >= sizeof(host) || !swload_parse_u64(colon + 1, &port) ||
        port > 65535) {
        goto out;
    }
    memcpy(host, hs, hn);
    host[hn] = '\0';
    if (strcmp(host, "localhost") == 0) {
        strcpy(host, "127.0.0.1");
    }

    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len = sizeof(*sin);
        rc = SW_OK;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*sin6);
        rc = SW_OK;
    }
out:
    return rc;
}

void
swload_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(s4->sin_port));
    }
}

bool
swload_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

uint64_t
swload_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "swload: setrlimit(NOFILE): %s\n", strerror(errno));
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return (uint64_t)rl.rlim_cur;
}

uint64_t
swload_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum sw_status
swload_url_parse(const char *url, struct sockaddr_storage *dst,
                 socklen_t *dstlen, char *host, size_t hostcap, char *path,
                 size_t pathcap)
{
    char hostport[160];
    const char *p;
    size_t n;

    if (strncmp(url, "ws://", 5) != 0) {
        return SW_EINVAL;
    }
    p = url + 5;
    n = strcspn(p, "/");
    if (n == 0 || n >= sizeof(hostport) || n >= hostcap) {
        return SW_EINVAL;
    }
    memcpy(hostport, p, n);
    hostport[n] = '\0';
    memcpy(host, hostport, n + 1);
    snprintf(path, pathcap, "%s", p[n] == '/' ? p + n : "/");
    return swload_addr_parse(hostport, dst, dstlen);
}

enum sw_status
swload_addrs_parse(const char *list, struct sockaddr_storage *out, size_t cap,
                   size_t *n)
{
    char item[64];
    socklen_t sl;

    while (*list != '\0') {
        size_t len = strcspn(list, ",");
        if (len == 0 || len + 3 >= sizeof(item) || *n == cap) {
            return SW_EINVAL;
        }
        /* Reuse the host:port parser with port 0. */
        bool v6 = memchr(list, ':', len) != NULL;
        snprintf(item, sizeof(item), v6 ? "[%.*s]:0" : "%.*s:0", (int)len,
                 list);
        if (swload_addr_parse(item, &out[*n], &sl) != SW_OK) {
            return SW_EINVAL;
        }
        (*n)++;
        list += len;
        if (*list == ',') {
            list++;
        }
    }
    return SW_OK;
}

static void
usage(FILE *f)
{
    fputs("usage:\n"
          "  swload echo --listen ADDR [--listen ADDR...] [--name NAME]"
          " [--threads N]\n"
          "  swload sink --listen ADDR [--listen ADDR...] [--threads N]\n"
          "  swload client --url ws://HOST:PORT/PATH"
          " --scenario echo|concurrent|throughput|large|ping|idle\n"
          "         [--connections N] [--size BYTES] [--duration SEC]"
          " [--threads N]\n"
          "         [--source-addrs A,B,...] [--json-only]\n"
          "  swload broadcast --listen ADDR [--listen ADDR...]"
          " [--interval MS] [--size BYTES]\n"
          "  swload subscribe --url ws://HOST:PORT/PATH [--clients N]"
          " [--duration SEC]\n"
          "         [--threads N] [--source-addrs A,B,...] [--channels N]"
          " [--json-only]\n"
          "HTTP load: use wrk (see loadtest/README.md)\n"
          "see loadtest/README.md\n",
          f);
}

int
main(int argc, char **argv)
{
    int rc = 2;

    if (argc < 2) {
        usage(stderr);
        goto out;
    }
    swload_raise_nofile();
    if (strcmp(argv[1], "echo") == 0) {
        rc = swload_server_main(argc - 1, argv + 1, false);
    } else if (strcmp(argv[1], "sink") == 0) {
        rc = swload_server_main(argc - 1, argv + 1, true);
    } else if (strcmp(argv[1], "client") == 0) {
        rc = swload_client_main(argc - 1, argv + 1, false);
    } else if (strcmp(argv[1], "subscribe") == 0) {
        rc = swload_client_main(argc - 1, argv + 1, true);
    } else if (strcmp(argv[1], "broadcast") == 0) {
        rc = swload_bcast_main(argc - 1, argv + 1);
    } else if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        rc = 0;
    } else {
        usage(stderr);
    }
out:
    return rc;
}
