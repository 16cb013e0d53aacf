// fedsim compare: loading runs and sweeps, grouping, mean ± std, formatting.
// Every metrics.json here is written by hand; expected numbers are computed by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "../data/test_files.h"
#include "core/error.h"
#include "metrics/compare.h"

using fedsim::testing::TempDir;
using fedsim::testing::WriteText;
using nlohmann::json;

namespace {

struct Fake {
  std::string algo = "fedavg";
  double alpha = 0.5;
  int seed = 1;
  std::string status = "completed";
  json final_acc = 0.8;
  json best_acc = 0.85;
  json target = nullptr;            // summary.target_accuracy
  json rounds_to_target = nullptr;  // summary.rounds_to_target
  std::vector<json> acc = {0.5, 0.7, 0.85};  // test_accuracy of rounds 1, 2, 3
  double bytes_up = 2e6, bytes_down = 4e6, wall = 1.5;
  std::string privacy = "none";
  json epsilon = nullptr;
};

// Writes DIR/metrics.json with the keys compare reads, and returns DIR.
std::string WriteRun(const std::string& dir, const Fake& f) {
  std::filesystem::create_directories(dir);
  json rounds = json::array();
  for (size_t i = 0; i < f.acc.size(); ++i) {
    rounds.push_back({{"round", static_cast<int>(i + 1)}, {"test_accuracy", f.acc[i]}, {"test_loss", 1.0}});
  }
  const json m = {
      {"config",
       {{"algorithm", {{"name", f.algo}, {"lr", 0.01}}},
        {"data", {{"partition", {{"kind", "dirichlet"}, {"alpha", f.alpha}}}}},
        {"experiment", {{"seed", f.seed}, {"rounds", 3}}},
        {"privacy", {{"mode", f.privacy}}}}},
      {"rounds", rounds},
      {"summary",
       {{"status", f.status},
        {"final_test_accuracy", f.final_acc},
        {"best_test_accuracy", f.best_acc},
        {"target_accuracy", f.target},
        {"rounds_to_target", f.rounds_to_target},
        {"bytes_up", f.bytes_up},
        {"bytes_down", f.bytes_down},
        {"wall_seconds", f.wall},
        {"epsilon", f.epsilon}}}};
  WriteText(dir + "/metrics.json", m.dump());
  return dir;
}

// Catches the InputError and returns its message ("" if none was thrown).
template <typename F>
std::string InputErrorOf(F&& f) {
  try {
    f();
  } catch (const fedsim::InputError& e) {
    return e.what();
  }
  return "";
}

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("compare: mean and sample standard deviation", "[metrics][compare]") {
  auto s = fedsim::MeanStd({0.7, 0.8, 0.9});
  CHECK(s.n == 3);
  CHECK(s.mean == Approx(0.8));
  CHECK(s.std == Approx(0.1));  // sqrt((0.01 + 0 + 0.01) / 2)
  s = fedsim::MeanStd({1, 2, 3, 4});
  CHECK(s.mean == Approx(2.5));
  CHECK(s.std == Approx(std::sqrt(5.0 / 3.0)));  // (2.25 + 0.25 + 0.25 + 2.25) / 3
  s = fedsim::MeanStd({0.42});
  CHECK(s.mean == Approx(0.42));
  CHECK(std::isnan(s.std));
  CHECK(fedsim::MeanStd({}).n == 0);
}

TEST_CASE("compare: loads a run directory", "[metrics][compare]") {
  TempDir t;
  Fake f;
  f.final_acc = 0.75;
  f.best_acc = 0.8;
  f.target = 0.7;
  f.rounds_to_target = 2;
  WriteRun(t.File("a"), f);
  const auto runs = fedsim::LoadRuns({t.File("a") + "/"});
  REQUIRE(runs.size() == 1);
  const auto& r = runs[0];
  CHECK(r.name == t.File("a"));
  CHECK(r.status == "completed");
  CHECK(r.has_metrics);
  CHECK(*r.final_test_accuracy == 0.75);
  CHECK(*r.best_test_accuracy == 0.8);
  CHECK(*r.rounds_to_target == 2);
  CHECK(r.bytes_up == 2e6);
  CHECK(r.wall_seconds == 1.5);
  CHECK_FALSE(r.dp);
  REQUIRE(r.accuracy.size() == 3);
  CHECK(r.accuracy[2] == std::make_pair(3, 0.85));
  CHECK(fedsim::GroupValue(r, "data.partition.alpha") == json(0.5));
  // A metrics.json named directly is the same run.
  CHECK(fedsim::LoadRuns({t.File("a/metrics.json")})[0].final_test_accuracy == 0.75);
}

TEST_CASE("compare: one row per run, a lone run has no std", "[metrics][compare]") {
  TempDir t;
  Fake f;
  f.final_acc = 0.7;
  WriteRun(t.File("r1"), f);
  f.final_acc = 0.9;
  f.bytes_up = 24400;
  WriteRun(t.File("r2"), f);
  const auto runs = fedsim::LoadRuns({t.File("r1"), t.File("r2")});
  const auto table = fedsim::CompareTable(runs, {}, false, std::nullopt);
  INFO(table);
  CHECK(Contains(table, "| run "));
  CHECK(Contains(table, "| final acc |"));
  CHECK(Contains(table, " 0.7000 |"));
  CHECK(Contains(table, " 0.9000 |"));
  CHECK(Contains(table, " 0.024 |"));  // 24400 bytes = 0.024 MB (< 1 MB: 3 decimals)
  CHECK(Contains(table, " 2.00 |"));   // 2e6 bytes
  CHECK(Contains(table, " 4.00 |"));
  CHECK(Contains(table, " 1.50 |"));   // wall s
  CHECK_FALSE(Contains(table, "±"));
  CHECK_FALSE(Contains(table, "rounds to"));  // no target anywhere
  CHECK_FALSE(Contains(table, "epsilon"));    // no DP anywhere
  // 2 rows + header + separator, every line the same width (aligned).
  std::vector<std::string> lines;
  std::string line;
  for (std::istringstream in(table); std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[1].rfind("|---", 0) == 0);
}

TEST_CASE("compare: groups by config keys with mean and std", "[metrics][compare]") {
  TempDir t;
  std::vector<std::string> paths;
  int i = 0;
  // fedavg: final 0.70, 0.80, 0.90 -> 0.8 ± 0.1; best 0.8, 0.8, 0.9 -> 0.8333 ± 0.0577
  // fedprox: final 0.60, 0.64 -> 0.62 ± 0.0283 (sqrt(2 * 0.02^2 / 1)); best 0.7, 0.7 -> 0.7 ± 0
  for (auto [algo, fin, best, up] : std::vector<std::tuple<std::string, double, double, double>>{
           {"fedavg", 0.7, 0.8, 1e6}, {"fedprox", 0.6, 0.7, 3e6}, {"fedavg", 0.8, 0.8, 2e6},
           {"fedavg", 0.9, 0.9, 3e6}, {"fedprox", 0.64, 0.7, 5e6}}) {
    Fake f;
    f.algo = algo;
    f.final_acc = fin;
    f.best_acc = best;
    f.bytes_up = up;
    f.seed = ++i;
    paths.push_back(WriteRun(t.File("run" + std::to_string(i)), f));
  }
  const auto runs = fedsim::LoadRuns(paths);
  const auto rows = fedsim::CompareRows(runs, {"algorithm.name"}, std::nullopt);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].labels == std::vector<std::string>{"fedavg"});  // order of first appearance
  CHECK(rows[0].runs == 3);
  CHECK(rows[0].final_acc.mean == Approx(0.8));
  CHECK(rows[0].final_acc.std == Approx(0.1));
  CHECK(rows[0].best_acc.mean == Approx(2.5 / 3));
  CHECK(rows[0].best_acc.std == Approx(std::sqrt((2 * 0.1 * 0.1 / 9 + 0.2 * 0.2 / 9) / 2)));
  CHECK(rows[0].mb_up.mean == Approx(2.0));
  CHECK(rows[1].labels == std::vector<std::string>{"fedprox"});
  CHECK(rows[1].runs == 2);
  CHECK(rows[1].final_acc.mean == Approx(0.62));
  CHECK(rows[1].final_acc.std == Approx(std::sqrt(0.0008)));
  CHECK(rows[1].mb_up.mean == Approx(4.0));

  const auto table = fedsim::CompareTable(runs, {"algorithm.name"}, false, std::nullopt);
  INFO(table);
  CHECK(Contains(table, "| algorithm.name |"));
  CHECK(Contains(table, "| fedavg         |   3 | completed | 0.8000 ± 0.1000 | 0.8333 ± 0.0577 |"));
  CHECK(Contains(table, "| fedprox        |   2 | completed | 0.6200 ± 0.0283 | 0.7000 ± 0.0000 |"));

  // Two keys: one column each; numbers are rendered as JSON.
  const auto rows2 = fedsim::CompareRows(runs, {"algorithm.name", "data.partition.alpha"}, std::nullopt);
  REQUIRE(rows2.size() == 2);
  CHECK(rows2[1].labels == std::vector<std::string>{"fedprox", "0.5"});
  // Seeds differ in every run: one row each.
  CHECK(fedsim::CompareRows(runs, {"experiment.seed"}, std::nullopt).size() == 5);
}

TEST_CASE("compare: 1 and 1.0 are one group value", "[metrics][compare]") {
  // A pending sweep run's manifest holds the value as given (1), a finished
  // run's config the resolved number (1.0); they were two groups.
  TempDir t;
  Fake a, b;
  a.alpha = 1.0;
  b.alpha = 1.0;
  WriteRun(t.File("a"), a);
  WriteRun(t.File("b"), b);
  std::ifstream in(t.File("b/metrics.json"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  const auto at = text.find("\"alpha\":1.0");
  REQUIRE(at != std::string::npos);
  text.replace(at, 11, "\"alpha\":1");
  WriteText(t.File("b/metrics.json"), text);
  const auto rows = fedsim::CompareRows(fedsim::LoadRuns({t.File("a"), t.File("b")}), {"data.partition.alpha"},
                                        std::nullopt);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].runs == 2);
  CHECK(rows[0].labels == std::vector<std::string>{"1"});
}

TEST_CASE("compare: an unknown group key is an InputError naming the key and file", "[metrics][compare]") {
  TempDir t;
  WriteRun(t.File("a"), Fake{});
  const auto runs = fedsim::LoadRuns({t.File("a")});
  const std::string msg = InputErrorOf([&] { fedsim::CompareTable(runs, {"algorithm.nmae"}, false, std::nullopt); });
  CHECK(Contains(msg, "algorithm.nmae"));
  CHECK(Contains(msg, t.File("a/metrics.json")));
  CHECK(Contains(InputErrorOf([&] { fedsim::CompareTable(runs, {"algorithm.name.x"}, false, std::nullopt); }),
                 "algorithm.name.x"));
}

TEST_CASE("compare: missing and corrupt files are InputErrors naming the file", "[metrics][compare]") {
  TempDir t;
  std::string msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("nope")}); });
  CHECK(Contains(msg, t.File("nope")));
  CHECK(Contains(msg, "no such file or directory"));

  std::filesystem::create_directories(t.File("empty"));
  msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("empty")}); });
  CHECK(Contains(msg, t.File("empty")));
  CHECK(Contains(msg, "metrics.json"));

  // A run that started but has no metrics.json (failed, or still running).
  std::filesystem::create_directories(t.File("started"));
  WriteText(t.File("started/config.json"), "{}");
  msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("started")}); });
  CHECK(Contains(msg, t.File("started/metrics.json")));

  std::filesystem::create_directories(t.File("bad"));
  WriteText(t.File("bad/metrics.json"), "{\"summary\": {\"status\": \"completed\"");  // truncated
  msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("bad")}); });
  CHECK(Contains(msg, t.File("bad/metrics.json")));
  CHECK(Contains(msg, "not valid JSON"));

  WriteText(t.File("bad/metrics.json"), "[1, 2]");
  CHECK(Contains(InputErrorOf([&] { fedsim::LoadRuns({t.File("bad")}); }), t.File("bad/metrics.json")));
  WriteText(t.File("bad/metrics.json"), "{\"summary\": {}}");
  CHECK(Contains(InputErrorOf([&] { fedsim::LoadRuns({t.File("bad")}); }), "summary.status"));
  WriteText(t.File("bad/metrics.json"), "{\"summary\": {\"status\": \"completed\", \"final_test_accuracy\": \"x\"}}");
  msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("bad")}); });
  CHECK(Contains(msg, "summary.final_test_accuracy"));
  CHECK(Contains(msg, t.File("bad/metrics.json")));

  // Nested deeper than any result: refused before the parser recurses (a
  // deep enough file crashed compare).
  WriteText(t.File("bad/metrics.json"), "{\"summary\": {\"status\": \"completed\"}, \"config\": {\"a\": " +
                                            std::string(100000, '[') + std::string(100000, ']') + "}}");
  msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("bad")}); });
  CHECK(Contains(msg, t.File("bad/metrics.json") + ": nested deeper than 64 levels"));

  // The error stops the whole load even if other paths are good.
  WriteRun(t.File("good"), Fake{});
  CHECK_THROWS_AS(fedsim::LoadRuns({t.File("good"), t.File("nope")}), fedsim::InputError);
}

TEST_CASE("compare: rounds to target from the summary or from the rounds (--target)", "[metrics][compare]") {
  TempDir t;
  Fake a;  // accuracies 0.5, 0.7, 0.85 by round
  a.target = 0.8;
  a.rounds_to_target = 3;
  Fake b = a;
  b.acc = {0.6, 0.82, 0.83};
  b.rounds_to_target = 2;
  Fake c = a;
  c.acc = {0.6, 0.65, 0.7};
  c.rounds_to_target = nullptr;  // not reached
  const auto runs = fedsim::LoadRuns({WriteRun(t.File("a"), a), WriteRun(t.File("b"), b), WriteRun(t.File("c"), c)});

  CHECK(fedsim::RoundsToTarget(runs[0], std::nullopt) == 3);
  CHECK(fedsim::RoundsToTarget(runs[0], 0.7) == 2);   // 0.7 >= 0.7 at round 2
  CHECK(fedsim::RoundsToTarget(runs[1], 0.6) == 1);
  CHECK(fedsim::RoundsToTarget(runs[2], 0.8) == std::nullopt);
  CHECK(fedsim::RoundsToTarget(runs[2], 0.0) == 1);

  // Summary target 0.8: a, b reached at 3 and 2 -> 2.5 ± 0.7071 (2 of 3 reached).
  const auto rows = fedsim::CompareRows(runs, {"algorithm.name"}, std::nullopt);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].has_target);
  CHECK(rows[0].target_runs == 3);
  CHECK(rows[0].rounds_to_target.n == 2);
  CHECK(rows[0].rounds_to_target.mean == Approx(2.5));
  CHECK(rows[0].rounds_to_target.std == Approx(std::sqrt(0.5)));
  std::string table = fedsim::CompareTable(runs, {"algorithm.name"}, false, std::nullopt);
  INFO(table);
  CHECK(Contains(table, "rounds to 0.8"));
  CHECK(Contains(table, "2.5 ± 0.7 (2/3)"));

  // --target 0.6: rounds 2, 1, 1 -> 1.3333 ± 0.5774 (sqrt((1/9 + 1/9 + 4/9) / 2)), all reached.
  table = fedsim::CompareTable(runs, {"algorithm.name"}, false, 0.6);
  CHECK(Contains(table, "rounds to 0.6 "));
  CHECK(Contains(table, "1.3 ± 0.6 |"));
  const auto rows06 = fedsim::CompareRows(runs, {"algorithm.name"}, 0.6);
  CHECK(rows06[0].rounds_to_target.mean == Approx(4.0 / 3));
  CHECK(rows06[0].rounds_to_target.std == Approx(std::sqrt(1.0 / 3)));
  // Per run: an integer, and "-" when not reached.
  table = fedsim::CompareTable(runs, {}, false, 0.84);
  CHECK(Contains(table, "rounds to 0.84"));
  CHECK(Contains(table, " 3 |"));
  CHECK(Contains(table, " - |"));
  CHECK_THROWS_AS(fedsim::CompareTable(runs, {}, false, 1.5), fedsim::InputError);
}

TEST_CASE("compare: runs that did not complete are shown with their status", "[metrics][compare]") {
  TempDir t;
  Fake f;
  f.final_acc = 0.7;
  WriteRun(t.File("a"), f);
  f.final_acc = 0.9;
  WriteRun(t.File("b"), f);
  f.status = "diverged";
  f.final_acc = nullptr;
  f.best_acc = 0.3;
  WriteRun(t.File("c"), f);
  const auto runs = fedsim::LoadRuns({t.File("a"), t.File("b"), t.File("c")});
  auto rows = fedsim::CompareRows(runs, {"algorithm.name"}, std::nullopt);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].runs == 3);
  CHECK(rows[0].completed == 2);
  CHECK(rows[0].status == "2 completed, 1 diverged");
  CHECK(rows[0].used == 2);  // the statistics are over the completed runs
  CHECK(rows[0].final_acc.mean == Approx(0.8));
  CHECK(rows[0].best_acc.mean == Approx(0.85));
  // Alone, the diverged run is shown with its own numbers and status.
  rows = fedsim::CompareRows({runs[2]}, {}, std::nullopt);
  CHECK(rows[0].status == "diverged");
  CHECK(rows[0].final_acc.n == 0);
  CHECK(rows[0].best_acc.mean == Approx(0.3));
  const auto table = fedsim::CompareTable({runs[2]}, {}, false, std::nullopt);
  CHECK(Contains(table, "| diverged | "));
  CHECK(Contains(table, "- |   0.3000 |"));
}

TEST_CASE("compare: a sweep directory expands to the runs of its manifest", "[metrics][compare]") {
  TempDir t;
  Fake f;
  f.final_acc = 0.6;
  WriteRun(t.File("sweep/algorithm.name=fedavg__seed=1"), f);
  f.final_acc = 0.8;
  f.seed = 2;
  WriteRun(t.File("sweep/algorithm.name=fedavg__seed=2"), f);
  // The manifest: relative dirs, a run updated twice (the last line wins),
  // and a failed run without metrics.json.
  WriteText(t.File("sweep/manifest.jsonl"),
            R"({"name":"algorithm.name=fedavg__seed=1","dir":"algorithm.name=fedavg__seed=1","settings":{"algorithm.name":"fedavg"},"seed":1,"status":"running"}
{"name":"algorithm.name=fedavg__seed=2","dir":"algorithm.name=fedavg__seed=2","settings":{"algorithm.name":"fedavg"},"seed":2,"status":"completed"}
{"name":"algorithm.name=fedprox__seed=1","dir":"algorithm.name=fedprox__seed=1","settings":{"algorithm.name":"fedprox"},"seed":1,"status":"failed"}

{"name":"algorithm.name=fedavg__seed=1","dir":"algorithm.name=fedavg__seed=1","settings":{"algorithm.name":"fedavg"},"seed":1,"status":"completed"}
)");
  const auto runs = fedsim::LoadRuns({t.File("sweep")});
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].name == "algorithm.name=fedavg__seed=1");
  CHECK(runs[0].status == "completed");
  CHECK(runs[0].final_test_accuracy == 0.6);
  CHECK(runs[2].name == "algorithm.name=fedprox__seed=1");
  CHECK(runs[2].status == "failed");
  CHECK_FALSE(runs[2].has_metrics);
  CHECK(fedsim::GroupValue(runs[2], "algorithm.name") == "fedprox");  // from the manifest's settings
  CHECK(fedsim::GroupValue(runs[2], "experiment.seed") == 1);

  const auto rows = fedsim::CompareRows(runs, {"algorithm.name"}, std::nullopt);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].runs == 2);
  CHECK(rows[0].final_acc.mean == Approx(0.7));
  CHECK(rows[0].final_acc.std == Approx(std::sqrt(0.02)));
  CHECK(rows[1].status == "failed");
  CHECK(rows[1].used == 0);
  const auto table = fedsim::CompareTable(runs, {"algorithm.name"}, false, std::nullopt);
  INFO(table);
  CHECK(Contains(table, "| fedprox        |   1 | failed    |               - |"));
  // A key that is in no settings of a failed run: its value is unknown ("?"),
  // not an error, since the run has no config to check it against.
  const auto rows2 = fedsim::CompareRows(runs, {"data.partition.alpha"}, std::nullopt);
  REQUIRE(rows2.size() == 2);
  CHECK(rows2[1].labels == std::vector<std::string>{"?"});

  // The manifest file itself may be named; a run dir and the sweep combine.
  CHECK(fedsim::LoadRuns({t.File("sweep/manifest.jsonl"), t.File("sweep/algorithm.name=fedavg__seed=2")}).size() == 4);

  WriteText(t.File("sweep/manifest.jsonl"), "{\"name\":\"x\"}\nnot json\n");
  std::string msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("sweep")}); });
  CHECK(Contains(msg, t.File("sweep/manifest.jsonl") + ":2"));
  WriteText(t.File("sweep/manifest.jsonl"), "\n");
  CHECK(Contains(InputErrorOf([&] { fedsim::LoadRuns({t.File("sweep")}); }), "no runs"));
  // A listed run whose metrics.json is corrupt names that file.
  WriteText(t.File("sweep/manifest.jsonl"), "{\"name\":\"algorithm.name=fedavg__seed=1\"}\n");
  WriteText(t.File("sweep/algorithm.name=fedavg__seed=1/metrics.json"), "{");
  msg = InputErrorOf([&] { fedsim::LoadRuns({t.File("sweep")}); });
  CHECK(Contains(msg, t.File("sweep/algorithm.name=fedavg__seed=1/metrics.json")));
}

TEST_CASE("compare: CSV has a fixed header and full-precision numbers", "[metrics][compare]") {
  TempDir t;
  Fake f;
  f.final_acc = 0.7;
  WriteRun(t.File("a"), f);
  f.final_acc = 0.9;
  f.algo = "fed,\"x\"";  // needs quoting
  WriteRun(t.File("b"), f);
  f.final_acc = 0.8;
  WriteRun(t.File("c"), f);
  const auto runs = fedsim::LoadRuns({t.File("a"), t.File("b"), t.File("c")});
  const auto csv = fedsim::CompareTable(runs, {"algorithm.name"}, true, std::nullopt);
  INFO(csv);
  std::vector<std::string> lines;
  std::string line;
  for (std::istringstream in(csv); std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] ==
        "algorithm.name,n,completed,status,final_acc_mean,final_acc_std,best_acc_mean,best_acc_std,"
        "rounds_to_target_mean,rounds_to_target_std,rounds_to_target_reached,target_runs,mb_up,mb_down,"
        "sim_seconds,wall_seconds,epsilon,kind");
  // The fake runs have no sim_time_s (results of older versions): empty cell.
  CHECK(lines[1] == "fedavg,1,1,completed,0.7,,0.85,,,,,0,2,4,,1.5,,federated");
  const auto rows = fedsim::CompareRows(runs, {"algorithm.name"}, std::nullopt);
  CHECK(lines[2] == fmt::format("\"fed,\"\"x\"\"\",2,2,completed,{},{},0.85,0,,,,0,2,4,,1.5,,federated", rows[1].final_acc.mean,
                                rows[1].final_acc.std));
  CHECK(rows[1].final_acc.mean == Approx(0.85));
  CHECK(rows[1].final_acc.std == Approx(std::sqrt(0.005)));
}

TEST_CASE("compare: epsilon only where DP was on, null epsilon is infinite", "[metrics][compare]") {
  TempDir t;
  Fake f;
  WriteRun(t.File("nodp"), f);
  f.privacy = "central";
  f.algo = "dp";
  f.epsilon = 3.0;
  WriteRun(t.File("dp1"), f);
  f.epsilon = 5.0;
  WriteRun(t.File("dp2"), f);
  f.algo = "dpinf";
  f.epsilon = nullptr;
  WriteRun(t.File("dpinf"), f);
  const auto runs = fedsim::LoadRuns({t.File("nodp"), t.File("dp1"), t.File("dp2"), t.File("dpinf")});
  CHECK_FALSE(runs[0].dp);
  CHECK(runs[1].dp);
  CHECK(runs[3].dp);
  const auto table = fedsim::CompareTable(runs, {"algorithm.name"}, false, std::nullopt);
  INFO(table);
  CHECK(Contains(table, "| epsilon |"));
  CHECK(Contains(table, "|    4.00 |"));  // mean of 3 and 5
  CHECK(Contains(table, "|     inf |"));
  CHECK(Contains(table, "|         |"));   // fedavg: no DP, blank
  CHECK_FALSE(Contains(fedsim::CompareTable({runs[0]}, {}, false, std::nullopt), "epsilon"));
}
