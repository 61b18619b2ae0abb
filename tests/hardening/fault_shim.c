/* A fault-injecting file layer for tests, loaded with LD_PRELOAD into the real switch process.
 *
 * While the file named by FAULT_TRIGGER exists, every fsync/fdatasync of a file descriptor
 * whose path contains FAULT_PATH_CONTAINS (every descriptor when unset) fails with
 * FAULT_ERRNO (EIO when unset) instead of reaching the kernel, as a failing disk would answer;
 * or, with FAULT_DELAY_US set, reaches it after that many microseconds, as a slow disk would.
 * Each injected failure or delay appends one line to FAULT_LOG when set, so tests can count them.
 * Without the trigger file every call goes to the real libc function at once.
 *
 * Built by the tests with: cc -shared -fPIC -o fault_shim.so fault_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fault_for(int fd, const char *call) {
    const char *trigger = getenv("FAULT_TRIGGER");
    if (trigger == NULL || access(trigger, F_OK) != 0)
        return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    const char *match = getenv("FAULT_PATH_CONTAINS");
    if (match != NULL && *match != '\0' && strstr(target, match) == NULL)
        return 0;
    const char *delay = getenv("FAULT_DELAY_US");
    const char *number = getenv("FAULT_ERRNO");
    int error = delay != NULL ? 0 : number != NULL ? atoi(number) : EIO;
    const char *log = getenv("FAULT_LOG");
    if (log != NULL) {
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (out >= 0) {
            char line[4200];
            int len = delay != NULL
                ? snprintf(line, sizeof line, "%s %s delay_us=%s\n", call, target, delay)
                : snprintf(line, sizeof line, "%s %s errno=%d\n", call, target, error);
            if (write(out, line, len > 0 ? (size_t)len : 0) < 0) { /* best effort */ }
            close(out);
        }
    }
    if (delay != NULL)
        usleep((useconds_t)atol(delay));
    return error;
}

int fdatasync(int fd) {
    static int (*real)(int);
    int error = fault_for(fd, "fdatasync");
    if (error) {
        errno = error;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    int error = fault_for(fd, "fsync");
    if (error) {
        errno = error;
        return -1;
    }
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
