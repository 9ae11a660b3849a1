// The `drift` task type (DESIGN.md §6): compares `current` with `reference` and writes
// drift.json and an HTML report in the work dir, publishes per-feature scores as metrics
// (`drift.FEATURE.score`, `drift.share`) and the values `drift` and `drifted`; fails only on
// drift with `fail_on_drift: true`.
// with: {reference: PATH, current: PATH, columns: [..], drift_share: 0.5,
//        fail_on_drift: false, report: drift.html, methods: {col: psi},
//        thresholds: {col: 0.2}, types: {col: categorical}}
#include <cstdio>
#include <filesystem>

#include "common/fs.hpp"
#include "plugins/dataset_ref.hpp"
#include "plugins/drift/drift.hpp"
#include "plugins/task_type.hpp"

namespace drover {
namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

namespace fs = std::filesystem;

class DriftTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "drift"; }
  // Both on every path (a skipped check publishes drift: false, drifted: []); `skipped`, the
  // reason, only when there was no reference, so templates cannot name it.
  std::vector<std::string> published_keys(const json&) const override {
    return {"drift", "drifted"};
  }

  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object()) {
      errors.push_back({"", "task type 'drift' needs a 'with:' block with reference and current"});
      return;
    }
    check_known_keys(with,
                     {"reference", "current", "columns", "drift_share", "fail_on_drift", "report",
                      "methods", "thresholds", "types"},
                     "drift", errors);
    for (const char* k : {"reference", "current"}) {
      if (!with.contains(k)) {
        errors.push_back({"", std::string("drift task needs '") + k + "'"});
      } else if (!with[k].is_string() || with[k].get<std::string>().empty()) {
        errors.push_back({k, std::string("'") + k + "' must be a file path"});
      } else if (is_model_data_ref(with[k].get<std::string>()) && !is_template(with[k])) {
        if (std::string(k) == "current")
          errors.push_back(
              {k, "'current' names the new data; only 'reference' may be model:REF:PATH"});
        else if (auto m = parse_model_data_ref(with[k].get<std::string>()); !m)
          errors.push_back({k, m.message()});
      }
    }
    if (with.contains("report") && !with["report"].is_string())
      errors.push_back({"report", "'report' must be a file name"});
    if (with.contains("columns")) {
      const json& c = with["columns"];
      bool ok = c.is_array();
      if (ok)
        for (auto& x : c) ok &= x.is_string();
      if (!ok) errors.push_back({"columns", "'columns' must be a list of column names"});
    }
    if (with.contains("drift_share") && !is_template(with["drift_share"])) {
      const json& s = with["drift_share"];
      if (!s.is_number() || s.get<double>() <= 0 || s.get<double>() > 1)
        errors.push_back({"drift_share", "'drift_share' must be a number in (0, 1]"});
    }
    if (with.contains("fail_on_drift") && !with["fail_on_drift"].is_boolean() &&
        !is_template(with["fail_on_drift"]))
      errors.push_back({"fail_on_drift", "'fail_on_drift' must be true or false"});
    if (with.contains("methods")) {
      const json& m = with["methods"];
      if (!m.is_object()) {
        errors.push_back({"methods", "'methods' must map column names to methods"});
      } else {
        for (auto& [col, v] : m.items()) {
          if (!v.is_string()) {
            errors.push_back({"methods", "method of column '" + col + "' must be a name"});
          } else if (!is_template(v)) {
            auto c = drift::canonical_method(v.get<std::string>());
            if (!c.ok()) errors.push_back({"methods", "column '" + col + "': " + c.message()});
          }
        }
      }
    }
    if (with.contains("thresholds")) {
      const json& t = with["thresholds"];
      if (!t.is_object()) {
        errors.push_back({"thresholds", "'thresholds' must map column names to numbers"});
      } else {
        for (auto& [col, v] : t.items())
          if (!v.is_number() && !is_template(v))
            errors.push_back({"thresholds", "threshold of column '" + col + "' must be a number"});
      }
    }
    if (with.contains("types")) {
      const json& t = with["types"];
      if (!t.is_object()) {
        errors.push_back({"types", "'types' must map column names to numeric or categorical"});
      } else {
        for (auto& [col, v] : t.items())
          if (!v.is_string() || (v != "numeric" && v != "categorical"))
            errors.push_back(
                {"types", "type of column '" + col + "' must be numeric or categorical"});
      }
    }
  }

  int run(TaskContext& ctx) const override {
    std::vector<ConfigError> errors;
    const json& w = ctx.spec.with;
    validate(w, errors);
    if (!errors.empty()) {
      for (auto& e : errors) std::fprintf(stderr, "drift: %s\n", e.message.c_str());
      return 1;
    }
    fs::path work = ctx.spec.work_dir();
    auto resolve = [&](const std::string& p) {
      fs::path path(p);
      return path.is_absolute() ? path : work / path;
    };
    drift::DriftOptions o;
    // A reference or current may name a file of a dataset snapshot ("events@reference:
    // train.csv"); it is materialized, verified, next to the work dir.
    fs::path refs_dir = fs::path(ctx.spec.try_dir) / "refs";
    // "model:NAME@ALIAS:PATH": the daemon resolved the model's training data for this try.
    std::string reference = w["reference"].get<std::string>();
    std::string missing;
    if (is_model_data_ref(reference)) {
      const json& c = ctx.spec.context;
      if (c.is_object() && c.contains("reference")) {
        std::printf("drift: reference %s is %s's training data, version %s\n", reference.c_str(),
                    c.value("reference_model", "").c_str(), c.value("reference", "").c_str());
        reference = c.value("reference", "");
      } else {
        missing = c.is_object() ? c.value("reference_missing", "") : "";
        if (missing.empty()) missing = "the daemon resolved no model for it";
      }
    }
    auto ref = missing.empty() ? materialize_dataset_file(ctx.spec.home, reference, refs_dir)
                               : Result<fs::path>(make_error(missing, Errc::NotFound));
    if (!ref && ref.error().code == Errc::NotFound &&
        (!missing.empty() || is_dataset_file_ref(reference))) {
      // No reference yet (e.g. before the first successful retrain moves its tag): nothing
      // to compare with, which is not drift. Said plainly in the log and the values.
      std::printf("drift: no reference (%s): %s; skipping the check\n",
                  w["reference"].get<std::string>().c_str(), ref.message().c_str());
      std::string why = "no reference: " + ref.message();
      ctx.publish.value("drift", false);
      ctx.publish.value("drifted", json::array());
      ctx.publish.value("skipped", why);
      // The declared report files exist either way, saying why nothing was compared.
      json skipped = {
          {"drift", false}, {"share", 0.0}, {"features", json::object()}, {"skipped", why}};
      (void)write_file_atomic(resolve("drift.json"), skipped.dump(2) + "\n");
      (void)write_file_atomic(resolve(w.value("report", std::string("drift.html"))),
                              "<!doctype html><meta charset=utf-8><title>Drift: skipped</title>"
                              "<p>Drift check skipped: " +
                                  html_escape(why) + "</p>\n");
      return 0;
    }
    if (!ref) {
      std::fprintf(stderr, "drift: reference: %s\n", ref.message().c_str());
      return 1;
    }
    auto cur = materialize_dataset_file(ctx.spec.home, w["current"].get<std::string>(), refs_dir);
    if (!cur) {
      std::fprintf(stderr, "drift: current: %s\n", cur.message().c_str());
      return 1;
    }
    o.reference = resolve(ref->string()).string();
    o.current = resolve(cur->string()).string();
    o.reference_name = w["reference"].get<std::string>();
    o.current_name = w["current"].get<std::string>();
    if (w.contains("columns"))
      for (auto& c : w["columns"]) o.columns.push_back(c.get<std::string>());
    if (w.contains("drift_share")) o.drift_share = w["drift_share"].get<double>();
    if (w.contains("methods"))
      for (auto& [k, v] : w["methods"].items()) o.methods[k] = v.get<std::string>();
    if (w.contains("thresholds"))
      for (auto& [k, v] : w["thresholds"].items()) o.thresholds[k] = v.get<double>();
    if (w.contains("types"))
      for (auto& [k, v] : w["types"].items()) o.types[k] = v.get<std::string>();
    bool fail_on_drift = w.value("fail_on_drift", false);

    auto report = drift::compute_drift(o);
    if (!report.ok()) {
      std::fprintf(stderr, "drift: %s\n", report.message().c_str());
      return 1;
    }
    const json& r = *report;
    Status st = write_file_atomic(work / "drift.json", r.dump(2) + "\n");
    if (st.ok()) {
      st = write_file_atomic(resolve(w.value("report", std::string("drift.html"))),
                             drift::render_html(r));
    }
    if (!st.ok()) {
      std::fprintf(stderr, "drift: %s\n", st.message().c_str());
      return 1;
    }
    for (auto& [name, f] : r["features"].items()) {
      if (f["score"].is_number())
        ctx.publish.metric("drift." + name + ".score", f["score"].get<double>());
    }
    ctx.publish.metric("drift.share", r["share"].get<double>());
    ctx.publish.value("drift", r["drift"]);
    ctx.publish.value("drifted", r["drifted"]);
    if (r["drift"].get<bool>()) {
      // The DAG's on_drift channels hear of it, with the drifted features and their scores.
      json scores = json::object();
      for (auto& name : r["drifted"]) {
        const json& f = r["features"][name.get<std::string>()];
        if (f["score"].is_number()) scores[name.get<std::string>()] = f["score"];
      }
      std::string names;
      for (auto& [k, v] : scores.items())
        names += (names.empty() ? "" : ", ") + k + " " + std::to_string(v.get<double>());
      size_t n = r["drifted"].size();
      ctx.publish.alert("drift",
                        "feature drift in " + std::to_string(n) + " feature" + (n == 1 ? "" : "s") +
                            (names.empty() ? "" : ": " + names),
                        {{"drifted", r["drifted"]}, {"scores", scores}});
    }
    std::printf("drift: %d of %d features drifted (share %.4g, threshold %.4g)%s\n",
                r["n_drifted"].get<int>(), r["n_tested"].get<int>(), r["share"].get<double>(),
                r["drift_share"].get<double>(), r["drift"].get<bool>() ? ": DATASET DRIFT" : "");
    for (auto& name : r["drifted"]) {
      const json& f = r["features"][name.get<std::string>()];
      std::printf("  %s: %s score %.6g (threshold %g)\n", name.get<std::string>().c_str(),
                  f["method"].get<std::string>().c_str(), f["score"].get<double>(),
                  f["threshold"].get<double>());
    }
    std::fflush(stdout);
    return r["drift"].get<bool>() && fail_on_drift ? 1 : 0;
  }
};

}  // namespace

std::unique_ptr<TaskType> make_drift_task_type() { return std::make_unique<DriftTaskType>(); }

}  // namespace drover
