#include "metrics/compare.h"

#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/json_text.h"

namespace fedsim {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A number, null/absent (nullopt), or an InputError naming the file and key.
std::optional<double> OptNumber(const json& obj, const char* key, const std::string& file, const char* where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) {
    throw InputError(fmt::format("{}: {}.{}: expected a number or null, got {}", file, where, key, it->dump()));
  }
  return it->get<double>();
}

// Results and configs nest a few levels; a file nested deeper than this is
// hostile (the parser and the copies recurse once per level) and refused.
constexpr int kMaxJsonDepth = 64;

// `text` parsed, or an InputError naming `where` (file, or file:line).
json ParseJsonText(const std::string& text, const std::string& where) {
  if (const int line = LineNestedDeeperThan(text, kMaxJsonDepth)) {
    throw InputError(fmt::format("{}: nested deeper than {} levels (line {} of its text)", where, kMaxJsonDepth, line));
  }
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON ({})", where, e.what()));
  }
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot be read");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json ReadJsonFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": no such file");
  return ParseJsonText(ReadText(path), path);
}

// "runs/x/" -> "runs/x"; "/" stays.
std::string TrimSlashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

// Sets a dotted key path in `j` (objects created as needed).
void SetPath(json& j, const std::string& key, const json& value) {
  json* node = &j;
  size_t start = 0;
  for (;;) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object()) *node = json::object();
    if (dot == std::string::npos) {
      (*node)[part] = value;
      return;
    }
    node = &(*node)[part];
    start = dot + 1;
  }
}

std::vector<RunSummary> LoadSweep(const std::string& manifest, const fs::path& sweep_dir) {
  std::ifstream in(manifest, std::ios::binary);
  if (!in) throw InputError(manifest + ": cannot be read");
  std::vector<std::string> order;
  std::map<std::string, json> entries;  // name -> the last line for it
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json e = ParseJsonText(line, fmt::format("{}:{}", manifest, lineno));
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || e["name"].get<std::string>().empty()) {
      throw InputError(fmt::format("{}:{}: expected an object with a \"name\" string", manifest, lineno));
    }
    for (const char* k : {"dir", "status"}) {
      if (e.contains(k) && !e[k].is_string()) {
        throw InputError(fmt::format("{}:{}: \"{}\" must be a string", manifest, lineno, k));
      }
    }
    if (e.contains("settings") && !e["settings"].is_object()) {
      throw InputError(fmt::format("{}:{}: \"settings\" must be an object", manifest, lineno));
    }
    const std::string name = e["name"].get<std::string>();
    if (!entries.count(name)) order.push_back(name);
    entries[name] = e;
  }
  if (order.empty()) throw InputError(manifest + ": lists no runs");

  std::vector<RunSummary> runs;
  for (const auto& name : order) {
    const json& e = entries[name];
    const fs::path dir = sweep_dir / (e.contains("dir") ? e["dir"].get<std::string>() : name);
    const std::string metrics = (dir / "metrics.json").string();
    std::error_code ec;
    if (fs::exists(metrics, ec)) {
      runs.push_back(LoadRun(metrics, name));
      continue;
    }
    // No metrics.json: a failed, pending or running run. Shown with its status.
    RunSummary r;
    r.name = name;
    r.dir = dir.string();
    const std::string st = e.value("status", std::string("missing"));
    r.status = st == "completed" ? "missing metrics.json" : st;
    const std::string cfg = (dir / "config.json").string();
    if (fs::exists(cfg, ec)) {
      const std::string text = ReadText(cfg);
      json c = LineNestedDeeperThan(text, kMaxJsonDepth) ? json() : json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (c.is_object()) {
        r.config = std::move(c);
        r.config_complete = true;
        r.source = cfg;
      }
    }
    if (!r.config_complete) {
      r.config = json::object();
      if (e.contains("settings")) {
        for (const auto& [k, v] : e["settings"].items()) SetPath(r.config, k, v);
      }
      if (e.contains("seed")) SetPath(r.config, "experiment.seed", e["seed"]);
      r.source = manifest;
    }
    runs.push_back(std::move(r));
  }
  return runs;
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// Columns are counted in code points, so "±" is one.
size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string MarkdownCell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

// Shortest text that reads back as the same double (CSV).
std::string Exact(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

std::string FmtStat(const Stat& s, int decimals) {
  if (s.n == 0) return "-";
  if (s.n == 1) return fmt::format("{:.{}f}", s.mean, decimals);
  return fmt::format("{:.{}f} ± {:.{}f}", s.mean, decimals, s.std, decimals);
}

std::string FmtMB(double mb) {
  if (std::isnan(mb)) return "-";
  if (mb < 1) return fmt::format("{:.3f}", mb);
  if (mb < 100) return fmt::format("{:.2f}", mb);
  return fmt::format("{:.1f}", mb);
}

std::string FmtTarget(double t) { return fmt::format("{}", t); }

}  // namespace

RunSummary LoadRun(const std::string& metrics_path, const std::string& name) {
  const json m = ReadJsonFile(metrics_path);
  if (!m.is_object()) throw InputError(metrics_path + ": expected a JSON object (a fedsim metrics.json)");
  const auto sit = m.find("summary");
  if (sit == m.end() || !sit->is_object() || !sit->contains("status") || !(*sit)["status"].is_string()) {
    throw InputError(metrics_path + ": no summary.status (not a metrics.json written by fedsim run)");
  }
  const json& s = *sit;
  RunSummary r;
  r.name = name;
  r.dir = fs::path(metrics_path).parent_path().string();
  r.source = metrics_path;
  r.has_metrics = true;
  r.status = s["status"].get<std::string>();
  if (m.contains("config") && m["config"].is_object()) {
    r.config = m["config"];
    r.config_complete = true;
  }
  r.final_test_accuracy = OptNumber(s, "final_test_accuracy", metrics_path, "summary");
  r.best_test_accuracy = OptNumber(s, "best_test_accuracy", metrics_path, "summary");
  r.target_accuracy = OptNumber(s, "target_accuracy", metrics_path, "summary");
  if (const auto rt = OptNumber(s, "rounds_to_target", metrics_path, "summary")) {
    r.rounds_to_target = static_cast<int>(*rt);
  }
  r.bytes_up = OptNumber(s, "bytes_up", metrics_path, "summary").value_or(0.0);
  r.bytes_down = OptNumber(s, "bytes_down", metrics_path, "summary").value_or(0.0);
  r.wall_seconds = OptNumber(s, "wall_seconds", metrics_path, "summary").value_or(0.0);
  r.sim_seconds = OptNumber(s, "sim_time_s", metrics_path, "summary");
  r.epsilon = OptNumber(s, "epsilon", metrics_path, "summary");
  std::string mode = "none";
  if (r.config_complete && r.config.contains("privacy") && r.config["privacy"].is_object() &&
      r.config["privacy"].contains("mode") && r.config["privacy"]["mode"].is_string()) {
    mode = r.config["privacy"]["mode"].get<std::string>();
  }
  r.dp = mode != "none" || r.epsilon.has_value();
  if (r.config_complete && r.config.contains("baseline") && r.config["baseline"].is_object() &&
      r.config["baseline"].contains("kind") && r.config["baseline"]["kind"].is_string() &&
      r.config["baseline"]["kind"] != "none") {
    r.kind = r.config["baseline"]["kind"].get<std::string>();
  }
  if (m.contains("rounds")) {
    if (!m["rounds"].is_array()) throw InputError(metrics_path + ": \"rounds\" must be an array");
    for (const auto& rec : m["rounds"]) {
      if (!rec.is_object() || !rec.contains("round") || !rec["round"].is_number_integer()) {
        throw InputError(metrics_path + ": rounds: each record needs an integer \"round\"");
      }
      if (const auto acc = OptNumber(rec, "test_accuracy", metrics_path, "rounds[]")) {
        r.accuracy.emplace_back(rec["round"].get<int>(), *acc);
      }
    }
  }
  return r;
}

std::vector<RunSummary> LoadRuns(const std::vector<std::string>& paths) {
  std::vector<RunSummary> runs;
  for (const auto& given : paths) {
    const std::string p = TrimSlashes(given);
    std::error_code ec;
    const fs::path fp(p);
    if (!fs::exists(fp, ec)) throw InputError(p + ": no such file or directory");
    std::vector<RunSummary> add;
    if (fs::is_directory(fp, ec)) {
      if (fs::exists(fp / "metrics.json", ec)) {
        add.push_back(LoadRun((fp / "metrics.json").string(), p));
      } else if (fs::exists(fp / "manifest.jsonl", ec)) {
        add = LoadSweep((fp / "manifest.jsonl").string(), fp);
      } else if (fs::exists(fp / "config.json", ec) || fs::exists(fp / "rounds.jsonl", ec)) {
        throw InputError((fp / "metrics.json").string() +
                         ": no such file (the run has not finished, or it failed before writing its results)");
      } else {
        throw InputError(p + ": neither a run directory (no metrics.json) nor a sweep directory (no manifest.jsonl)");
      }
    } else if (fp.filename() == "manifest.jsonl") {
      add = LoadSweep(p, fp.parent_path());
    } else {
      const std::string parent = fp.parent_path().string();
      add.push_back(LoadRun(p, parent.empty() ? p : parent));
    }
    for (auto& r : add) runs.push_back(std::move(r));
  }
  return runs;
}

static std::optional<json> LookupGroupValue(const RunSummary& run, const std::string& key) {
  const json* node = &run.config;
  size_t start = 0;
  for (;;) {
    const auto dot = key.find('.', start);
    const std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || !node->is_object() || !node->contains(part)) break;
    node = &(*node)[part];
    if (dot == std::string::npos) return *node;
    start = dot + 1;
  }
  if (!run.config_complete) return std::nullopt;  // a sweep run without results: value unknown
  throw InputError(fmt::format("--group-by {}: no such config key in {} (see fedsim list --config-keys)", key,
                               run.source));
}

json GroupValue(const RunSummary& run, const std::string& key) {
  const auto v = LookupGroupValue(run, key);
  if (!v) throw InputError(fmt::format("--group-by {}: {} has no config to read it from", key, run.source));
  return *v;
}

Stat MeanStd(const std::vector<double>& values) {
  Stat s;
  s.n = static_cast<int>(values.size());
  if (s.n == 0) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / s.n;
  if (s.n < 2) return s;
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / (s.n - 1));
  return s;
}

std::optional<int> RoundsToTarget(const RunSummary& run, std::optional<double> target) {
  if (!target) return run.rounds_to_target;
  for (const auto& [round, acc] : run.accuracy) {
    if (acc >= *target) return round;
  }
  return std::nullopt;
}

namespace {

// `v` with every whole number as an integer and every other as a double, so
// that 1 and 1.0 print the same ("1").
json CanonicalNumbers(const json& v) {
  if (v.is_number()) {
    const double d = v.get<double>();
    if (std::nearbyint(d) == d && std::fabs(d) < 9007199254740992.0) return json(static_cast<int64_t>(d));
    return json(d);
  }
  if (v.is_array() || v.is_object()) {
    json out = v;
    for (auto& e : out) e = CanonicalNumbers(e);
    return out;
  }
  return v;
}

}  // namespace

std::vector<CompareRow> CompareRows(const std::vector<RunSummary>& runs, const std::vector<std::string>& group_by,
                                    std::optional<double> target) {
  // Group identity: the dumped JSON values ("?" for unknown); rows in order of first appearance.
  std::vector<std::vector<std::string>> ids, labels;
  std::vector<std::vector<const RunSummary*>> members;
  for (const auto& run : runs) {
    std::vector<std::string> id, label;
    if (group_by.empty()) {
      id = {std::to_string(ids.size())};
      label = {run.name};
    }
    for (const auto& key : group_by) {
      const auto v = LookupGroupValue(run, key);
      // 1 and 1.0 are one value: a pending sweep run's manifest writes what
      // was given, a finished run's config the resolved number.
      const std::string text = v ? CanonicalNumbers(*v).dump() : "\x01?";
      id.push_back(text);
      label.push_back(!v ? "?" : v->is_string() ? v->get<std::string>() : text);
    }
    size_t i = 0;
    while (i < ids.size() && ids[i] != id) ++i;
    if (i == ids.size()) {
      ids.push_back(id);
      labels.push_back(label);
      members.emplace_back();
    }
    members[i].push_back(&run);
  }

  std::vector<CompareRow> rows;
  for (size_t g = 0; g < ids.size(); ++g) {
    CompareRow row;
    row.labels = labels[g];
    const auto& ms = members[g];
    row.runs = static_cast<int>(ms.size());
    std::vector<std::string> status_order;
    std::map<std::string, int> status_count;
    for (const auto* r : ms) {
      if (r->status == "completed") ++row.completed;
      if (!status_count.count(r->status)) status_order.push_back(r->status);
      ++status_count[r->status];
    }
    if (row.runs == 1 || status_order.size() == 1) {
      row.status = status_order.front();
    } else {
      std::vector<std::string> parts;
      for (const auto& st : status_order) parts.push_back(fmt::format("{} {}", status_count[st], st));
      row.status = Join(parts, ", ");
    }
    std::vector<const RunSummary*> used;
    for (const auto* r : ms) {
      if (row.completed > 0 ? r->status == "completed" : r->has_metrics) used.push_back(r);
    }
    row.used = static_cast<int>(used.size());
    std::vector<double> fin, best, rtt, up, down, wall, eps, sim;
    for (const auto* r : used) {
      row.kind = row.kind.empty() || row.kind == r->kind ? r->kind : "mixed";
      if (r->sim_seconds) sim.push_back(*r->sim_seconds);
      if (r->final_test_accuracy) fin.push_back(*r->final_test_accuracy);
      if (r->best_test_accuracy) best.push_back(*r->best_test_accuracy);
      if (target || r->target_accuracy) {
        ++row.target_runs;
        if (const auto t = RoundsToTarget(*r, target)) rtt.push_back(*t);
      }
      up.push_back(r->bytes_up / 1e6);
      down.push_back(r->bytes_down / 1e6);
      wall.push_back(r->wall_seconds);
      if (r->dp) {
        row.dp = true;
        if (r->epsilon) {
          eps.push_back(*r->epsilon);
        } else {
          row.epsilon_infinite = true;
        }
      }
    }
    row.has_target = row.target_runs > 0;
    row.final_acc = MeanStd(fin);
    row.best_acc = MeanStd(best);
    row.rounds_to_target = MeanStd(rtt);
    row.mb_up = MeanStd(up);
    row.mb_down = MeanStd(down);
    row.wall = MeanStd(wall);
    row.sim = MeanStd(sim);
    row.epsilon = MeanStd(eps);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string CompareTable(const std::vector<RunSummary>& runs, const std::vector<std::string>& group_by, bool csv,
                         std::optional<double> target) {
  if (target && !(*target >= 0 && *target <= 1)) {
    throw InputError(fmt::format("--target {}: expected an accuracy in [0, 1]", *target));
  }
  const auto rows = CompareRows(runs, group_by, target);
  std::vector<std::string> label_headers = group_by.empty() ? std::vector<std::string>{"run"} : group_by;

  if (csv) {
    std::vector<std::string> header = label_headers;
    for (const char* h : {"n", "completed", "status", "final_acc_mean", "final_acc_std", "best_acc_mean",
                          "best_acc_std", "rounds_to_target_mean", "rounds_to_target_std", "rounds_to_target_reached",
                          "target_runs", "mb_up", "mb_down", "sim_seconds", "wall_seconds", "epsilon", "kind"}) {
      header.push_back(h);
    }
    std::string out;
    std::vector<std::string> cells;
    for (const auto& h : header) cells.push_back(CsvField(h));
    out += Join(cells, ",") + "\n";
    for (const auto& r : rows) {
      cells.clear();
      for (const auto& l : r.labels) cells.push_back(CsvField(l));
      cells.push_back(std::to_string(r.runs));
      cells.push_back(std::to_string(r.completed));
      cells.push_back(CsvField(r.status));
      for (const Stat* s : {&r.final_acc, &r.best_acc, &r.rounds_to_target}) {
        cells.push_back(Exact(s->mean));
        cells.push_back(Exact(s->std));
      }
      cells.push_back(r.has_target ? std::to_string(r.rounds_to_target.n) : "");
      cells.push_back(std::to_string(r.target_runs));
      cells.push_back(r.used ? Exact(r.mb_up.mean) : "");
      cells.push_back(r.used ? Exact(r.mb_down.mean) : "");
      cells.push_back(r.sim.n ? Exact(r.sim.mean) : "");
      cells.push_back(r.used ? Exact(r.wall.mean) : "");
      cells.push_back(!r.dp ? "" : r.epsilon_infinite ? "inf" : Exact(r.epsilon.mean));
      cells.push_back(CsvField(r.kind));
      out += Join(cells, ",") + "\n";
    }
    return out;
  }

  bool any_target = false, any_dp = false, any_baseline = false, any_sim = false;
  for (const auto& r : rows) {
    any_target = any_target || r.has_target;
    any_dp = any_dp || r.dp;
    any_baseline = any_baseline || (!r.kind.empty() && r.kind != "federated");
    any_sim = any_sim || r.sim.n > 0;
  }
  std::string target_header = "rounds to target";
  if (target) {
    target_header = "rounds to " + FmtTarget(*target);
  } else {
    std::optional<double> common;
    bool same = true;
    for (const auto& run : runs) {
      if (!run.target_accuracy) continue;
      if (common && *common != *run.target_accuracy) same = false;
      common = run.target_accuracy;
    }
    if (common && same) target_header = "rounds to " + FmtTarget(*common);
  }

  std::vector<std::string> header = label_headers;
  std::vector<bool> right(header.size(), false);
  auto add = [&](const std::string& h, bool r) {
    header.push_back(h);
    right.push_back(r);
  };
  if (any_baseline) add("kind", false);
  add("n", true);
  add("status", false);
  add("final acc", true);
  add("best acc", true);
  if (any_target) add(target_header, true);
  add("MB up", true);
  add("MB down", true);
  if (any_sim) add("simulated s", true);
  add("wall s", true);
  if (any_dp) add("epsilon", true);

  std::vector<std::vector<std::string>> table;
  for (const auto& r : rows) {
    std::vector<std::string> c = r.labels;
    if (any_baseline) c.push_back(r.kind.empty() ? "-" : r.kind);
    c.push_back(std::to_string(r.runs));
    c.push_back(r.status);
    c.push_back(FmtStat(r.final_acc, 4));
    c.push_back(FmtStat(r.best_acc, 4));
    if (any_target) {
      const Stat& t = r.rounds_to_target;
      std::string cell;
      if (r.has_target) {
        cell = t.n == 0 ? "-" : FmtStat(t, t.n == 1 ? 0 : 1);
        if (t.n > 0 && r.kind != "federated" && r.kind != "mixed" && !r.kind.empty()) cell += " ep";
        if (t.n > 0 && t.n < r.target_runs) cell += fmt::format(" ({}/{})", t.n, r.target_runs);
      }
      c.push_back(cell);
    }
    c.push_back(r.used ? FmtMB(r.mb_up.mean) : "-");
    c.push_back(r.used ? FmtMB(r.mb_down.mean) : "-");
    if (any_sim) c.push_back(r.sim.n ? fmt::format("{:.1f}", r.sim.mean) : "-");
    c.push_back(r.used ? fmt::format("{:.2f}", r.wall.mean) : "-");
    if (any_dp) {
      c.push_back(!r.dp ? "" : r.epsilon_infinite ? "inf" : r.epsilon.n ? fmt::format("{:.2f}", r.epsilon.mean) : "-");
    }
    for (auto& cell : c) cell = MarkdownCell(cell);
    table.push_back(std::move(c));
  }
  for (auto& h : header) h = MarkdownCell(h);

  std::vector<size_t> width(header.size(), 3);
  for (size_t i = 0; i < header.size(); ++i) width[i] = std::max(width[i], DisplayWidth(header[i]));
  for (const auto& row : table) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], DisplayWidth(row[i]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string pad(width[i] - DisplayWidth(cells[i]), ' ');
      out += " " + (right[i] ? pad + cells[i] : cells[i] + pad) + " |";
    }
    return out + "\n";
  };
  std::string out = line(header);
  out += "|";
  for (size_t i = 0; i < header.size(); ++i) {
    out += right[i] ? std::string(width[i] + 1, '-') + ":|" : std::string(width[i] + 2, '-') + "|";
  }
  out += "\n";
  for (const auto& row : table) out += line(row);
  return out;
}

}  // namespace fedsim
