// Alert and AlertSink: what the scheduler raises and the one door it raises it through
// (DESIGN.md §7). The Engine and the task types' alerts (Publisher::alert) produce Alerts;
// an AlertSink delivers them to the channels a DAG names. AlertDispatcher
// (scheduler/alerts.hpp) is the sink of the daemon and `drover run`: queued, retried,
// deduplicated on its own thread. The scheduler owns this interface; a sink never blocks
// its caller. Implementations must be thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace drover {

struct DagSpec;

struct Alert {
  std::string kind;  // "task_failed" | "retries_exhausted" | "drift" | "sla_miss" | "test"
  std::string dag, run_id, task;
  std::string message;    // one human sentence; newlines are folded for one-line channels
  std::string url;        // link to the run; filled from ui_url + run_id when empty
  std::string dedup_key;  // the same key (per channel) within 10 minutes is sent once; "" = never
  nlohmann::json details = nlohmann::json::object();  // e.g. drift: {"features": {...}}
  std::vector<std::string> channels;                  // channel names; see channels_for()
};

class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // Queues `alert` for the channels `dag` lists for alert.kind (channels_for) and returns at
  // once, without I/O; nothing is sent when the DAG lists none.
  virtual void send(const DagSpec& dag, Alert alert) = 0;
  // Recent deliveries, oldest first (docs/api.md /api/v1/alerts); [] when there are none.
  virtual nlohmann::json deliveries() const = 0;
};

}  // namespace drover
