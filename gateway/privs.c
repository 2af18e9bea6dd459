/*
 * privs.c - the `user NAME [GROUP];` directive: started as root, the
 * daemon binds its listeners, reads certificates and keys and opens its
 * logs, then drops to that user before any worker thread starts.
 *
 *   resolve (at start, before anything is opened)
 *     root, `user NAME` (not root)  -> drop later
 *     root, `user root`             -> stay root, on purpose (a warning)
 *     root, no `user`, -R           -> stay root (a warning)
 *     root, no `user`, no -R        -> refuse to start (an error)
 *     not root                      -> nothing to drop; `user` ignored
 *   drop (listeners bound, before the worker threads)
 *     initgroups, setresgid, setresuid, then check that neither root's
 *     uid nor gid can be taken back
 *
 * After the drop a reload (SIGHUP) reads the configuration, certificates
 * and keys as that user, and a reopen (SIGUSR1) opens the log files as
 * that user. Main thread only, before the workers exist (setresuid applies
 * to every thread, but none runs yet).
 */
#include "gateway.h"

#include <shockwave/log.h>

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

static enum sw_status
not_found(const char *what, const char *name, const char *path)
{
    if (errno != 0) {
        fprintf(stderr, "shockwave: %s \"%s\" (configuration %s): %s\n", what,
                name, path, strerror(errno));
    } else {
        fprintf(stderr, "shockwave: %s \"%s\" (configuration %s): no such %s\n",
                what, name, path, what);
    }
    return SW_ERROR;
}

/* Look NAME (and GROUP) up; on failure print why on stderr. */
static enum sw_status
lookup(struct sw_gateway *g, const struct sw_conf *cf)
{
    struct sw_gateway_privs *pv = &g->privs;
    errno = 0;
    struct passwd *pw = getpwnam(cf->user.p);
    if (pw == NULL) {
        return not_found("user", cf->user.p, g->conf_path);
    }
    pv->set = true;
    pv->uid = pw->pw_uid;
    pv->gid = pw->pw_gid;
    snprintf(pv->name, sizeof(pv->name), "%s", cf->user.p);
    if (cf->group.len > 0) {
        errno = 0;
        struct group *gr = getgrnam(cf->group.p);
        if (gr == NULL) {
            return not_found("group", cf->group.p, g->conf_path);
        }
        pv->gid = gr->gr_gid;
    }
    return SW_OK;
}

enum sw_status
sw_gateway_privs_check(const struct sw_conf *cf, const char *path)
{
    if (cf->user.len == 0) {
        return SW_OK;
    }
    struct sw_gateway g = {.conf_path = path};
    return lookup(&g, cf);
}

enum sw_status
sw_gateway_privs_resolve(struct sw_gateway *g)
{
    struct sw_gateway_privs *pv = &g->privs;
    const struct sw_conf *cf = g->cf;
    memset(pv, 0, sizeof(*pv));
    if (cf->user.len > 0 && lookup(g, cf) != SW_OK) {
        return SW_ERROR;
    }
    if (geteuid() != 0) {
        if (pv->set && pv->uid != geteuid()) {
            fprintf(stderr,
                    "shockwave: not started as root: \"user %s\" is "
                    "ignored, running as uid %u\n",
                    pv->name, (unsigned)geteuid());
        }
        return SW_OK;
    }
    if (!pv->set) {
        if (g->allow_root) {
            fprintf(stderr, "shockwave: warning: running as root (-R, no "
                            "\"user\" directive)\n");
            return SW_OK;
        }
        fprintf(stderr,
                "shockwave: refusing to run as root: configuration %s has "
                "no \"user\" directive. Add \"user NAME;\" to drop to NAME "
                "after binding the listeners, or \"user root;\" (or start "
                "with -R) to keep root on purpose\n",
                g->conf_path);
        return SW_ERROR;
    }
    if (pv->uid == 0) {
        fprintf(stderr,
                "shockwave: warning: \"user %s\" is root: workers "
                "run as root\n",
                pv->name);
        return SW_OK;
    }
    pv->drop = true;
    return SW_OK;
}

enum sw_status
sw_gateway_privs_drop(struct sw_gateway *g)
{
    const struct sw_gateway_privs *pv = &g->privs;
    if (!pv->drop) {
        return SW_OK;
    }
    /* Groups first: once the uid is no longer 0 they cannot be changed. */
    if (initgroups(pv->name, pv->gid) != 0) {
        sw_log_error("initgroups(%s, %u): %s", pv->name, (unsigned)pv->gid,
                     strerror(errno));
        return SW_ERROR;
    }
    if (setresgid(pv->gid, pv->gid, pv->gid) != 0) {
        sw_log_error("setresgid(%u): %s", (unsigned)pv->gid, strerror(errno));
        return SW_ERROR;
    }
    if (setresuid(pv->uid, pv->uid, pv->uid) != 0) {
        sw_log_error("setresuid(%u): %s", (unsigned)pv->uid, strerror(errno));
        return SW_ERROR;
    }
    /* The drop must be final: no saved id of 0 to go back to. */
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
        ru != pv->uid || eu != pv->uid || su != pv->uid || rg != pv->gid ||
        eg != pv->gid || sg != pv->gid || setuid(0) == 0 || seteuid(0) == 0 ||
        (pv->gid != 0 && setgid(0) == 0)) {
        sw_log_error("privileges: still able to regain root after dropping "
                     "to user %s; refusing to go on",
                     pv->name);
        return SW_ERROR;
    }
    sw_log_info("running as user %s (uid %u, gid %u)", pv->name,
                (unsigned)pv->uid, (unsigned)pv->gid);
    return SW_OK;
}
