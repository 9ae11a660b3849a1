// Alerts (DESIGN.md §7): an Alert is delivered to the channels named in the server config
// (scheduler/config.hpp) — webhook, email, command. AlertDispatcher queues alerts for one
// background thread that delivers them with retries and deduplication; it is thread-safe.
// deliver_alert() is the synchronous single attempt both it and `drover alerts test` use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "scheduler/alert.hpp"
#include "scheduler/config.hpp"

namespace drover {

// The JSON every channel carries (webhook body, command stdin, email footer):
// {"text", "kind", "dag", "run_id", "task", "message", "url", "details"}.
nlohmann::json alert_payload(const Alert& alert);
// The Slack-compatible one-line summary:
// "[drover] task_failed: dag.task (run R): message <url|open run>".
std::string alert_text(const Alert& alert);
// The channel names a DAG lists for an alert kind: task_failed and retries_exhausted use
// `on_failure`, drift `on_drift`, sla_miss `on_sla_miss`.
std::vector<std::string> channels_for(const DagSpec& dag, const std::string& kind);

// One delivery attempt, synchronous. `cancel`, when set and raised, aborts it early.
Status deliver_alert(const AlertChannel& channel, const Alert& alert,
                     const std::atomic<bool>* cancel = nullptr);

class AlertDispatcher final : public AlertSink {
 public:
  // `clock` (not owned, outlives this) stamps deliveries and times the dedup window; retry
  // backoff waits on the steady clock. Starts the delivery thread.
  explicit AlertDispatcher(ServerConfig config, const Clock* clock = nullptr);
  ~AlertDispatcher() override;  // shutdown(5 s)
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;

  // Queues `alert` for each of alert.channels and returns at once (never does I/O). An
  // unknown channel name is recorded as a failed delivery; a dedup_key seen for the same
  // channel within the last 10 minutes drops that copy. Ignored after shutdown().
  void send(Alert alert);
  // send() with alert.channels = channels_for(dag, alert.kind); nothing when none are listed.
  void send(const DagSpec& dag, Alert alert) override;

  // Deliveries queued or in flight (including those waiting to retry).
  size_t pending() const;
  // The last 1000 finished deliveries, oldest first: [{"time", "channel", "type", "kind",
  // "dag", "run_id", "task", "ok", "error", "attempts"}].
  nlohmann::json deliveries() const override;
  bool has_channel(const std::string& name) const { return config_.alerts.channels.count(name); }
  const ServerConfig& config() const { return config_; }

  // Stops taking alerts, delivers what is queued (retries wait at most until the deadline),
  // then aborts what is left (recorded as failed) and joins the thread. Idempotent.
  void shutdown(std::chrono::milliseconds deadline = std::chrono::seconds(5));

  static constexpr size_t kMaxDeliveries = 1000;
  static constexpr Micros kDedupWindow = std::chrono::minutes(10);

 private:
  struct Job {
    Alert alert;
    std::string channel;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
    std::string last_error;
  };
  void run();
  void record(const Job& job, bool ok, const std::string& error);

  const ServerConfig config_;
  SystemClock system_clock_;
  const Clock* clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;                                // guarded by mu_
  size_t in_flight_ = 0;                                 // guarded by mu_
  bool stopping_ = false;                                // guarded by mu_
  std::chrono::steady_clock::time_point stop_deadline_;  // guarded by mu_
  std::map<std::string, TimePoint> dedup_;               // "channel\nkey" -> first sent; mu_
  std::deque<nlohmann::json> deliveries_;                // guarded by mu_
  std::atomic<bool> abort_{false};  // raised at the shutdown deadline: cancels in-flight I/O
  std::thread thread_;
};

}  // namespace drover
