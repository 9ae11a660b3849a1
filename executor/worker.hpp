// The warm worker process (`drover worker`): reads try specs as JSON lines on stdin, runs
// each in a forked try process (its own process group), reports JSON lines on stdout:
//   {"ev":"started","key":K,"pid":P,"pid_start":S}
//   {"ev":"finished","key":K,"exit_code":N|null,"signal":N|null,"result":{...}|null}
// One try at a time. On end of input it waits for its running try, then exits. A try
// keeps running (and writes its result.json) even when the daemon dies.
#pragma once

namespace drover {

int worker_main(int in_fd, int out_fd);

// Runs one try in this process as `drover exec` does (no fork), returns its exit code.
int exec_try_file(const char* spec_path);

}  // namespace drover
