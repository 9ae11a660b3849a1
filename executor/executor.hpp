// Executor: where a try runs. The scheduler hands it resolved TrySpecs and hears back
// through one callback; it never decides anything. It is the contract every place a try
// can run fills: LocalExecutor (warm `drover worker` processes on this host) now, a remote
// agent or a batch system later. Implementations run on the daemon's io_context thread and
// are not thread-safe; the callback is called on that thread too, never from inside a call
// of the Engine's (events are posted).
//
// A try's life, as the Engine sees it:
//   start(spec)  -> Status: refused (no worker, no capacity ...) = the try failed, never ran
//   Started      -> where it runs (facts) and the handle to find it again (adopt, read_log)
//   Finished     -> exactly once per try started (or adopted), refused ones excepted
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "plugins/task_type.hpp"

namespace boost::asio {
class io_context;
}

namespace drover {

struct TryEvent {
  enum class Kind { Started, Finished };
  Kind kind = Kind::Finished;
  std::string key;  // see try_key()
  int pid = 0;      // informative: the try process where there is one on a host
  long long pid_start = 0;
  // Started: when the executor started the try (µs since the epoch; 0: not said). The
  // Engine records it for a chained start, which starts before any pump hears of it.
  long long started_us = 0;
  // Started: where the try runs, recorded in TryRecord::facts. Keys: "executor" (its kind:
  // "local", ...), "hostname", "agent" (agent id, when there is one), "gpus" (the
  // CUDA_VISIBLE_DEVICES the executor gave it, only when it set one); executors may add
  // their own. TryRecord::host is facts["hostname"].
  nlohmann::json facts = nlohmann::json::object();
  // Started: the opaque adoption handle (recorded as facts["handle"]): what adopt() and
  // read_log() of a later executor of the same kind need to find this try again.
  std::string handle;
  std::optional<int> exit_code;  // Finished: the try process's exit code
  std::optional<int> signal;     // Finished: the signal that ended it
  nlohmann::json result;         // Finished: result.json (null when none was written)
  std::string error;             // Finished: why there is no result, if known
  // Finished: a chained start (TrySpec::after) that never started, and never will: the try
  // it followed did not succeed, or it was disarmed. Nothing ran.
  bool not_started = false;
  // Finished: the executor refused the start (start() returned an error, `error` says why):
  // the try never ran and fails with that message. Made by the Engine, not by executors.
  bool refused = false;
};

std::string try_key(const std::string& run_id, const std::string& task, int try_number);

// How many tries an executor takes at once: in all (`total`) and per queue (`queue`); an
// absent limit is no limit. The Engine uses the smaller of this and its own slots.
struct Capacity {
  std::optional<int> total;
  std::map<std::string, int> queue;
};

// A piece of a try's log: `bytes` from the offset asked for (at most the `max` asked for),
// the log's whole `size` when read and the offset to ask for next.
struct LogChunk {
  std::string bytes;
  unsigned long long size = 0;
  unsigned long long next_offset = 0;
};

class Executor {
 public:
  using Callback = std::function<void(const TryEvent&)>;
  virtual ~Executor() = default;
  virtual void set_callback(Callback cb) = 0;
  // Takes a try. An error (any code; its message says why: "no worker process could be
  // started", "capacity exceeded: ...") means it did not take it: no event follows for it,
  // and the Engine records the try as failed with that message. Otherwise Started and then
  // Finished follow through the callback, never from inside this call.
  //
  // A chained start (spec.after names a try this executor runs, or has just ended): the try
  // is armed, and starts the moment that one ends in success, without waiting for the
  // Engine; then Started follows (after the Finished of the one it follows), else Finished
  // with not_started. The Engine has committed it as Armed before it calls this: the start
  // is the action that commit allows. Only specs can_chain() accepts; one armed try per try.
  virtual Status start(const TrySpec& spec) = 0;
  virtual bool can_chain(const TrySpec&) const { return false; }
  // Takes back an armed try that has not started: true when it now never will (its Finished
  // with not_started may still follow), false when it has started or is starting (its Started
  // follows). Unknown keys: true.
  virtual bool disarm(const std::string& key) {
    (void)key;
    return true;
  }
  // Ends a running try's whole process group (SIGTERM, then SIGKILL after a grace), first
  // writing "drover: WHY" into its log when `why` is not empty. Unknown keys are ignored.
  virtual void kill(const std::string& key, const std::string& why) = 0;
  // Watches a try started by an earlier daemon, found by the `handle` its Started gave,
  // until it ends, then reports Finished with its result.json (or the error of why there
  // is none). A handle this executor cannot read reports Finished with that error.
  virtual void adopt(const std::string& key, const std::string& handle) = 0;
  // Reads a try's log from `offset`: at most `max` bytes. `handle` as for adopt (running or
  // ended, by this executor or an earlier one). Error "not_found" when the try has no log
  // (yet); other errors say why it cannot be read. Does not block on a remote host for long.
  virtual Result<LogChunk> read_log(const std::string& key, const std::string& handle,
                                    unsigned long long offset, size_t max) const = 0;
  // How many tries it takes at once now (may change as hosts come and go).
  virtual Capacity capacity() const { return {}; }
  // Lets workers finish their current try and exit; running tries are left running.
  virtual void shutdown() = 0;
};

struct LocalExecutorOptions {
  std::string self_exe;      // path of the drover binary (for `drover worker`)
  int max_workers = 0;       // tries at once (capacity().total); 0: no limit of its own
  int kill_grace_ms = 2000;  // SIGTERM -> SIGKILL
  // Make this process the subreaper of its tries' processes (one executor per process: the
  // daemon's, `drover run`'s): a command whose `drover worker` is killed -9 becomes its
  // child, and its exit, once reaped, ends the try with its outputs collected — not "lost"
  // and run again. What tasks leave behind is reaped every second, no zombie stays.
  bool reap_orphans = false;
};

// LocalExecutor's facts: {"executor": "local", "hostname": this host}. Its handle is JSON
// text naming the try's folder and processes; local_try_handle(try_dir) is the handle of a
// try recorded before handles were (TryRecord::facts without "handle"): the LocalExecutor
// then reads TRY_DIR/pid and the worker records (HOME/workers/), as it always did.
std::unique_ptr<Executor> make_local_executor(boost::asio::io_context& io,
                                              LocalExecutorOptions opts);
std::string local_try_handle(const std::string& try_dir);
// The local log reader (LocalExecutor::read_log; `drover logs` without a daemon): the file
// at `path` from `offset`, at most `max` bytes; "not_found" when it does not exist or is
// not a regular file.
Result<LogChunk> read_log_file(const std::string& path, unsigned long long offset, size_t max);

}  // namespace drover
