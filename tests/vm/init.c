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
 *   5. with /etc/kvmdbg/agent: serves the host's commands (see agent());
 *   6. prints the kernel's warnings and KVM messages, then powers off.
 *
 * It refuses to run as anything but PID 1.
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
#include <termios.h>
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

/* ---- agent: commands from the host over a virtio-serial port ------------
 *
 * With /etc/kvmdbg/agent in the initramfs (vmbed run --host-test, vmbed gdb),
 * /init serves requests on the virtio-serial port named "kvmdbg.ctl" after
 * the listed tests, until the host asks it to power off. Every port gets a
 * /dev/virtio-ports/NAME link, as udev would make. One request at a time:
 *
 *   host:  "KVMDBG-EXEC\n", then items "<tag> <len>\n<len bytes>" with tag
 *          file (the name, then a second item data: the bytes, written to
 *          /xfer/NAME, mode 0755), arg (argv[i]; argv[0] is looked up in
 *          /tests), env (NAME=VALUE), and "run 0\n" to start it;
 *          "kill 0\n" while it runs sends it SIGKILL.
 *   agent: "out <len>\n<bytes>" (stdout), "err <len>\n<bytes>" (stderr),
 *          then "exit <status>\n" or "signal <n>\n".
 *   host:  "KVMDBG-POWEROFF\n": dmesg, "done", power off.
 *
 * The host side is `vmbed exec`. If the host goes away while a command
 * runs, the command is killed.
 */
#define AGENT_MAX_ARGS 256
#define AGENT_MAX_ITEM (64u << 20)

struct chan {
	int fd;
	char buf[65536];
	size_t len, pos;
};

static int port_hup(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	/* A virtio port with no host side polls as POLLHUP (and POLLIN: its
	 * read returns 0 at once). */
	return poll(&p, 1, 0) > 0 && (p.revents & POLLHUP);
}

/* Read more into the channel; 1 data, 0 timeout, -1 host gone. */
static int chan_fill(struct chan *c, int timeout_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->pos == c->len)
		c->pos = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	if ((p.revents & POLLHUP) && !(p.revents & POLLIN))
		return -1;
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 1;
}

/* One '\n'-terminated line (without it) into out; 0 ok, -1 host gone. */
static int chan_line(struct chan *c, char *out, size_t size)
{
	for (;;) {
		char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);

		if (nl) {
			size_t l = (size_t)(nl - (c->buf + c->pos));

			if (l >= size)
				l = size - 1;
			memcpy(out, c->buf + c->pos, l);
			out[l] = '\0';
			c->pos = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		if (c->len - c->pos >= sizeof(c->buf) / 2)
			c->pos = c->len; /* an overlong line: drop it */
		if (chan_fill(c, -1) < 0)
			return -1;
	}
}

/* n bytes into a malloc'ed, NUL-terminated buffer. */
static char *chan_bytes(struct chan *c, size_t n)
{
	char *p = malloc(n + 1);
	size_t got = 0;

	if (!p)
		return NULL;
	while (got < n) {
		size_t take = c->len - c->pos;

		if (take > n - got)
			take = n - got;
		memcpy(p + got, c->buf + c->pos, take);
		c->pos += take;
		got += take;
		if (got < n && chan_fill(c, -1) < 0) {
			free(p);
			return NULL;
		}
	}
	p[n] = '\0';
	return p;
}

static void put_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void send_frame(int fd, const char *tag, const char *data, size_t len)
{
	char head[64];
	int hl = snprintf(head, sizeof(head), "%s %zu\n", tag, len);

	put_all(fd, head, (size_t)hl);
	put_all(fd, data, len);
}

/* Make /dev/virtio-ports/NAME links; the fd of the port named `want`. */
static int open_port(const char *want)
{
	char path[256], name[128], dev[64];
	int fd = -1;

	mkdir("/dev/virtio-ports", 0755);
	for (int i = 0; i < 64; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/sys/class/virtio-ports/vport0p%d/name", i);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = '\0';
			snprintf(dev, sizeof(dev), "/dev/vport0p%d", i);
			snprintf(path, sizeof(path), "/dev/virtio-ports/%s", name);
			if (symlink(dev, path) && errno != EEXIST)
				say("agent: symlink %s: %s", path, strerror(errno));
			if (!strcmp(name, want))
				fd = open(dev, O_RDWR | O_CLOEXEC);
		}
		fclose(f);
	}
	return fd;
}

/* Run argv with env; stream its stdout/stderr; kill it on "kill" or when the
 * host goes away. Returns 0 when the host is still there. */
static int agent_run(struct chan *c, char **argv, char **env)
{
	int out[2], errp[2], status = 0, open_fds = 2, gone = 0;
	char buf[16384], res[64];
	pid_t pid;

	if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
		send_frame(c->fd, "err", "agent: pipe failed\n", 19);
		put_all(c->fd, "exit 127\n", 9);
		return 0;
	}
	pid = fork();
	if (pid == 0) {
		char path[512];
		int nul = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		dup2(nul, 0);
		dup2(out[1], 1);
		dup2(errp[1], 2);
		if (chdir("/tmp"))
			_exit(126);
		if (!strchr(argv[0], '/')) {
			snprintf(path, sizeof(path), "/tests/%s", argv[0]);
			execve(path, argv, env);
		} else {
			execve(argv[0], argv, env);
		}
		fprintf(stderr, "agent: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(errp[1]);
	if (pid < 0) {
		close(out[0]);
		close(errp[0]);
		send_frame(c->fd, "err", "agent: fork failed\n", 19);
		put_all(c->fd, "exit 127\n", 9);
		return 0;
	}
	setpgid(pid, pid);
	while (open_fds > 0) {
		struct pollfd p[3] = {
			{ .fd = out[0], .events = POLLIN },
			{ .fd = errp[0], .events = POLLIN },
			{ .fd = gone ? -1 : c->fd, .events = POLLIN },
		};

		if (poll(p, 3, 1000) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));

			if (n > 0) {
				if (!gone)
					send_frame(c->fd, i ? "err" : "out", buf, (size_t)n);
			} else if (n == 0 || errno != EINTR) {
				close(i ? errp[0] : out[0]);
				if (i)
					errp[0] = -1;
				else
					out[0] = -1;
				open_fds--;
			}
		}
		if (!gone && (p[2].revents & (POLLIN | POLLHUP))) {
			char line[64];
			int r = chan_fill(c, 0);

			if (r < 0) {
				gone = 1; /* the host side went away: end the command */
				kill(-pid, SIGKILL);
			}
			while (r >= 0 && memchr(c->buf + c->pos, '\n', c->len - c->pos)) {
				chan_line(c, line, sizeof(line));
				if (!strncmp(line, "kill", 4))
					kill(-pid, SIGKILL);
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	kill(-pid, SIGKILL); /* its stray children */
	reap(-1, &(int){ 0 });
	if (gone)
		return -1;
	if (WIFSIGNALED(status))
		snprintf(res, sizeof(res), "signal %d\n", WTERMSIG(status));
	else
		snprintf(res, sizeof(res), "exit %d\n", WEXITSTATUS(status));
	put_all(c->fd, res, strlen(res));
	return 0;
}

/* Read one request's items and run it. */
static void agent_exec(struct chan *c)
{
	char *argv[AGENT_MAX_ARGS + 1] = { 0 }, *env[AGENT_MAX_ARGS + 1] = { 0 };
	char line[600], tag[16], *file = NULL;
	size_t len;
	int nargs = 0, nenv = 0, bad = 0;

	for (int i = 0; test_env[i] && nenv < AGENT_MAX_ARGS / 2; i++)
		env[nenv++] = strdup(test_env[i]);
	for (;;) {
		char *data;

		if (chan_line(c, line, sizeof(line)) < 0)
			goto out;
		if (sscanf(line, "%15s %zu", tag, &len) != 2 || len > AGENT_MAX_ITEM) {
			bad = 1;
			break;
		}
		if (!strcmp(tag, "run"))
			break;
		data = chan_bytes(c, len);
		if (!data)
			goto out;
		if (!strcmp(tag, "arg") && nargs < AGENT_MAX_ARGS) {
			argv[nargs++] = data;
		} else if (!strcmp(tag, "env") && nenv < AGENT_MAX_ARGS && strchr(data, '=')) {
			env[nenv++] = data;
		} else if (!strcmp(tag, "file") && !strchr(data, '/') && data[0] && !file) {
			file = data;
		} else if (!strcmp(tag, "data") && file) {
			char path[300];
			int fd;

			mkdir("/xfer", 0755);
			snprintf(path, sizeof(path), "/xfer/%s", file);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
			if (fd >= 0) {
				put_all(fd, data, len);
				close(fd);
			} else {
				bad = 1;
			}
			free(file);
			free(data);
			file = NULL;
		} else {
			free(data);
			bad = 1;
		}
	}
	if (bad || !nargs) {
		static const char msg[] = "agent: malformed request\n";

		send_frame(c->fd, "err", msg, sizeof(msg) - 1);
		put_all(c->fd, "exit 125\n", 9);
	} else {
		agent_run(c, argv, env);
	}
out:
	free(file);
	for (int i = 0; i < nargs; i++)
		free(argv[i]);
	for (int i = 0; i < nenv; i++)
		free(env[i]);
}

static void agent(void)
{
	struct chan *c = calloc(1, sizeof(*c));
	char line[600];
	double t0 = now();

	if (!c)
		return;
	/* The ports appear once virtio_console has probed them. */
	while ((c->fd = open_port("kvmdbg.ctl")) < 0 && now() - t0 < 20)
		usleep(50000);
	if (c->fd < 0) {
		say("agent: no virtio port kvmdbg.ctl");
		free(c);
		return;
	}
	say("agent: ready");
	for (;;) {
		/* wait for the host side to connect */
		while (port_hup(c->fd))
			usleep(20000);
		if (chan_line(c, line, sizeof(line)) < 0) {
			c->pos = c->len = 0;
			continue;
		}
		if (!strcmp(line, "KVMDBG-EXEC"))
			agent_exec(c);
		else if (!strcmp(line, "KVMDBG-POWEROFF"))
			break;
		/* anything else: noise from an earlier connection */
	}
	close(c->fd);
	free(c);
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

	/* Only ever the first process of a test VM: it mounts, loads modules
	 * and powers the machine off. */
	if (getpid() != 1) {
		fprintf(stderr, "init: this is the /init of the VM test beds "
				"(tests/vm/vmbed); it runs only as PID 1 inside a VM\n");
		return 2;
	}
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
	if (access("/etc/kvmdbg/agent", F_OK) == 0)
		agent();

	dump_dmesg();
	say("done: %d tests, %d failed", ran, failed);
	sync();
	/* The console's output transmitted before the power goes: fflush
	 * leaves it in the tty's buffer for the UART, and a power-off at once
	 * lost the last lines now and then (the "done" line among them, which
	 * the host waits for: "VM ended before /init finished"). */
	tcdrain(STDOUT_FILENO);
	reboot(RB_POWER_OFF);
	/* Not reached; if it were, init exiting panics and panic=-1 reboots,
	 * which -no-reboot turns into QEMU exiting. */
	say("reboot: %s", strerror(errno));
	return 1;
}
