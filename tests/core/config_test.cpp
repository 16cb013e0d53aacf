#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "core/config.h"
#include "core/error.h"

using fedsim::Config;
using fedsim::InputError;
using fedsim::ParseConfig;
using nlohmann::json;

namespace {
std::string ErrorOf(const json& j) {
  try {
    fedsim::ValidateConfig(ParseConfig(j, "cfg.json"));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("config: defaults fill every key and round-trip", "[core][config]") {
  const Config c = ParseConfig(json::object(), "x");
  CHECK(c.experiment.rounds == 20);
  CHECK(c.algorithm.name == "fedavg");
  CHECK(c.data.dataset == "synthetic");
  const json resolved = fedsim::ToJson(c);
  CHECK(resolved["algorithm"]["local_epochs"] == 1);
  CHECK(resolved["experiment"]["target_accuracy"].is_null());
  // The resolved config parses back to itself.
  CHECK(fedsim::ToJson(ParseConfig(resolved, "r")) == resolved);
}

TEST_CASE("config: values are read with their types", "[core][config]") {
  const json j = json::parse(R"({"experiment":{"seed":7,"rounds":3,"target_accuracy":0.8},
    "data":{"dataset":"fashion_mnist","num_clients":100,"partition":{"kind":"dirichlet","alpha":0.1}},
    "model":{"kind":"mlp","hidden":[200,200]},
    "algorithm":{"clients_per_round":10,"local_epochs":5,"batch_size":10,"lr":0.05,"server_lr":0.5},
    "metrics":{"eval_every":2}})");
  const Config c = ParseConfig(j, "x");
  CHECK(c.experiment.seed == 7);
  CHECK(*c.experiment.target_accuracy == Approx(0.8));
  CHECK(c.data.partition.alpha == Approx(0.1));
  CHECK(c.model.hidden == std::vector<int>{200, 200});
  CHECK(c.algorithm.server_lr == Approx(0.5));
  CHECK(c.metrics.eval_every == 2);
}

TEST_CASE("config: bad values name the file, the JSON path and what was expected", "[core][config]") {
  CHECK(ErrorOf(json::parse(R"({"algorithm":{"local_epochs":-1}})")) ==
        "cfg.json: algorithm.local_epochs: expected an integer >= 1, got -1");
  CHECK(ErrorOf(json::parse(R"({"algorithm":{"local_epochs":2.5}})")) ==
        "cfg.json: algorithm.local_epochs: expected an integer >= 1, got 2.5");
  CHECK(ErrorOf(json::parse(R"({"algorithm":{"lr":"fast"}})")) ==
        "cfg.json: algorithm.lr: expected a number > 0 and <= 1000000, got \"fast\"");
  CHECK(ErrorOf(json::parse(R"({"data":{"partition":{"alpha":0}}})")) ==
        "cfg.json: data.partition.alpha: expected a number > 0, got 0");
  CHECK(ErrorOf(json::parse(R"({"data":{"num_clients":0}})")) ==
        "cfg.json: data.num_clients: expected an integer >= 1, got 0");
  CHECK(ErrorOf(json::parse(R"({"data":"x"})")) == "cfg.json: data: expected an object, got \"x\"");
  CHECK(ErrorOf(json::parse(R"({"model":{"hidden":[200,-3]}})")) ==
        "cfg.json: model.hidden: expected an array of integers >= 1, got [200,-3]");
}

TEST_CASE("config: unknown keys and names get a suggestion", "[core][config]") {
  CHECK(ErrorOf(json::parse(R"({"algorithm":{"local_epoch":2}})")) ==
        "cfg.json: algorithm.local_epoch: unknown key (did you mean 'algorithm.local_epochs'?)");
  // A key in the wrong section points at the right one.
  CHECK(ErrorOf(json::parse(R"({"experiment":{"lr":0.1}})")) ==
        "cfg.json: experiment.lr: unknown key (did you mean 'algorithm.lr'?)");
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"name":"fedavgg"}})")),
             Catch::StartsWith("cfg.json: algorithm.name: expected one of fedavg, fedsgd, fedprox") &&
                 Catch::EndsWith("got 'fedavgg' (did you mean 'fedavg'?)"));
  CHECK(ErrorOf(json::parse(R"({"bogus":{}})")) == "cfg.json: bogus: unknown key");
}

TEST_CASE("config: cross-key rules", "[core][config]") {
  CHECK_THAT(ErrorOf(json::parse(R"({"model":{"kind":"mlp"}})")), Catch::StartsWith("cfg.json: model.hidden:"));
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"clients_per_round":31}})")),
             Catch::Contains("larger than the population"));
  CHECK_THAT(ErrorOf(json::parse(R"({"data":{"dataset":"fashion_mnist"}})")),
             Catch::StartsWith("cfg.json: data.partition.kind:"));
  CHECK_THAT(ErrorOf(json::parse(R"({"data":{"num_clients":40}})")), Catch::StartsWith("cfg.json: data.num_clients:"));
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"name":"fedsgd","momentum":0.9}})")),
             Catch::StartsWith("cfg.json: algorithm.momentum:"));
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"client_fraction":0}})")),
             Catch::StartsWith("cfg.json: algorithm.client_fraction: expected a number > 0"));
}

TEST_CASE("config: --set overrides take JSON values and bare strings", "[core][config]") {
  json j = json::object();
  fedsim::ApplyOverride(j, "algorithm.name=fedsgd");
  fedsim::ApplyOverride(j, "algorithm.lr=0.5");
  fedsim::ApplyOverride(j, "model.hidden=[10,20]");
  fedsim::ApplyOverride(j, "model.kind=mlp");
  fedsim::ApplyOverride(j, "experiment.target_accuracy=null");
  const Config c = ParseConfig(j, "x");
  CHECK(c.algorithm.name == "fedsgd");
  CHECK(c.algorithm.lr == Approx(0.5));
  CHECK(c.model.hidden == std::vector<int>{10, 20});
  CHECK_THROWS_AS(fedsim::ApplyOverride(j, "novalue"), InputError);
  CHECK_THROWS_AS(fedsim::ApplyOverride(j, "algorithm.lr.x=1"), InputError);
  json k = json::object();
  fedsim::ApplyOverride(k, "algorithm.lr=\"fast\"");
  CHECK_THROWS_WITH(ParseConfig(k, "x"), Catch::Contains("algorithm.lr"));
}

TEST_CASE("config: every key is documented in docs/config.md", "[core][config][docs]") {
  std::ifstream in(std::string(FEDSIM_SOURCE_DIR) + "/docs/config.md");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const auto& k : fedsim::ListConfigKeys()) {
    INFO(k.path);
    CHECK(doc.find("`" + k.path + "`") != std::string::npos);
  }
}

TEST_CASE("config: edit distance", "[core][config]") {
  CHECK(fedsim::EditDistance("kitten", "sitting") == 3);
  CHECK(fedsim::EditDistance("", "abc") == 3);
  CHECK(fedsim::EditDistance("same", "same") == 0);
}
