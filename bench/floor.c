/* The fork+exec floor of bench/run_all.sh: runs /bin/true COUNT times, at most PAR at a time,
 * with posix_spawn (vfork+exec in glibc) and waitpid, and prints the elapsed seconds.
 *   floor COUNT PAR
 * A chain of N tasks is `floor N 1`; the fan-out + join is `floor N+2 2` (its source and join
 * run alone, which costs the floor one slot-time more than this; negligible at N=1000). */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: floor COUNT PAR\n");
    return 2;
  }
  int count = atoi(argv[1]), par = atoi(argv[2]);
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
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.6f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
  return 0;
}
