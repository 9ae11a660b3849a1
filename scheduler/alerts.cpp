// AlertDispatcher and the alert payload (scheduler/alerts.hpp).
#include "scheduler/alerts.hpp"

#include <spdlog/spdlog.h>

#include "common/time.hpp"
#include "scheduler/dag.hpp"

namespace drover {

using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

std::string alert_text(const Alert& a) {
  std::string s = "[drover] " + a.kind;
  if (!a.dag.empty()) s += ": " + a.dag + (a.task.empty() ? "" : "." + a.task);
  if (!a.run_id.empty()) s += " (run " + a.run_id + ")";
  if (!a.message.empty()) s += ": " + a.message;
  if (!a.url.empty()) s += " <" + a.url + "|open run>";
  for (char& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

json alert_payload(const Alert& a) {
  json details = a.details.is_null() ? json::object() : a.details;
  return json{{"text", alert_text(a)}, {"kind", a.kind},    {"dag", a.dag},
              {"run_id", a.run_id},    {"task", a.task},    {"message", a.message},
              {"url", a.url},          {"details", details}};
}

std::vector<std::string> channels_for(const DagSpec& dag, const std::string& kind) {
  std::string key;
  if (kind == "task_failed" || kind == "retries_exhausted")
    key = "on_failure";
  else if (kind == "drift")
    key = "on_drift";
  else if (kind == "sla_miss")
    key = "on_sla_miss";
  auto it = dag.alerts.find(key);
  return it == dag.alerts.end() ? std::vector<std::string>{} : it->second;
}

AlertDispatcher::AlertDispatcher(ServerConfig config, const Clock* clock)
    : config_(std::move(config)), clock_(clock ? clock : &system_clock_) {
  thread_ = std::thread([this] { run(); });
}

AlertDispatcher::~AlertDispatcher() { shutdown(); }

void AlertDispatcher::send(const DagSpec& dag, Alert alert) {
  alert.channels = channels_for(dag, alert.kind);
  if (alert.dag.empty()) alert.dag = dag.id;
  if (alert.channels.empty()) return;
  send(std::move(alert));
}

void AlertDispatcher::send(Alert alert) {
  if (alert.url.empty()) alert.url = run_url(config_.ui_url, alert.run_id);
  TimePoint now = clock_->now();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    spdlog::warn("alerts: dropped {} alert for {} after shutdown", alert.kind, alert.dag);
    return;
  }
  if (dedup_.size() > 10000) {
    for (auto it = dedup_.begin(); it != dedup_.end();)
      it = now - it->second >= kDedupWindow ? dedup_.erase(it) : std::next(it);
  }
  for (const auto& name : alert.channels) {
    Job job{alert, name, 0, Steady::now(), ""};
    job.alert.channels.clear();
    if (!config_.alerts.channels.count(name)) {
      std::string error = "unknown alert channel '" + name + "'";
      spdlog::error("alerts: {} alert for {}: {}", alert.kind, alert.dag, error);
      record(job, false, error);
      continue;
    }
    if (!alert.dedup_key.empty()) {
      std::string key = name + "\n" + alert.dedup_key;
      auto it = dedup_.find(key);
      if (it != dedup_.end() && now - it->second < kDedupWindow) {
        spdlog::debug("alerts: {} to {} deduplicated (key {})", alert.kind, name, alert.dedup_key);
        continue;
      }
      dedup_[key] = now;
    }
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
}

size_t AlertDispatcher::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + in_flight_;
}

json AlertDispatcher::deliveries() const {
  std::lock_guard<std::mutex> lock(mu_);
  json out = json::array();
  for (const auto& d : deliveries_) out.push_back(d);
  return out;
}

// Called with mu_ held.
void AlertDispatcher::record(const Job& job, bool ok, const std::string& error) {
  auto it = config_.alerts.channels.find(job.channel);
  json d = {
      {"time", format_iso_utc(clock_->now())},
      {"channel", job.channel},
      {"type", it == config_.alerts.channels.end() ? "" : AlertChannel::type_name(it->second.type)},
      {"kind", job.alert.kind},
      {"dag", job.alert.dag},
      {"run_id", job.alert.run_id},
      {"task", job.alert.task},
      {"ok", ok},
      {"error", error},
      {"attempts", job.attempts}};
  deliveries_.push_back(std::move(d));
  while (deliveries_.size() > kMaxDeliveries) deliveries_.pop_front();
}

void AlertDispatcher::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (abort_.load()) {
      for (auto& job : queue_) {
        spdlog::error("alerts: {} alert for {} to {} not delivered before shutdown{}",
                      job.alert.kind, job.alert.dag, job.channel,
                      job.last_error.empty() ? "" : " (last error: " + job.last_error + ")");
        record(job, false,
               "not delivered before shutdown" +
                   (job.last_error.empty() ? "" : ": " + job.last_error));
      }
      queue_.clear();
      cv_.notify_all();
      return;
    }
    if (queue_.empty()) {
      if (stopping_) {
        cv_.notify_all();
        return;
      }
      cv_.wait(lock);
      continue;
    }
    auto next = std::min_element(queue_.begin(), queue_.end(),
                                 [](const Job& a, const Job& b) { return a.due < b.due; });
    auto now = Steady::now();
    if (next->due > now) {
      cv_.wait_until(lock, next->due);
      continue;
    }
    Job job = std::move(*next);
    queue_.erase(next);
    ++in_flight_;
    const AlertChannel& channel = config_.alerts.channels.at(job.channel);
    ++job.attempts;
    lock.unlock();
    Status s = deliver_alert(channel, job.alert, &abort_);
    lock.lock();
    --in_flight_;
    if (s.ok()) {
      record(job, true, "");
    } else if (job.attempts <= config_.alerts.retries && !abort_.load()) {
      auto delay = config_.alerts.retry_delay * (1LL << std::min(job.attempts - 1, 20));
      spdlog::warn("alerts: {} alert for {} to {}: attempt {} failed: {}; retrying in {}",
                   job.alert.kind, job.alert.dag, job.channel, job.attempts, s.message(),
                   format_duration(delay));
      job.last_error = s.message();
      job.due = Steady::now() + delay;
      queue_.push_back(std::move(job));
    } else {
      spdlog::error("alerts: {} alert for {} to {} failed after {} attempt(s): {}", job.alert.kind,
                    job.alert.dag, job.channel, job.attempts, s.message());
      record(job, false, s.message());
    }
    cv_.notify_all();
  }
}

void AlertDispatcher::shutdown(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_.joinable()) return;
  stopping_ = true;
  cv_.notify_all();
  bool drained = cv_.wait_for(lock, deadline, [this] { return queue_.empty() && in_flight_ == 0; });
  if (!drained) {
    abort_.store(true);
    cv_.notify_all();
  }
  lock.unlock();
  thread_.join();
}

}  // namespace drover
