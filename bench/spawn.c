/* bench-spawn FD CMD [ARGS...]: run CMD and report its resource use on FD
 * as "maxrss_kib user_s sys_s". A small C parent keeps ru_maxrss honest:
 * Linux carries the RSS of the process that called exec into the child's
 * peak, which from Python would add some 12 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench-spawn FD CMD [ARGS...]\n");
		return 2;
	}
	int report_fd = atoi(argv[1]);
	pid_t pid = fork();
	if (pid == 0) {
		close(report_fd);
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) {
		perror("bench-spawn");
		return 2;
	}
	dprintf(report_fd, "%ld %ld.%06ld %ld.%06ld\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec,
		(long)ru.ru_utime.tv_usec, (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
