/*
 * no_io_uring.c - run a program with io_uring_setup(2) refused (ENOSYS) by
 * a seccomp filter, as a container runtime's default profile refuses it:
 * the suites start the gateway through it to see its fall-back to epoll.
 *
 *   no_io_uring PROGRAM [ARG...]
 *
 * Exit status 127 when PROGRAM cannot be run, 1 when the filter cannot be
 * installed, 2 on bad arguments; else PROGRAM's (it replaces this one).
 *
 * Built a second time as no_bpf (-DREFUSED_NR=__NR_bpf): bpf(2) refused,
 * for the kernel relay's fall-back to the user-space relay.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef REFUSED_NR
#define REFUSED_NR __NR_io_uring_setup
#define REFUSER "no_io_uring"
#endif

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", REFUSER);
        return 2;
    }
    struct sock_filter filter[] = {
        /* another architecture's numbers mean other calls: let them be */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, REFUSED_NR, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & 0xffff)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {
        .len = (unsigned short)(sizeof(filter) / sizeof(filter[0])),
        .filter = filter,
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror(REFUSER ": seccomp");
        return 1;
    }
    execv(argv[1], argv + 1);
    perror(REFUSER ": execv");
    return 127;
}
