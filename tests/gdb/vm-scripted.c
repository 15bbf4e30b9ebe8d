/* SPDX-License-Identifier: MIT */
/*
 * vm-kvmdbg-run: kvmdbg-run's scripted mode inside the VM test beds, where
 * there is no shell and no network (so no gdb client): each case forks and
 * runs kvmdbg-run's own main() (kvmdbg-run.c compiled with
 * -Dmain=kvmdbg_run_main) with its stdout on a pipe, and compares the JSON
 * stops with the expected ones. Cases whose feature the bed's verified probe
 * lacks check that kvmdbg-run says so instead. Prints
 * "kvmdbg-result: vm-kvmdbg-run: N passed, N failed" for tests/vm/vmbed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int kvmdbg_run_main(int argc, char **argv);

static int passed, failed;

/* Run kvmdbg-run with args (NULL-terminated); stdout into out, stderr into err. */
static int run(char **args, char *out, size_t outsz, char *err, size_t errsz)
{
	int po[2], pe[2], status, argc = 0;
	char *argv[32];
	size_t no = 0, ne = 0;
	pid_t pid;

	argv[argc++] = "kvmdbg-run";
	for (; *args && argc < 31; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	if (pipe(po) || pipe(pe))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		close(po[0]);
		close(pe[0]);
		exit(kvmdbg_run_main(argc, argv));
	}
	close(po[1]);
	close(pe[1]);
	for (;;) { /* outputs are small: read stdout to EOF, then stderr */
		ssize_t n = read(po[0], out + no, outsz - 1 - no);

		if (n <= 0)
			break;
		no += (size_t)n;
	}
	for (;;) {
		ssize_t n = read(pe[0], err + ne, errsz - 1 - ne);

		if (n <= 0)
			break;
		ne += (size_t)n;
	}
	out[no] = err[ne] = '\0';
	close(po[0]);
	close(pe[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void result(const char *name, int ok, const char *out, const char *err)
{
	if (ok) {
		passed++;
		printf("ok: %s\n", name);
		return;
	}
	failed++;
	printf("FAIL: %s\n--- stdout\n%s--- stderr\n%s---\n", name, out, err);
}

static char out[65536], err[65536];

/* A golden case, or the verified probe's refusal when the bed lacks feat. */
static void golden(const char *name, const char *feat, const char *want, char **args)
{
	char lack[128];
	int rc = run(args, out, sizeof(out), err, sizeof(err));

	snprintf(lack, sizeof(lack), "verified probe lacks %s", feat ? feat : "-");
	if (feat && strstr(err, lack)) {
		printf("note: %s: this bed cannot deliver it (%s); refusal checked\n", name, lack);
		result(name, rc == 0, out, err);
		return;
	}
	result(name, rc == 0 && strcmp(out, want) == 0, out, err);
	if (rc || strcmp(out, want))
		printf("--- wanted\n%s---\n", want);
}

int main(void)
{
	const char *bed = getenv("KVMDBG_TESTBED");
	int rc;

	printf("vm-kvmdbg-run in %s\n", bed ? bed : "(no KVMDBG_TESTBED)");
	{
		char *a[] = { "--probe", NULL };

		rc = run(a, out, sizeof(out), err, sizeof(err));
		printf("%s", out);
		result("--probe", rc == 0 && strstr(out, "hw_break "), out, err);
	}
	{
		char *a[] = { NULL };

		rc = run(a, out, sizeof(out), err, sizeof(err));
		result("default demo: 3 breakpoint stops, 4 steps, counter 10",
		       rc == 0 && strstr(out, "stop 3: break hw-break    pc=0x100020 <bump>") &&
			       strstr(out, "stop 7: step") &&
			       strstr(out, "guest finished: counter = 10 (expected 10)"),
		       out, err);
	}
/* Two levels, so that W_STORE etc. become two arguments first. */
#define J_WATCH(type, loc) J_WATCH_(type, loc)
#define J_STEP(loc) J_STEP_(loc)
#ifdef __x86_64__
	/* x86: data breakpoints are traps, the pc is after the access. */
#define J_WATCH_(type, pc, sym) "{\"kind\":\"watch\",\"type\":\"" type "\",\"pc\":\"" pc "\",\"addr\":\"0x200000\",\"len\":8,\"data_addr\":\"0x200000\",\"vcpu\":0,\"hits\":1,\"symbol\":\"" sym "\"}\n"
#define J_STEP_(pc, sym) "{\"kind\":\"step\",\"type\":null,\"pc\":\"" pc "\",\"addr\":null,\"len\":null,\"data_addr\":null,\"vcpu\":0,\"hits\":0,\"symbol\":\"" sym "\"}\n"
#define J_SW "{\"kind\":\"break\",\"type\":\"sw-break\",\"pc\":\"0x100020\",\"addr\":\"0x100020\",\"len\":1,\"data_addr\":null,\"vcpu\":0,\"hits\":0,\"symbol\":\"bump\"}\n"
#define W_STORE "0x10002e", "bump+14"
#define W_STORE_STEP "0x10002f", "bump+15"
#define W_LOAD "0x100027", "bump+7"
#define SW_STEP "0x100021", "bump+1"
#else
	/* arm64: watchpoints fire before the access (pc = the load/store), FAR
	 * is the data address; watchpoint slot n is bit 16 + n of hits. */
#define J_WATCH_(type, pc, sym) "{\"kind\":\"watch\",\"type\":\"" type "\",\"pc\":\"" pc "\",\"addr\":\"0x200000\",\"len\":8,\"data_addr\":\"0x200000\",\"vcpu\":0,\"hits\":65536,\"symbol\":\"" sym "\"}\n"
#define J_STEP_(pc, sym) "{\"kind\":\"step\",\"type\":null,\"pc\":\"" pc "\",\"addr\":null,\"len\":null,\"data_addr\":null,\"vcpu\":0,\"hits\":0,\"symbol\":\"" sym "\"}\n"
#define J_SW "{\"kind\":\"break\",\"type\":\"sw-break\",\"pc\":\"0x100020\",\"addr\":\"0x100020\",\"len\":4,\"data_addr\":null,\"vcpu\":0,\"hits\":0,\"symbol\":\"bump\"}\n"
#define W_STORE "0x100030", "bump+16"
#define W_STORE_STEP "0x100034", "bump+20"
#define W_LOAD "0x100028", "bump+8"
#define SW_STEP "0x100024", "bump+4"
#endif
	{
		char *a[] = { "--json", "--watch", "counter", "--max-stops", "2", "--step", "1", NULL };

		golden("write watchpoint on the counter, then a step", "watch_write",
		       J_WATCH("watch-write", W_STORE) J_WATCH("watch-write", W_STORE)
		       J_STEP(W_STORE_STEP)
		       "{\"kind\":\"exit\",\"counter\":10,\"expected\":10,\"stops\":3}\n", a);
	}
	{
		char *a[] = { "--json", "--watch", "counter:8:rw", "--max-stops", "2", "--step", "0", NULL };

		golden("access watchpoint on the counter (read, then write)", "watch_access",
		       J_WATCH("watch-access", W_LOAD) J_WATCH("watch-access", W_STORE)
		       "{\"kind\":\"exit\",\"counter\":10,\"expected\":10,\"stops\":2}\n", a);
	}
	{
		char *a[] = { "--json", "--watch", "counter:8:r", "--max-stops", "1", "--step", "0", NULL };

#ifdef __x86_64__
		golden("read watchpoint: x86 has none", "watch_read",
		       "{\"kind\":\"exit\",\"counter\":10,\"expected\":10,\"stops\":0}\n", a);
#else
		golden("read watchpoint on the counter", "watch_read",
		       J_WATCH("watch-read", W_LOAD)
		       "{\"kind\":\"exit\",\"counter\":10,\"expected\":10,\"stops\":1}\n", a);
#endif
	}
	{
		char *a[] = { "--json", "--break", "bump", "--max-stops", "2", "--step", "1", NULL };

		golden("software breakpoint on bump(), then a step off it", "sw_break",
		       J_SW J_SW J_STEP(SW_STEP)
		       "{\"kind\":\"exit\",\"counter\":10,\"expected\":10,\"stops\":3}\n", a);
	}
	{
		char *a[] = { "--json", "--vcpus", "2", "--watch", "counter:16", "--max-stops", "4",
			      "--step", "0", NULL };

		rc = run(a, out, sizeof(out), err, sizeof(err));
		if (strstr(err, "verified probe lacks watch_write")) {
			printf("note: two vCPUs with a watchpoint: refused in this bed\n");
			result("two vCPUs, watchpoint refused", rc == 0, out, err);
		} else {
			int n = 0;

			for (const char *p = out; (p = strstr(p, "\"kind\":\"watch\"")); p++)
				n++;
			result("two vCPUs, a watchpoint over both counters: 4 stops, all-stop",
			       rc == 0 && n == 4 &&
				       strstr(out, "{\"kind\":\"exit\",\"counters\":[10,10],\"expected\":10,\"stops\":4}\n"),
			       out, err);
		}
	}
	{
		char *a[] = { "--overlay", "--json", "--hbreak", "bump", "--max-stops", "1", "--step", "0", NULL };

		rc = run(a, out, sizeof(out), err, sizeof(err));
		result("--overlay: a host breakpoint with the guest overlay on",
		       rc == 0 && strstr(out, "\"pc\":\"0x100020\"") &&
			       strstr(out, "{\"kind\":\"exit\",\"counter\":10,"),
		       out, err);
	}
	printf("kvmdbg-result: vm-kvmdbg-run: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
