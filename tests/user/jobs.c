/*
 * Job control and the waits: a parent ignoring SIGCHLD (or with
 * SA_NOCLDWAIT) leaves no zombie, its wait giving ECHILD; a wait4 or
 * waitid blocked on a child gives up
 * with EINTR when a handler without SA_RESTART runs, and starts again with
 * SA_RESTART; waitid's id types, options (WNOWAIT, WNOHANG) and siginfo,
 * and its and wait4's errors. SIGSTOP and SIGTSTP stop a child (it writes
 * nothing while stopped), SIGCONT continues it, even when blocked; the
 * parent's wait sees each once (WUNTRACED, WCONTINUED) and gets SIGCHLD with
 * CLD_STOPPED, CLD_CONTINUED and CLD_KILLED, none for a stop or continue
 * with SA_NOCLDSTOP; a read blocked when the stop came starts again; SIGKILL
 * ends a stopped child. kill to a group and to the caller's group reaches
 * every member, and only those the caller may signal (EPERM when none,
 * success for -1). prctl: the name (PR_SET_NAME/PR_GET_NAME, as
 * /proc/self/stat and status show it), the parent-death signal (cleared in
 * a forked child, sent when the parent ends), the child subreaper, dumpable
 * and no-new-privs, with Linux's errors.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static void on_signal(int sig) {
    (void)sig;
    handled++;
}

static volatile int chld_count, chld_code, chld_status, chld_pid;
static void on_chld(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    chld_count++;
    chld_code = info->si_code;
    chld_status = info->si_status;
    chld_pid = info->si_pid;
}

static void catch(int sig, void (*handler)(int), int flags) {
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void catch_chld(int flags) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A one-shot ITIMER_REAL in `ms` milliseconds. */
static void alarm_ms(long ms) {
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A child that waits for signals until one ends it. */
static pid_t idle_child(void) {
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

static void reap(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void interrupted_waits(void) {
    pid_t child = idle_child();
    int status;

    catch(SIGALRM, on_signal, 0);
    handled = 0;
    alarm_ms(30);
    errno = 0;
    CHECK(waitpid(child, &status, 0) == -1 && errno == EINTR, "wait4 interrupted: errno %d", errno);
    CHECK(handled == 1, "the handler ran once (%d)", handled);

    siginfo_t info;
    handled = 0;
    alarm_ms(30);
    errno = 0;
    CHECK(waitid(P_PID, child, &info, WEXITED) == -1 && errno == EINTR, "waitid interrupted: errno %d", errno);
    CHECK(handled == 1, "the handler ran once (%d)", handled);

    /* SA_RESTART: the wait goes on, and a second child ends the first. */
    catch(SIGALRM, on_signal, SA_RESTART);
    handled = 0;
    pid_t killer = fork();
    if (killer == 0) {
        sleep_ms(100);
        kill(child, SIGTERM);
        _exit(0);
    }
    alarm_ms(30);
    CHECK(waitpid(child, &status, 0) == child, "wait4 restarted");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "the child ended by SIGTERM: %#x", status);
    CHECK(handled == 1, "the handler ran during the wait (%d)", handled);
    CHECK(waitpid(killer, &status, 0) == killer && WIFEXITED(status), "the killer reaped");
    catch(SIGALRM, SIG_DFL, 0);
}

static void waitid_calls(void) {
    siginfo_t info;
    pid_t child = fork();
    if (child == 0)
        _exit(7);

    memset(&info, 0x55, sizeof info);
    CHECK(waitid(P_PID, child, &info, WEXITED | WNOWAIT) == 0, "waitid WNOWAIT");
    CHECK(info.si_signo == SIGCHLD && info.si_code == CLD_EXITED && info.si_pid == child && info.si_status == 7 &&
              info.si_errno == 0,
          "WNOWAIT info: signo %d code %d pid %d status %d", info.si_signo, info.si_code, info.si_pid,
          info.si_status);
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_ALL, 0, &info, WEXITED) == 0 && info.si_pid == child && info.si_status == 7,
          "waitid P_ALL reaps it (pid %d)", info.si_pid);
    CHECK_ERR(waitid(P_PID, child, &info, WEXITED), ECHILD);

    /* Killed; in the caller's group (P_PGID 0). */
    child = idle_child();
    memset(&info, 0x55, sizeof info);
    CHECK(waitid(P_PID, child, &info, WEXITED | WNOHANG) == 0 && info.si_pid == 0 && info.si_signo == 0,
          "WNOHANG with none ready zeroes pid and signo (%d %d)", info.si_pid, info.si_signo);
    CHECK(syscall(SYS_wait4, child, NULL, (1UL << 32) | WNOHANG, NULL) == 0, "wait4's options are an int");
    CHECK(syscall(SYS_waitid, P_PID, child, &info, (1UL << 32) | WEXITED | WNOHANG, NULL) == 0,
          "waitid's options are an int");
    kill(child, SIGTERM);
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_PGID, 0, &info, WEXITED) == 0, "waitid P_PGID 0");
    CHECK(info.si_pid == child && info.si_code == CLD_KILLED && info.si_status == SIGTERM,
          "killed: pid %d code %d status %d", info.si_pid, info.si_code, info.si_status);

    /* Errors, in Linux's order. */
    CHECK_ERR(waitid(P_ALL, 0, &info, 0), EINVAL);
    CHECK_ERR(waitid(P_ALL, 0, &info, WEXITED | 0x10), EINVAL);
    CHECK_ERR(waitid(P_PID, 0, &info, WEXITED), EINVAL);
    CHECK_ERR(waitid(P_PGID, -1, &info, WEXITED), EINVAL);
    CHECK_ERR(syscall(SYS_waitid, 9, 0, &info, WEXITED, NULL), EINVAL);
    CHECK_ERR(waitid(P_ALL, 0, &info, WEXITED), ECHILD);
    CHECK_ERR(syscall(SYS_wait4, -1, NULL, WEXITED, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_wait4, (int)0x80000000, NULL, 0, NULL), ESRCH);
    CHECK_ERR(waitpid(-1, NULL, 0), ECHILD);
}

/* Bytes waiting in non-blocking `fd`. */
static int drain(int fd) {
    char buffer[256];
    int total = 0;
    ssize_t got;
    while ((got = read(fd, buffer, sizeof buffer)) > 0)
        total += got;
    return total;
}

static void stop_and_continue(void) {
    int status;
    int out[2];
    CHECK(pipe(out) == 0, "pipe");
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    catch_chld(0);

    /* A child that writes a byte every 2 ms while it runs. */
    pid_t child = fork();
    if (child == 0) {
        close(out[0]);
        for (;;) {
            if (write(out[1], "x", 1) != 1)
                _exit(1);
            sleep_ms(2);
        }
    }
    close(out[1]);
    sleep_ms(20);
    chld_count = 0;
    CHECK(kill(child, SIGSTOP) == 0, "SIGSTOP sent");
    CHECK(waitpid(child, &status, WUNTRACED) == child, "wait sees the stop");
    CHECK(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP, "WIFSTOPPED, WSTOPSIG SIGSTOP: %#x", status);
    for (int i = 0; i < 100 && chld_count == 0; i++)
        sleep_ms(10);
    CHECK(chld_count == 1 && chld_code == CLD_STOPPED && chld_status == SIGSTOP && chld_pid == child,
          "SIGCHLD CLD_STOPPED: count %d code %d status %d", chld_count, chld_code, chld_status);
    CHECK(waitpid(child, &status, WUNTRACED | WNOHANG) == 0, "the stop is reported once");
    drain(out[0]);
    sleep_ms(40);
    CHECK(drain(out[0]) == 0, "nothing written while stopped");

    CHECK(kill(child, SIGCONT) == 0, "SIGCONT sent");
    CHECK(waitpid(child, &status, WCONTINUED) == child && WIFCONTINUED(status), "WIFCONTINUED: %#x", status);
    CHECK(waitpid(child, &status, WCONTINUED | WNOHANG) == 0, "the continue is reported once");
    for (int i = 0; i < 100 && chld_code != CLD_CONTINUED; i++)
        sleep_ms(10);
    CHECK(chld_code == CLD_CONTINUED && chld_status == SIGCONT, "SIGCHLD CLD_CONTINUED: code %d status %d",
          chld_code, chld_status);
    sleep_ms(40);
    CHECK(drain(out[0]) > 0, "it writes again");

    /* waitid WSTOPPED with WNOWAIT leaves the report. */
    kill(child, SIGSTOP);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    CHECK(waitid(P_PID, child, &info, WSTOPPED | WNOWAIT) == 0 && info.si_code == CLD_STOPPED &&
              info.si_status == SIGSTOP,
          "waitid WSTOPPED: code %d status %d", info.si_code, info.si_status);
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status), "still reported after WNOWAIT");

    /* SA_NOCLDSTOP: no SIGCHLD for a continue or a stop, one for the end. */
    catch_chld(SA_NOCLDSTOP);
    chld_count = 0;
    kill(child, SIGCONT);
    CHECK(waitpid(child, &status, WCONTINUED) == child && WIFCONTINUED(status), "continued again");
    kill(child, SIGSTOP);
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status), "stopped again");
    sleep_ms(20);
    CHECK(chld_count == 0, "no SIGCHLD with SA_NOCLDSTOP (%d)", chld_count);

    /* SIGKILL ends a stopped process. */
    kill(child, SIGKILL);
    CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
          "SIGKILL ends a stopped child: %#x", status);
    CHECK(chld_count == 1 && chld_code == CLD_KILLED && chld_status == SIGKILL, "SIGCHLD CLD_KILLED: %d %d %d",
          chld_count, chld_code, chld_status);
    close(out[0]);
    catch(SIGCHLD, SIG_DFL, 0);
}

static volatile int conts;
static void on_cont(int sig) {
    (void)sig;
    conts++;
}

static void stop_signals(void) {
    int status;
    int go[2], back[2];
    CHECK(pipe(go) == 0 && pipe(back) == 0, "pipes");

    /* SIGTSTP stops a child in a group of its own; SIGCONT continues it
     * while it blocks SIGCONT; its read, blocked when the stop came,
     * starts again and gets the byte written after. */
    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGCONT);
        sigprocmask(SIG_BLOCK, &set, NULL);
        char byte;
        ssize_t got = read(go[0], &byte, 1);
        _exit(got == 1 ? byte : 100 + errno);
    }
    setpgid(child, child);
    sleep_ms(20);
    CHECK(kill(child, SIGTSTP) == 0, "SIGTSTP sent");
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status) && WSTOPSIG(status) == SIGTSTP,
          "SIGTSTP stops: %#x", status);
    kill(child, SIGCONT);
    CHECK(waitpid(child, &status, WCONTINUED) == child && WIFCONTINUED(status), "continued while blocked");
    CHECK(write(go[1], "k", 1) == 1, "write");
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 'k',
          "the read started again: %#x", status);

    /* A SIGTSTP handler runs instead of the stop; a SIGCONT handler runs
     * when the child continues. */
    handled = 0;
    conts = 0;
    child = fork();
    if (child == 0) {
        catch(SIGTSTP, on_signal, SA_RESTART);
        catch(SIGCONT, on_cont, SA_RESTART);
        char byte = 0;
        if (write(back[1], "r", 1) != 1)
            _exit(1);
        for (;;) {
            if (read(go[0], &byte, 1) == 1 && byte == 'q')
                _exit(handled * 10 + conts);
        }
    }
    char ready;
    CHECK(read(back[0], &ready, 1) == 1, "child ready");
    kill(child, SIGTSTP);
    sleep_ms(20);
    CHECK(waitpid(child, &status, WUNTRACED | WNOHANG) == 0, "a caught SIGTSTP does not stop");
    kill(child, SIGSTOP);
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status), "SIGSTOP still stops");
    kill(child, SIGCONT);
    CHECK(waitpid(child, &status, WCONTINUED) == child && WIFCONTINUED(status), "continued");
    sleep_ms(20);
    CHECK(write(go[1], "q", 1) == 1, "write");
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 11,
          "one SIGTSTP handled, one SIGCONT handled: %#x", status);
    close(go[0]);
    close(go[1]);
    close(back[0]);
    close(back[1]);
}

static int writer_fd;
static void *writer(void *arg) {
    (void)arg;
    for (;;) {
        if (write(writer_fd, "t", 1) != 1)
            _exit(1);
        sleep_ms(2);
    }
    return NULL;
}

static void stopped_sleeps_and_threads(void) {
    int status;

    /* A nanosleep that a stop and a continue interrupt goes on. */
    pid_t child = fork();
    if (child == 0) {
        struct timespec ts = {0, 300 * 1000000L};
        _exit(nanosleep(&ts, NULL) == 0 ? 0 : errno);
    }
    sleep_ms(50);
    kill(child, SIGSTOP);
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status), "stopped in nanosleep");
    kill(child, SIGCONT);
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "nanosleep went on after the continue: %#x", status);

    /* So does pause, which a handled signal ends. */
    handled = 0;
    catch(SIGUSR1, on_signal, 0);
    child = fork();
    if (child == 0) {
        int result = pause();
        _exit(result == -1 && errno == EINTR && handled == 1 ? 0 : 1);
    }
    catch(SIGUSR1, SIG_DFL, 0);
    sleep_ms(20);
    kill(child, SIGSTOP);
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status), "stopped in pause");
    kill(child, SIGCONT);
    CHECK(waitpid(child, &status, WCONTINUED) == child && WIFCONTINUED(status), "continued in pause");
    sleep_ms(20);
    kill(child, SIGUSR1);
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "pause ended by the handled signal only: %#x", status);

    /* Every thread stops. */
    int out[2];
    CHECK(pipe(out) == 0, "pipe");
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    child = fork();
    if (child == 0) {
        close(out[0]);
        writer_fd = out[1];
        pthread_t thread;
        if (pthread_create(&thread, NULL, writer, NULL) != 0)
            _exit(1);
        for (;;) {
            if (write(out[1], "m", 1) != 1)
                _exit(1);
            sleep_ms(2);
        }
    }
    close(out[1]);
    sleep_ms(30);
    kill(child, SIGSTOP);
    CHECK(waitpid(child, &status, WUNTRACED) == child && WIFSTOPPED(status), "the threaded child stopped");
    sleep_ms(20);
    drain(out[0]);
    sleep_ms(40);
    CHECK(drain(out[0]) == 0, "no thread writes while stopped");
    kill(child, SIGCONT);
    sleep_ms(40);
    char buffer[512];
    ssize_t got = read(out[0], buffer, sizeof buffer);
    int threads = 0, main_thread = 0;
    for (ssize_t i = 0; i < got; i++) {
        threads += buffer[i] == 't';
        main_thread += buffer[i] == 'm';
    }
    CHECK(threads > 0 && main_thread > 0, "both threads write again (%d %d)", threads, main_thread);
    reap(child);
    close(out[0]);
}

/* A child that takes user id `uid` (as root), says so on `ready` (a byte:
 * 'y', or 'n' when it could not), then waits for signals. */
static pid_t user_child(uid_t uid, int ready) {
    pid_t pid = fork();
    if (pid == 0) {
        char byte = setresuid(uid, uid, uid) == 0 ? 'y' : 'n';
        if (write(ready, &byte, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    return pid;
}

static void group_kills(void) {
    int status;
    int out[2], go[2];
    CHECK(pipe(out) == 0 && pipe(go) == 0, "pipes");

    /* kill(0, ...) from the first member of a group reaches both. */
    pid_t members[2];
    handled = 0;
    catch(SIGUSR1, on_signal, 0);
    for (int i = 0; i < 2; i++) {
        members[i] = fork();
        if (members[i] == 0) {
            setpgid(0, i == 0 ? 0 : members[0]);
            char byte;
            if (i == 0 && read(go[0], &byte, 1) == 1)
                kill(0, SIGUSR1);
            while (!handled)
                sleep_ms(1);
            _exit(write(out[1], "u", 1) == 1 ? 0 : 2);
        }
        setpgid(members[i], members[0]);
    }
    catch(SIGUSR1, SIG_DFL, 0);
    CHECK(write(go[1], "0", 1) == 1, "go");
    char bytes[2];
    CHECK(read(out[0], bytes, 1) == 1 && read(out[0], bytes + 1, 1) == 1, "both members got SIGUSR1");
    for (int i = 0; i < 2; i++)
        CHECK(waitpid(members[i], &status, 0) == members[i] && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "member %d ended: %#x", i, status);

    /* kill(-pgid, ...) reaches every member. */
    pid_t leader = idle_child();
    setpgid(leader, leader);
    pid_t other = idle_child();
    setpgid(other, leader);
    CHECK(kill(-leader, 65) == -1 && errno == EINVAL, "a bad signal to a group: EINVAL");
    CHECK(kill(-leader, SIGTERM) == 0, "SIGTERM to the group");
    CHECK(waitpid(leader, &status, 0) == leader && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "leader");
    CHECK(waitpid(other, &status, 0) == other && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "member");
    CHECK_ERR(kill(-leader, 0), ESRCH);
    CHECK_ERR(kill(-2147483647, 0), ESRCH);

    /* Without CAP_KILL (as root only): a group with one member of one's
     * own user and one of another, and a group of the other user's only. */
    pid_t mine = user_child(4321, out[1]);
    setpgid(mine, mine);
    pid_t theirs = user_child(4322, out[1]);
    setpgid(theirs, mine);
    pid_t alone = user_child(4322, out[1]);
    setpgid(alone, alone);
    int root = 1;
    for (int i = 0; i < 3; i++) {
        char byte = 'n';
        CHECK(read(out[0], &byte, 1) == 1, "ready");
        root &= byte == 'y';
    }
    pid_t sender = fork();
    if (sender == 0) {
        if (!root || setresuid(4321, 4321, 4321) != 0)
            _exit(77);
        int code = 0;
        if (kill(-mine, 0) != 0)
            code |= 1;
        if (kill(-alone, 0) != -1 || errno != EPERM)
            code |= 2;
        if (kill(-1, 0) != 0)
            code |= 4;
        if (kill(-mine, SIGTERM) != 0)
            code |= 8;
        _exit(code);
    }
    CHECK(waitpid(sender, &status, 0) == sender && WIFEXITED(status), "sender");
    if (WEXITSTATUS(status) != 77) {
        CHECK(WEXITSTATUS(status) == 0, "group kills without CAP_KILL: code %d", WEXITSTATUS(status));
        CHECK(waitpid(mine, &status, 0) == mine && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
              "one's own user's member ended: %#x", status);
        sleep_ms(20);
        CHECK(waitpid(theirs, &status, WNOHANG) == 0, "the other user's member did not get it");
    }
    reap(mine);
    reap(theirs);
    reap(alone);
    close(out[0]);
    close(out[1]);
    close(go[0]);
    close(go[1]);
}

/* The text of /proc/self/FILE, or "" */
static void read_proc(const char *name, char *buffer, size_t size) {
    buffer[0] = 0;
    int fd = open(name, O_RDONLY);
    if (fd < 0)
        return;
    ssize_t got = read(fd, buffer, size - 1);
    buffer[got > 0 ? got : 0] = 0;
    close(fd);
}

static void prctl_calls(void) {
    char name[32], text[4096];
    int value = -1, status;

    /* The name: at most 15 bytes kept. */
    CHECK(prctl(PR_SET_NAME, "jobs-name-long-xyz", 0, 0, 0) == 0, "PR_SET_NAME");
    memset(name, 'z', sizeof name);
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strcmp(name, "jobs-name-long-") == 0 && name[16] == 'z',
          "PR_GET_NAME: %s", name);
    read_proc("/proc/self/stat", text, sizeof text);
    CHECK(strstr(text, "(jobs-name-long-)") != NULL, "/proc/self/stat shows the name: %.40s", text);
    read_proc("/proc/self/status", text, sizeof text);
    CHECK(strncmp(text, "Name:\tjobs-name-long-\n", 22) == 0, "/proc/self/status shows the name: %.30s", text);
    CHECK(prctl(PR_SET_NAME, "jobs", 0, 0, 0) == 0, "PR_SET_NAME short");
    CHECK(prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strcmp(name, "jobs") == 0, "PR_GET_NAME: %s", name);
    CHECK_ERR(prctl(PR_SET_NAME, (char *)8, 0, 0, 0), EFAULT);
    CHECK_ERR(prctl(PR_GET_NAME, (char *)8, 0, 0, 0), EFAULT);

    /* The parent-death signal: checked, kept, cleared in a child. */
    CHECK_ERR(prctl(PR_SET_PDEATHSIG, 65, 0, 0, 0), EINVAL);
    CHECK_ERR(prctl(PR_SET_PDEATHSIG, -1L, 0, 0, 0), EINVAL);
    CHECK(prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) == 0, "PR_SET_PDEATHSIG");
    CHECK(prctl(PR_GET_PDEATHSIG, &value, 0, 0, 0) == 0 && value == SIGUSR2, "PR_GET_PDEATHSIG: %d", value);
    CHECK_ERR(prctl(PR_GET_PDEATHSIG, (int *)8, 0, 0, 0), EFAULT);
    pid_t child = fork();
    if (child == 0) {
        int inherited = -1;
        char child_name[16];
        prctl(PR_GET_PDEATHSIG, &inherited, 0, 0, 0);
        prctl(PR_GET_NAME, child_name, 0, 0, 0);
        _exit(inherited == 0 && strcmp(child_name, "jobs") == 0 ? 0 : 1);
    }
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a child: no parent-death signal, the parent's name");
    CHECK(prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) == 0, "PR_SET_PDEATHSIG 0");

    /* A subreaper adopts its orphaned grandchild, which gets its
     * parent-death signal when its parent ends. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, "PR_SET_CHILD_SUBREAPER");
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &value, 0, 0, 0) == 0 && value == 1, "PR_GET_CHILD_SUBREAPER: %d", value);
    int ready[2], pids[2];
    CHECK(pipe(ready) == 0 && pipe(pids) == 0, "pipes");
    pid_t middle = fork();
    if (middle == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
            if (write(ready[1], "g", 1) != 1)
                _exit(1);
            for (;;)
                pause();
        }
        char byte;
        if (read(ready[0], &byte, 1) != 1 || write(pids[1], &grandchild, sizeof grandchild) != sizeof grandchild)
            _exit(1);
        _exit(0);
    }
    pid_t grandchild = 0;
    CHECK(read(pids[0], &grandchild, sizeof grandchild) == sizeof grandchild, "the grandchild's pid");
    CHECK(waitpid(middle, &status, 0) == middle && WIFEXITED(status) && WEXITSTATUS(status) == 0, "middle");
    CHECK(waitpid(grandchild, &status, 0) == grandchild && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
          "the orphan came to the subreaper, killed by its parent-death signal: %#x", status);
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) == 0, "subreaper off");
    CHECK(prctl(PR_GET_CHILD_SUBREAPER, &value, 0, 0, 0) == 0 && value == 0, "PR_GET_CHILD_SUBREAPER 0");
    close(ready[0]);
    close(ready[1]);
    close(pids[0]);
    close(pids[1]);

    /* Dumpable: 0 or 1. */
    CHECK_ERR(prctl(PR_SET_DUMPABLE, 2, 0, 0, 0), EINVAL);
    CHECK(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0, "dumpable 0");
    CHECK(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1, "dumpable 1");

    /* No new privileges: in a child, which passes it on to its own. */
    child = fork();
    if (child == 0) {
        int code = 0;
        if (prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) != -1 || errno != EINVAL)
            code |= 1;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0) != -1 || errno != EINVAL)
            code |= 2;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
            code |= 4;
        if (prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0) != -1 || errno != EINVAL)
            code |= 8;
        pid_t grandchild = fork();
        if (grandchild == 0)
            _exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
        int inner;
        waitpid(grandchild, &inner, 0);
        if (!WIFEXITED(inner) || WEXITSTATUS(inner) != 1)
            code |= 16;
        _exit(code);
    }
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "no-new-privs: code %d", WEXITSTATUS(status));
    CHECK_ERR(prctl(0x7fff, 0, 0, 0, 0), EINVAL);
}

static volatile int reap_chld_seen;

static void on_reap_chld(int sig) {
    (void)sig;
    reap_chld_seen++;
}

/* A parent that ignores SIGCHLD, or sets SA_NOCLDWAIT, leaves no zombie:
   its wait blocks until the child is gone, then fails with ECHILD. With
   SA_NOCLDWAIT and a handler, SIGCHLD still comes. */
static void auto_reap(void) {
    struct sigaction ignore = {0}, old;
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGCHLD, &ignore, &old);
    pid_t child = fork();
    if (child == 0)
        _exit(3);
    errno = 0;
    CHECK(waitpid(child, NULL, 0) == -1 && errno == ECHILD, "SIGCHLD ignored: waitpid gives ECHILD (%d)", errno);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    CHECK(access(path, F_OK) == -1, "and no zombie is left");

    struct sigaction nowait = {0};
    nowait.sa_handler = on_reap_chld;
    nowait.sa_flags = SA_NOCLDWAIT;
    sigaction(SIGCHLD, &nowait, NULL);
    reap_chld_seen = 0;
    child = fork();
    if (child == 0)
        _exit(4);
    int got;
    do {
        errno = 0;
        got = waitpid(child, NULL, 0);
    } while (got == -1 && errno == EINTR);
    CHECK(got == -1 && errno == ECHILD, "SA_NOCLDWAIT: waitpid gives ECHILD too (%d)", errno);
    CHECK(reap_chld_seen == 1, "and the handler ran (%d)", reap_chld_seen);
    sigaction(SIGCHLD, &old, NULL);
}

int main(void) {
    auto_reap();
    interrupted_waits();
    waitid_calls();
    stop_and_continue();
    stop_signals();
    stopped_sleeps_and_threads();
    group_kills();
    prctl_calls();
    return finish("jobs");
}
