/* The fork+exec floor of bench/run_all.sh: runs /bin/true COUNT times, at most PAR at a time,
 * with posix_spawn (vfork+exec in glibc) and waitpid, and prints the elapsed seconds.
 *   floor COUNT PAR [LOGFILE]
 * With LOGFILE, also the floor of a scheduler that commits each transition durably before the
 * action it allows (DESIGN.md section 9, synchronous=FULL): after each exit, and before the next
 * spawn, one 4 KiB block is appended to LOGFILE and fdatasync'ed (a SQLite WAL commit writes at
 * least one page and syncs once).
 * A chain of N tasks is `floor N 1`; the fan-out + join is `floor N+2 2` (its source and join
 * run alone, which costs the floor one slot-time more than this; negligible at N=1000). */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: floor COUNT PAR [LOGFILE]\n");
    return 2;
  }
  int count = atoi(argv[1]), par = atoi(argv[2]);
  int log = -1;
  static char block[4096];
  memset(block, 'x', sizeof block);
  if (argc == 4 && (log = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
    perror(argv[3]);
    return 1;
  }
  char *args[] = {"/bin/true", NULL};
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  int started = 0, running = 0;
  while (started < count || running > 0) {
    while (started < count && running < par) {
      pid_t pid;
      if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ) != 0) {
        perror("posix_spawn");
        return 1;
      }
      started++;
      running++;
    }
    int st;
    if (wait(&st) > 0) running--;
    if (log >= 0 && (write(log, block, sizeof block) != sizeof block || fdatasync(log) != 0)) {
      perror("write/fdatasync");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
