// Loading and validating the server config file (scheduler/config.hpp).
#include "scheduler/config.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/fs.hpp"
#include "common/time.hpp"
#include "scheduler/dag.hpp"

namespace drover {
namespace {

using json = nlohmann::json;

// Collects "file:line:col: message" diagnostics while walking the YAML tree.
class Checker {
 public:
  explicit Checker(std::string file) : file_(std::move(file)) {}

  void error(const YAML::Node& at, const std::string& message) {
    YAML::Mark m = at.Mark();
    error(m.line, m.column, message);
  }
  void error(int line0, int col0, const std::string& message) {
    errors_.push_back(Diagnostic{file_, line0 + 1, col0 + 1, message});
  }
  bool failed() const { return !errors_.empty(); }
  // Every finding, in file order.
  std::string text() const {
    std::vector<Diagnostic> sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return a.line != b.line ? a.line < b.line : a.col < b.col;
    });
    std::string out;
    for (const auto& d : sorted) out += (out.empty() ? "" : "\n") + d.str();
    return out;
  }

  // Reports every key of map `node` that is not in `known`, with a suggestion.
  void only_keys(const YAML::Node& node, const std::vector<std::string>& known,
                 const std::string& where) {
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      error(kv.first, "unknown key '" + key + "'" + (where.empty() ? "" : " in " + where) +
                          did_you_mean(key, known));
    }
  }

  bool is_map(const YAML::Node& n, const std::string& what) {
    if (n.IsMap()) return true;
    error(n, what + ": expected a mapping");
    return false;
  }

  bool string(const YAML::Node& n, const std::string& what, std::string* out) {
    if (!n.IsScalar()) {
      error(n, what + ": expected a string");
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  bool nonempty_string(const YAML::Node& n, const std::string& what, std::string* out) {
    if (!string(n, what, out)) return false;
    if (!out->empty()) return true;
    error(n, what + ": must not be empty");
    return false;
  }

  bool string_list(const YAML::Node& n, const std::string& what, std::vector<std::string>* out) {
    if (!n.IsSequence() || n.size() == 0) {
      error(n, what + ": expected a non-empty list of strings");
      return false;
    }
    out->clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        error(item, what + ": expected a string");
        return false;
      }
      out->push_back(item.Scalar());
    }
    return true;
  }

  bool boolean(const YAML::Node& n, const std::string& what, bool* out) {
    std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true") {
      *out = true;
      return true;
    }
    if (s == "false") {
      *out = false;
      return true;
    }
    error(n, what + ": expected true or false");
    return false;
  }

  // A whole number from `min` to `max`.
  template <class Int>
  bool integer(const YAML::Node& n, const std::string& what, long long min, long long max,
               Int* out) {
    if (n.IsScalar()) {
      try {
        long long v = n.as<long long>();
        if (v >= min && v <= max) {
          *out = static_cast<Int>(v);
          return true;
        }
      } catch (const YAML::Exception&) {
      }
    }
    error(n, what + ": expected an integer from " + std::to_string(min) + " to " +
                 std::to_string(max));
    return false;
  }

  bool duration(const YAML::Node& n, const std::string& what, Micros* out) {
    if (!n.IsScalar()) {
      error(n, what + ": expected a duration like 2s or 1m");
      return false;
    }
    auto d = parse_duration(n.Scalar());
    if (!d.ok()) {
      error(n, what + ": " + d.message());
      return false;
    }
    *out = *d;
    return true;
  }

 private:
  std::string file_;
  std::vector<Diagnostic> errors_;
};

json to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    json o = json::object();
    for (const auto& kv : n) o[kv.first.Scalar()] = to_json(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& item : n) a.push_back(to_json(item));
    return a;
  }
  if (n.IsScalar()) return n.Scalar();
  return nullptr;
}

const std::vector<std::string> kTopKeys = {"alerts", "ui_url", "remotes", "secrets", "dags"};
const std::vector<std::string> kDagsKeys = {"max_file_bytes", "max_yaml_nodes"};
const std::vector<std::string> kAlertsKeys = {"channels", "retries", "retry_delay"};
const std::vector<std::string> kTypes = {"webhook", "email", "command"};
const std::vector<std::string> kWebhookKeys = {"type", "url", "timeout", "ca_file"};
const std::vector<std::string> kEmailKeys = {
    "type", "smtp", "from", "to", "starttls", "username_env", "password_env", "timeout", "ca_file"};
const std::vector<std::string> kCommandKeys = {"type", "run", "timeout"};

void parse_channel(Checker& c, const std::string& name, const YAML::Node& key, const YAML::Node& n,
                   AlertsConfig* out) {
  std::string where = "channel '" + name + "'";
  if (!c.is_map(n, where)) return;
  AlertChannel ch;
  ch.name = name;
  YAML::Node type = n["type"];
  if (!type) {
    c.error(key, where + ": missing 'type' (webhook, email or command)");
    return;
  }
  std::string t;
  if (!c.string(type, where + ": type", &t)) return;
  const std::vector<std::string>* keys = nullptr;
  if (t == "webhook") {
    ch.type = AlertChannel::Type::Webhook;
    keys = &kWebhookKeys;
  } else if (t == "email") {
    ch.type = AlertChannel::Type::Email;
    keys = &kEmailKeys;
  } else if (t == "command") {
    ch.type = AlertChannel::Type::Command;
    keys = &kCommandKeys;
  } else {
    c.error(type, where + ": unknown channel type '" + t +
                      "' (expected webhook, email or command)" + did_you_mean(t, kTypes));
    return;
  }
  c.only_keys(n, *keys, where);
  auto required = [&](const char* k) {
    YAML::Node v = n[k];
    if (!v) c.error(key, where + ": missing '" + std::string(k) + "'");
    return v;
  };
  if (YAML::Node v = n["timeout"]) c.duration(v, where + ": timeout", &ch.timeout);
  if (YAML::Node v = n["ca_file"]) c.nonempty_string(v, where + ": ca_file", &ch.ca_file);
  switch (ch.type) {
    case AlertChannel::Type::Webhook:
      if (YAML::Node v = required("url")) {
        if (c.nonempty_string(v, where + ": url", &ch.url) && ch.url.rfind("http://", 0) != 0 &&
            ch.url.rfind("https://", 0) != 0)
          c.error(v, where + ": url: expected an http:// or https:// URL");
      }
      break;
    case AlertChannel::Type::Email:
      if (YAML::Node v = required("smtp")) {
        if (c.nonempty_string(v, where + ": smtp", &ch.smtp) && ch.smtp.rfind("smtp://", 0) != 0 &&
            ch.smtp.rfind("smtps://", 0) != 0)
          c.error(v, where + ": smtp: expected an smtp:// or smtps:// URL");
      }
      if (YAML::Node v = required("from")) c.nonempty_string(v, where + ": from", &ch.from);
      if (YAML::Node v = required("to")) {
        if (v.IsScalar() && !v.Scalar().empty()) {
          ch.to = {v.Scalar()};
        } else {
          c.string_list(v, where + ": to", &ch.to);
        }
      }
      if (YAML::Node v = n["starttls"]) c.boolean(v, where + ": starttls", &ch.starttls);
      if (YAML::Node v = n["username_env"]) c.string(v, where + ": username_env", &ch.username_env);
      if (YAML::Node v = n["password_env"]) c.string(v, where + ": password_env", &ch.password_env);
      break;
    case AlertChannel::Type::Command:
      if (YAML::Node v = required("run")) c.string_list(v, where + ": run", &ch.run);
      break;
  }
  out->channels[name] = std::move(ch);
}

void parse_alerts(Checker& c, const YAML::Node& n, AlertsConfig* out) {
  if (!c.is_map(n, "alerts")) return;
  c.only_keys(n, kAlertsKeys, "alerts");
  if (YAML::Node v = n["retries"]) c.integer(v, "alerts: retries", 0, 100, &out->retries);
  if (YAML::Node v = n["retry_delay"]) c.duration(v, "alerts: retry_delay", &out->retry_delay);
  if (YAML::Node chans = n["channels"]) {
    if (!c.is_map(chans, "alerts: channels")) return;
    for (const auto& kv : chans) parse_channel(c, kv.first.Scalar(), kv.first, kv.second, out);
  }
}

void parse_dags(Checker& c, const YAML::Node& n, DagLimits* out) {
  if (n.IsNull() || !c.is_map(n, "dags")) return;
  c.only_keys(n, kDagsKeys, "dags");
  auto limit = [&](const char* key, size_t min, size_t max, size_t* field) {
    if (YAML::Node v = n[key])
      c.integer(v, std::string("dags: ") + key, static_cast<long long>(min),
                static_cast<long long>(max), field);
  };
  limit("max_file_bytes", kMinDagLimits.max_file_bytes, kMaxDagLimits.max_file_bytes,
        &out->max_file_bytes);
  limit("max_yaml_nodes", kMinDagLimits.max_yaml_nodes, kMaxDagLimits.max_yaml_nodes,
        &out->max_yaml_nodes);
}

}  // namespace

const char* AlertChannel::type_name(Type t) {
  switch (t) {
    case Type::Webhook:
      return "webhook";
    case Type::Email:
      return "email";
    case Type::Command:
      return "command";
  }
  return "?";
}

std::string run_url(const std::string& ui_url, const std::string& run_id) {
  if (ui_url.empty() || run_id.empty()) return "";
  std::string base = ui_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/runs/" + run_id;
}

Result<ServerConfig> parse_server_config(std::string_view text, const std::string& file) {
  ServerConfig cfg;
  cfg.path = file;
  Checker c(file);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    c.error(e.mark.line, e.mark.column, e.msg);
    return make_error(c.text(), Errc::Invalid);
  } catch (const YAML::Exception& e) {
    return make_error(file + ": " + e.what(), Errc::Invalid);
  }
  try {
    if (!root || root.IsNull()) return cfg;  // an empty file is a valid, empty config
    if (!c.is_map(root, "config")) return make_error(c.text(), Errc::Invalid);
    c.only_keys(root, kTopKeys, "");
    if (YAML::Node v = root["alerts"]) parse_alerts(c, v, &cfg.alerts);
    if (YAML::Node v = root["ui_url"]) c.string(v, "ui_url", &cfg.ui_url);
    if (YAML::Node v = root["remotes"]) cfg.extra["remotes"] = to_json(v);
    if (YAML::Node v = root["dags"]) parse_dags(c, v, &cfg.dags);
    if (YAML::Node v = root["secrets"]; v && !v.IsNull() && c.is_map(v, "secrets")) {
      for (const auto& kv : v) {
        std::string name = kv.first.Scalar();
        bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
        });
        if (!ok) {
          c.error(kv.first, "secrets: invalid name '" + name + "' (use [A-Za-z0-9_]+)");
          continue;
        }
        std::string value;
        if (c.nonempty_string(kv.second, "secrets: " + name, &value))
          cfg.secrets[name] = std::move(value);
      }
    }
  } catch (const YAML::Exception& e) {
    c.error(e.mark.line, e.mark.column, e.msg);
  }
  if (c.failed()) return make_error(c.text(), Errc::Invalid);
  return cfg;
}

Result<ServerConfig> load_server_config(const std::filesystem::path& path) {
  auto text = read_file(path, 1u << 20);
  if (!text.ok()) return text.error();
  auto cfg = parse_server_config(*text, path.string());
  if (!cfg.ok()) return cfg;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    std::string w = path.string() + ": mode " + mode +
                    " lets group/others read it; it may hold secrets (webhook URLs, SMTP "
                    "settings): chmod 600 " +
                    path.string();
    spdlog::warn("{}", w);
    cfg->warnings.push_back(std::move(w));
  }
  return cfg;
}

}  // namespace drover
