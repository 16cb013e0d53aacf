// Shared by the tests that run whole experiments through the library.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "run/experiment.h"

namespace fedsim::testing {

// Runs the config `j` (parsed as "test") with `threads` threads; `out`
// empty writes nothing; stop_after > 0 stops after that round; resume
// continues the run in `out`.
inline nlohmann::json RunJson(const nlohmann::json& j, int threads = 2, const std::string& out = "",
                              int stop_after = 0, bool resume = false) {
  RunOptions o;
  o.threads = threads;
  o.out_dir = out;
  o.stop_after_round = stop_after;
  o.resume = resume;
  return RunExperiment(ParseConfig(j, "test"), o);
}

// A fresh, empty folder `prefix` + `name` under the system's temporary folder.
inline std::string FreshTempDir(const std::string& prefix, const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / (prefix + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

}  // namespace fedsim::testing
