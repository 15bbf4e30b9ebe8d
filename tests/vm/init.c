/* SPDX-License-Identifier: MIT */
/*
 * /init of the VM test beds (tests/vm/vmbed builds it with -static for each
 * arch and packs it into the initramfs).
 *
 *   1. mounts devtmpfs, proc, sysfs (and a tmpfs on /tmp for Check's files);
 *   2. loads the modules listed in /etc/kvmdbg/modules, in order, with
 *      finit_module (they are stored uncompressed);
 *   3. checks /dev/kvm (KVM_GET_API_VERSION);
 *   4. runs every binary listed in /etc/kvmdbg/tests (from /tests) as its own
 *      process group, stdout+stderr through a pipe, each line printed as
 *      "<name>| <line>" between "kvmdbg-vm: begin <name>" and
 *      "kvmdbg-vm: end <name> exit=N|signal=N|timeout", with a timeout
 *      (seconds in /etc/kvmdbg/timeout), environment from /etc/kvmdbg/env;
 *   5. prints the kernel's warnings and KVM messages, then powers off.
 *
 * Everything goes to /dev/console; the host side (vmbed) parses it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINE 4096

static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("kvmdbg-vm: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void do_mount(const char *src, const char *dst, const char *type)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, MS_NOSUID, NULL) && errno != EBUSY)
		say("mount %s on %s: %s", type, dst, strerror(errno));
}

static void console(void)
{
	int fd;

	if (fcntl(1, F_GETFD) >= 0 && fcntl(2, F_GETFD) >= 0)
		return;
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Read a whole small file; NULL if absent. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	return buf;
}

static int load_modules(void)
{
	char *list = slurp("/etc/kvmdbg/modules"), *save = NULL, *p;
	int bad = 0;

	if (!list)
		return 0;
	for (p = strtok_r(list, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		double t0 = now();
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		long r;

		if (fd < 0) {
			say("module %s: open: %s", p, strerror(errno));
			bad++;
			continue;
		}
		r = syscall(SYS_finit_module, fd, "", 0);
		if (r && errno != EEXIST) {
			say("module %s: finit_module: %s", p, strerror(errno));
			bad++;
		} else {
			say("module %s: loaded (%.2f s)", p, now() - t0);
		}
		close(fd);
	}
	free(list);
	return bad;
}

static void check_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int v;

	if (fd < 0) {
		say("kvm unavailable: /dev/kvm: %s", strerror(errno));
		return;
	}
	v = ioctl(fd, KVM_GET_API_VERSION, 0);
	say("kvm ok: api %d", v);
	close(fd);
}

/* Reap everything; return the status of `pid` when it is among them. */
static int reap(pid_t pid, int *status)
{
	int st, found = 0;
	pid_t r;

	while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
		if (r == pid) {
			*status = st;
			found = 1;
		}
	}
	return found;
}

static void emit(const char *name, char *buf, size_t *len, int flush)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', buf + *len - start))) {
		*nl = '\0';
		printf("%s| %s\n", name, start);
		start = nl + 1;
	}
	*len = buf + *len - start;
	memmove(buf, start, *len);
	if (*len && (flush || *len >= MAX_LINE - 1)) {
		buf[*len] = '\0';
		printf("%s| %s\n", name, buf);
		*len = 0;
	}
	fflush(stdout);
}

/* Environment of the tests: a fixed base plus /etc/kvmdbg/env (vmbed --env). */
static char *test_env[64] = { "PATH=/tests", "HOME=/", "TMPDIR=/tmp", "KVMDBG_IN_VM=1",
			      "TERM=dumb" };

static void load_env(void)
{
	static char *extra;
	char *save = NULL, *p;
	size_t n = 0;

	while (test_env[n])
		n++;
	extra = slurp("/etc/kvmdbg/env");
	for (p = extra ? strtok_r(extra, "\n", &save) : NULL; p && n + 1 < 64;
	     p = strtok_r(NULL, "\n", &save))
		if (strchr(p, '='))
			test_env[n++] = p;
}

static int run_test(const char *name, int timeout)
{
	char path[256], buf[MAX_LINE];
	int pfd[2], status = 0, done = 0, eof = 0, timed_out = 0;
	size_t len = 0;
	double t0 = now(), deadline = t0 + timeout;
	pid_t pid;

	snprintf(path, sizeof(path), "/tests/%s", name);
	say("begin %s", name);
	if (pipe2(pfd, O_CLOEXEC)) {
		say("end %s error=pipe", name);
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		say("end %s error=fork", name);
		return 1;
	}
	if (pid == 0) {
		char *argv[] = { (char *)name, NULL };

		setpgid(0, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		if (chdir("/tmp"))
			_exit(126);
		execve(path, argv, test_env);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(pfd[1]);

	while (!done || !eof) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double left = deadline - now();
		int n;

		if (left <= 0) {
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (!done) {
				if (waitpid(pid, &status, 0) == pid)
					done = 1;
				else if (errno != EINTR)
					break;
			}
			break;
		}
		if (!eof) {
			n = poll(&p, 1, left > 0.2 ? 200 : (int)(left * 1000) + 1);
			if (n > 0) {
				ssize_t r = read(pfd[0], buf + len, sizeof(buf) - 1 - len);

				if (r > 0) {
					len += r;
					emit(name, buf, &len, 0);
				} else if (r == 0 || errno != EINTR) {
					eof = 1;
				}
			}
		} else {
			usleep(20000);
		}
		if (!done)
			done = reap(pid, &status);
	}
	emit(name, buf, &len, 1);
	close(pfd[0]);
	/* The test's own stray children, if any. */
	kill(-pid, SIGKILL);
	reap(-1, &(int){ 0 });

	if (timed_out) {
		say("end %s timeout (%d s)", name, timeout);
		return 1;
	}
	if (WIFEXITED(status)) {
		say("end %s exit=%d (%.2f s)", name, WEXITSTATUS(status), now() - t0);
		return WEXITSTATUS(status) != 0;
	}
	say("end %s signal=%d (%.2f s)", name, WTERMSIG(status), now() - t0);
	return 1;
}

/* Kernel messages worth seeing on the host: warnings and worse, and KVM's. */
static void dump_dmesg(void)
{
	int size = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *save = NULL, *line;
	int n;

	if (size <= 0)
		return;
	buf = malloc(size + 1);
	if (!buf)
		return;
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, size);
	if (n < 0) {
		free(buf);
		return;
	}
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int level = (line[0] == '<' && line[1] >= '0' && line[1] <= '7') ? line[1] - '0' : 6;

		if (level <= 4 || strstr(line, "kvm") || strstr(line, "KVM") ||
		    strstr(line, "SVM") || strstr(line, "Hyp") || strstr(line, "hyp"))
			say("dmesg: %s", line);
	}
	free(buf);
}

int main(void)
{
	char *list, *timeout_s, *save = NULL, *name;
	struct utsname u;
	int timeout = 300, failed = 0, ran = 0;

	do_mount("devtmpfs", "/dev", "devtmpfs");
	console();
	setvbuf(stdout, NULL, _IOLBF, 0);
	do_mount("proc", "/proc", "proc");
	do_mount("sysfs", "/sys", "sysfs");
	do_mount("tmpfs", "/tmp", "tmpfs");
	signal(SIGPIPE, SIG_IGN);

	uname(&u);
	say("uname %s %s %s", u.release, u.machine, u.version);
	if (load_modules())
		failed++;
	check_kvm();

	timeout_s = slurp("/etc/kvmdbg/timeout");
	if (timeout_s && atoi(timeout_s) > 0)
		timeout = atoi(timeout_s);
	free(timeout_s);

	load_env();
	list = slurp("/etc/kvmdbg/tests");
	for (name = list ? strtok_r(list, "\n", &save) : NULL; name;
	     name = strtok_r(NULL, "\n", &save)) {
		failed += run_test(name, timeout);
		ran++;
	}
	free(list);

	dump_dmesg();
	say("done: %d tests, %d failed", ran, failed);
	sync();
	reboot(RB_POWER_OFF);
	/* Not reached; if it were, init exiting panics and panic=-1 reboots,
	 * which -no-reboot turns into QEMU exiting. */
	say("reboot: %s", strerror(errno));
	return 1;
}
