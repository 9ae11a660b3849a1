// Executor: where a try runs. The scheduler hands it resolved TrySpecs and hears back
// through one callback; it never decides anything. LocalExecutor keeps warm `drover
// worker` processes on this host. Implementations run on the daemon's io_context thread
// and are not thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "plugins/task_type.hpp"

namespace boost::asio {
class io_context;
}

namespace drover {

struct TryEvent {
  enum class Kind { Started, Finished };
  Kind kind = Kind::Finished;
  std::string key;  // see try_key()
  int pid = 0;
  long long pid_start = 0;
  std::optional<int> exit_code;  // Finished: the try process's exit code
  std::optional<int> signal;     // Finished: the signal that ended it
  nlohmann::json result;         // Finished: result.json (null when none was written)
  std::string error;             // Finished: why there is no result, if known
};

std::string try_key(const std::string& run_id, const std::string& task, int try_number);

class Executor {
 public:
  using Callback = std::function<void(const TryEvent&)>;
  virtual ~Executor() = default;
  virtual void set_callback(Callback cb) = 0;
  virtual void start(const TrySpec& spec) = 0;
  // Ends a running try's whole process group (SIGTERM, then SIGKILL after a grace), first
  // writing "drover: WHY" into its log when `why` is not empty.
  virtual void kill(const std::string& key, const std::string& why) = 0;
  // Watches a try started by an earlier daemon (pid from TRY_DIR/pid) until it ends,
  // then reports Finished with its result.json.
  virtual void adopt(const std::string& key, const std::string& try_dir) = 0;
  // Lets workers finish their current try and exit; running tries are left running.
  virtual void shutdown() = 0;
};

struct LocalExecutorOptions {
  std::string self_exe;      // path of the drover binary (for `drover worker`)
  int max_workers = 4;       // warm processes kept at most
  int kill_grace_ms = 2000;  // SIGTERM -> SIGKILL
};

std::unique_ptr<Executor> make_local_executor(boost::asio::io_context& io,
                                              LocalExecutorOptions opts);

}  // namespace drover
