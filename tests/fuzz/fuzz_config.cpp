// Fuzzes the config parser: bytes -> nlohmann::json::parse -> fedsim::ParseConfig.
//
// Input that is not JSON is skipped (the CLI reports it through
// ReadConfigJson; nlohmann's parser is not fedsim's to fuzz). InputError is the
// expected outcome for a bad config. A config that parses must survive the
// round trip the checkpoint resume relies on: ToJson, then ParseConfig again,
// to the same resolved config.
//
// An input that starts with "set:" is a --set assignment instead: the rest of
// its first line goes to ApplyOverride on an empty config, the result to
// ParseConfig.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"

namespace {

void CheckRoundTrip(const fedsim::Config& c) {
  const nlohmann::json resolved = fedsim::ToJson(c);
  fedsim::Config again;
  try {
    again = fedsim::ParseConfig(resolved, "<round trip>");
  } catch (const fedsim::InputError& e) {
    std::fprintf(stderr, "fuzz_config: the resolved config does not parse again: %s\nresolved: %s\n", e.what(),
                 resolved.dump().c_str());
    std::abort();
  }
  if (fedsim::ToJson(again) != resolved) {
    std::fprintf(stderr, "fuzz_config: round trip changed the config:\n%s\n%s\n", resolved.dump().c_str(),
                 fedsim::ToJson(again).dump().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  if (input.rfind("set:", 0) == 0) {
    j = nlohmann::json::object();
    try {
      fedsim::ApplyOverride(j, input.substr(4, input.find('\n') == std::string::npos ? std::string::npos
                                                                                      : input.find('\n') - 4));
    } catch (const fedsim::InputError&) {
      return 0;
    }
  } else {
    j = nlohmann::json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
  }
  try {
    const fedsim::Config c = fedsim::ParseConfig(j, "fuzz.json");
    CheckRoundTrip(c);
  } catch (const fedsim::InputError&) {
  }
  return 0;
}
