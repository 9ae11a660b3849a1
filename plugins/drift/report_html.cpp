// render_html: the drift report as one self-contained HTML page (inline CSS and SVG).
#include <cmath>
#include <cstdio>
#include <string>

#include "plugins/drift/drift.hpp"

namespace drover::drift {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string num(const json& v, int prec = 4) {
  if (!v.is_number()) return "&ndash;";
  char buf[64];
  double d = v.get<double>();
  if (d != 0 && (std::fabs(d) < 1e-3 || std::fabs(d) >= 1e6)) {
    std::snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
  } else {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, d);
  }
  return buf;
}

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", v.get<double>());
    return buf;
  }
  return v.dump();
}

// Reference (blue) and current (orange) shares side by side per bin.
std::string histogram_svg(const json& h) {
  if (!h.is_object() || !h.contains("reference")) return "";
  const json& r = h["reference"];
  const json& c = h["current"];
  size_t k = r.size();
  if (k == 0) return "";
  double nr = 0, nc = 0;
  for (auto& v : r) nr += v.get<double>();
  for (auto& v : c) nc += v.get<double>();
  std::vector<double> sr(k), sc(k);
  double top = 0;
  for (size_t i = 0; i < k; ++i) {
    sr[i] = nr > 0 ? r[i].get<double>() / nr : 0;
    sc[i] = nc > 0 ? c[i].get<double>() / nc : 0;
    top = std::max(top, std::max(sr[i], sc[i]));
  }
  if (top <= 0) top = 1;
  const double W = 420, H = 120, pad = 4;
  double bw = (W - 2 * pad) / static_cast<double>(k);
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(int(W)) +
                  "\" height=\"" + std::to_string(int(H + 16)) + "\" role=\"img\">";
  s += "<line x1=\"0\" y1=\"" + std::to_string(int(H)) + "\" x2=\"" + std::to_string(int(W)) +
       "\" y2=\"" + std::to_string(int(H)) + "\" stroke=\"#999\"/>";
  char buf[256];
  for (size_t i = 0; i < k; ++i) {
    double x = pad + bw * static_cast<double>(i);
    double hr = sr[i] / top * (H - 4), hc = sc[i] / top * (H - 4);
    std::string label;
    if (h.contains("values") && i < h["values"].size()) {
      label = text_of(h["values"][i]);
    } else if (h.contains("edges") && i + 1 < h["edges"].size()) {
      label = "[" + text_of(h["edges"][i]) + ", " + text_of(h["edges"][i + 1]) + ")";
    }
    std::snprintf(buf, sizeof(buf),
                  "<rect class=\"ref\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">", x,
                  H - hr, bw / 2, hr);
    s += buf;
    s += "<title>" + esc(label) + " reference " + num(sr[i]) + "</title></rect>";
    std::snprintf(buf, sizeof(buf),
                  "<rect class=\"cur\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">",
                  x + bw / 2, H - hc, bw / 2, hc);
    s += buf;
    s += "<title>" + esc(label) + " current " + num(sc[i]) + "</title></rect>";
  }
  s += "</svg>";
  return s;
}

}  // namespace

std::string render_html(const json& report) {
  std::string o;
  o += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<title>Drift report</title><style>"
       "body{font:14px system-ui,sans-serif;margin:24px;color:#222}"
       "table{border-collapse:collapse;margin:12px 0}"
       "td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
       "th{background:#f4f4f4}.drift{color:#b00020;font-weight:600}.ok{color:#1b7f3b}"
       "rect.ref{fill:#4e79a7}rect.cur{fill:#f28e2b}.legend span{display:inline-block;"
       "width:10px;height:10px;margin:0 4px 0 12px}</style></head><body>\n";
  bool drift = report.value("drift", false);
  o += "<h1>Drift report</h1>\n<p>Reference <code>" + esc(report.value("reference", "")) +
       "</code> (" + text_of(report["rows"].value("reference", json(0))) +
       " rows), current <code>" + esc(report.value("current", "")) + "</code> (" +
       text_of(report["rows"].value("current", json(0))) + " rows).</p>\n";
  o += std::string("<p class=\"") + (drift ? "drift" : "ok") + "\">" +
       (drift ? "Dataset drift detected" : "No dataset drift") + ": " +
       text_of(report.value("n_drifted", json(0))) + " of " +
       text_of(report.value("n_tested", json(0))) + " features drifted (share " +
       num(report.value("share", json(0.0))) + ", threshold " +
       num(report.value("drift_share", json(0.5))) + ").</p>\n";
  const json& schema = report.value("schema", json::object());
  for (const char* key : {"added", "removed"}) {
    if (schema.contains(key) && !schema[key].empty()) {
      o += std::string("<p>Columns ") + key + ": ";
      for (auto& c : schema[key]) o += "<code>" + esc(c.get<std::string>()) + "</code> ";
      o += "</p>\n";
    }
  }
  if (schema.contains("type_changed")) {
    for (auto& t : schema["type_changed"]) {
      o += "<p>Type changed: <code>" + esc(t.value("column", "")) + "</code> " +
           esc(t.value("reference", "")) + " &rarr; " + esc(t.value("current", "")) + "</p>\n";
    }
  }
  o += "<table><tr><th>feature</th><th>type</th><th>method</th><th>score</th>"
       "<th>threshold</th><th>drift</th><th>n ref</th><th>n cur</th><th>missing</th>"
       "<th>out of range</th></tr>\n";
  const json& features = report.value("features", json::object());
  json order = report.value("columns", json::array());
  for (auto& nm : order) {
    std::string name = nm.get<std::string>();
    if (!features.contains(name)) continue;
    const json& f = features[name];
    bool d = f.value("drift", false);
    const json& st = f.value("stats", json::object());
    json oor = st.contains("range") ? st["range"].value("out_of_range_share", json()) : json();
    o += "<tr><td><a href=\"#f-" + esc(name) + "\">" + esc(name) + "</a></td><td>" +
         esc(f.value("type", "")) + "</td><td>" + esc(f.value("method", "")) + "</td><td>" +
         num(f.value("score", json())) + "</td><td>" + num(f.value("threshold", json())) +
         "</td><td class=\"" + (d ? "drift\">yes" : "ok\">no") + "</td><td>" +
         text_of(f.value("n_reference", json(0))) + "</td><td>" +
         text_of(f.value("n_current", json(0))) + "</td><td>" +
         num(f.value("missing_share", json())) + "</td><td>" + num(oor) + "</td></tr>\n";
  }
  o += "</table>\n<p class=\"legend\"><span style=\"background:#4e79a7\"></span>reference"
       "<span style=\"background:#f28e2b\"></span>current</p>\n";
  for (auto& nm : order) {
    std::string name = nm.get<std::string>();
    if (!features.contains(name)) continue;
    const json& f = features[name];
    const json& st = f.value("stats", json::object());
    o += "<h3 id=\"f-" + esc(name) + "\">" + esc(name) + "</h3>\n";
    if (f.contains("note")) o += "<p>" + esc(f["note"].get<std::string>()) + "</p>\n";
    o += "<p>";
    if (st.contains("ks") && st["ks"].is_object())
      o += "KS " + num(st["ks"].value("statistic", json())) + " (p " +
           num(st["ks"].value("p_value", json())) + ") &middot; ";
    if (st.contains("wasserstein"))
      o += "Wasserstein " + num(st["wasserstein"]) + " (normed " +
           num(st.value("wasserstein_normed", json())) + ") &middot; ";
    if (st.contains("chi2") && st["chi2"].is_object())
      o += "chi&sup2; " + num(st["chi2"].value("statistic", json())) + " (p " +
           num(st["chi2"].value("p_value", json())) + ") &middot; ";
    o += "PSI " + num(st.value("psi", json())) + " &middot; JS " + num(st.value("js", json())) +
         "</p>\n";
    o += histogram_svg(st.value("histogram", json())) + "\n";
  }
  o += "</body></html>\n";
  return o;
}

}  // namespace drover::drift
