#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
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
  // SCAFFOLD's paper form refuses local momentum and names the form that takes it.
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"name":"scaffold","momentum":0.9}})")),
             Catch::StartsWith("cfg.json: algorithm.momentum:") && Catch::Contains("scaffold_variant=niid_bench"));
  CHECK(ErrorOf(json::parse(R"({"algorithm":{"name":"scaffold","momentum":0.9,"scaffold_variant":"niid_bench"}})"))
            .empty());
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"client_fraction":0}})")),
             Catch::StartsWith("cfg.json: algorithm.client_fraction: expected a number > 0"));
  // Central DP accounts q = K/N; over-selection keeps the fastest K of more.
  CHECK(ErrorOf(json::parse(R"({"system":{"over_selection":0.5}})")).empty());
  CHECK_THAT(ErrorOf(json::parse(R"({"system":{"over_selection":0.5},"privacy":{"mode":"central"}})")),
             Catch::StartsWith("cfg.json: system.over_selection:") && Catch::Contains("K / N"));
  // Augmentation works on images, not on per-position z-scores.
  CHECK_THAT(ErrorOf(json::parse(R"({"data":{"standardize":true,"augment":{"flip":true}}})")),
             Catch::StartsWith("cfg.json: data.augment:") && Catch::Contains("data.standardize=false"));
  // FedRep's noise-free head enters the body gradients it uploads later.
  CHECK(ErrorOf(json::parse(R"({"algorithm":{"name":"fedrep"},"privacy":{"mode":"central"}})")).empty());
  CHECK_THAT(ErrorOf(json::parse(R"({"algorithm":{"name":"fedrep"},"privacy":{"mode":"sample"}})")),
             Catch::StartsWith("cfg.json: privacy.mode: fedrep"));
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

TEST_CASE("config: a number too large for a double is bad input, with its line or --set", "[core][config]") {
  json j = json::object();
  CHECK_THROWS_WITH(fedsim::ApplyOverride(j, "experiment.rounds=1e400"),
                    "--set experiment.rounds=1e400: number 1e400 is out of range (beyond the largest double, about "
                    "1.8e308)");
  CHECK_THROWS_WITH(fedsim::ApplyOverride(j, "algorithm.lr=-1e400"), Catch::Contains("number -1e400 is out of range"));
  CHECK_THROWS_AS(fedsim::ApplyOverride(j, "model.hidden=[10,1e999]"), InputError);
  CHECK_THROWS_AS(fedsim::ApplyOverride(j, "algorithm.lr=" + std::string(400, '9')), InputError);
  // The largest doubles still parse (and are then range-checked like any value).
  fedsim::ApplyOverride(j, "algorithm.lr=1e308");
  CHECK_THROWS_WITH(ParseConfig(j, "x"), Catch::Contains("algorithm.lr: expected a number > 0 and <= 1000000"));
  // A bare word must be text: it is written into the resolved config and messages.
  CHECK_THROWS_WITH(fedsim::ApplyOverride(j, "experiment.name=\xff\xfe"),
                    Catch::Contains("neither JSON nor valid UTF-8"));

  const std::string path = (std::filesystem::temp_directory_path() / "fedsim_config_test_1e400.json").string();
  {
    std::ofstream out(path);
    out << "{\n  \"experiment\": {\"seed\": 3,\n    \"rounds\": 1e400\n  }\n}\n";
  }
  const std::string want = path + ":3: number 1e400 is out of range (beyond the largest double, about 1.8e308)";
  CHECK_THROWS_WITH(fedsim::ReadConfigJson(path), want);
  std::filesystem::remove(path);
}

namespace {

// A config of `run` (an algorithm.name, or a baseline.kind with the default
// algorithm) with `value` at the dotted `key`.
json With(const std::string& run, const std::string& key, const json& value) {
  json j = run == "centralized" || run == "data_parallel" ? json{{"baseline", {{"kind", run}}}}
                                                          : json{{"algorithm", {{"name", run}}}};
  json* node = &j;
  std::stringstream parts(key);
  for (std::string part; std::getline(parts, part, '.');) node = &(*node)[part];
  *node = value;
  return j;
}

std::vector<std::string> Algorithms() {
  for (const auto& k : fedsim::ListConfigKeys()) {
    if (k.path != "algorithm.name") continue;
    std::stringstream words(k.type.substr(6));  // "one of a b c"
    std::vector<std::string> out;
    for (std::string w; words >> w;) out.push_back(w);
    return out;
  }
  return {};
}

}  // namespace

TEST_CASE("config: a key the run does not read is rejected, naming the key and the run", "[core][config]") {
  // The specification, written out independently of the table in config.cpp:
  // a key, a value other than its default, and the runs that read it.
  const std::set<std::string> federated = {"fedavg",    "fedsgd",    "fedprox",    "feddyn",  "scaffold",
                                           "fednova",   "fedavgm",   "fedadagrad", "fedadam", "fedyogi",
                                           "fedsparse", "fedpara",   "fedgia",     "qffl",    "afl",
                                           "ditto",     "apfl",      "pfedme",     "perfedavg", "fedper",
                                           "fedrep",    "lgfedavg", "fedbn"};
  const std::initializer_list<const char*> personalized = {"ditto",  "apfl",   "pfedme",  "perfedavg",
                                                           "fedper", "fedrep", "lgfedavg", "fedbn"};
  auto all_but = [&](std::set<std::string> s, std::initializer_list<const char*> out, bool fedgan) {
    for (const char* o : out) s.erase(o);
    if (fedgan) s.insert("fedgan");
    return s;
  };
  struct Case {
    std::string key;
    json value;
    std::set<std::string> readers;
  };
  const std::vector<Case> cases = {
      {"algorithm.mu", 0.5, {"fedprox"}},
      {"algorithm.alpha", 0.5, {"feddyn"}},
      {"algorithm.server_momentum", 0.5, {"fedavgm"}},
      {"algorithm.beta1", 0.5, {"fedadagrad", "fedadam", "fedyogi"}},
      {"algorithm.beta2", 0.5, {"fedadam", "fedyogi"}},
      {"algorithm.tau", 0.5, {"fedadagrad", "fedadam", "fedyogi"}},
      {"algorithm.update_density", 0.5, {"fedsparse"}},
      {"algorithm.ternary", true, {"fedsparse"}},
      {"algorithm.prune_rounds", 3, {"fedsparse"}},
      {"algorithm.momentum_correction", 0.5, {"fedsparse"}},
      {"algorithm.fedpara_gamma", 0.5, {"fedpara"}},
      {"algorithm.sigma", 1.0, {"fedgia"}},
      {"algorithm.k0", 2, {"fedgia"}},
      {"algorithm.state_precision",
       "float16",
       {"feddyn", "scaffold", "fedsparse", "fedgia", "ditto", "apfl", "pfedme", "fedper", "fedrep", "lgfedavg",
        "fedbn"}},
      {"algorithm.q", 2.0, {"qffl"}},
      {"algorithm.qffl_lipschitz", 5.0, {"qffl"}},
      {"algorithm.afl_lambda_lr", 0.5, {"afl"}},
      {"algorithm.afl_domains", "labels", {"afl"}},
      {"algorithm.scaffold_variant", "niid_bench", {"scaffold"}},
      {"algorithm.server_lr", 0.5, all_but(federated, {"feddyn", "fedgia", "qffl", "pfedme"}, false)},
      {"personalization.lambda", 0.5, {"ditto", "pfedme"}},
      {"personalization.alpha", 0.5, {"apfl"}},
      {"personalization.alpha_lr", 0.5, {"apfl"}},
      {"personalization.beta", 0.5, {"pfedme"}},
      {"personalization.inner_steps", 2, {"pfedme"}},
      {"personalization.perfedavg", "hf", {"perfedavg"}},
      {"personalization.adapt_lr", 0.5, {"perfedavg"}},
      {"personalization.personal_layers", 2, {"fedper", "fedrep", "lgfedavg"}},
      {"personalization.head_epochs", 2, {"fedrep"}},
      {"algorithm.lr", 0.5, all_but(federated, {"fedgia"}, false)},
      {"algorithm.lr_decay", 0.5, all_but(federated, {"fedgia"}, true)},
      {"algorithm.local_epochs", 2, all_but(federated, {"fedsgd", "fedgia"}, true)},
      {"algorithm.local_steps", 2, all_but(federated, {"fedsgd", "fedgia"}, true)},
      {"algorithm.batch_size", 32, all_but(federated, {"fedsgd", "fedgia"}, true)},
      {"algorithm.clients_per_round", 5, all_but(federated, {}, true)},  // fedgia: overridden, still checked
      {"algorithm.client_fraction", 0.5, all_but(federated, {}, true)},
      {"algorithm.sampling_rate", 0.5, all_but(federated, {"fedgia"}, true)},
      {"experiment.target_accuracy", 0.5, federated},
      {"metrics.eval_train", true, federated},
      {"model.init_scale", 0.5, federated},
      {"privacy.input_perturbation.features", "gaussian", federated},
      {"privacy.clip_norm", 2.0, federated},
      {"secure_aggregation.bits", 16,
       all_but(all_but(federated, {"fednova", "fedsparse", "fedgia", "afl"}, false), personalized, false)},
      {"encryption.key_bits", 1024, federated},
      {"system.compute.gflops", 5.0, all_but(federated, {}, true)},
      {"system.network.latency_ms", 5.0, all_but(federated, {}, true)},
      {"system.availability", 0.5, all_but(federated, {"fedgia"}, true)},  // fedgia: its own rule
      {"system.dropout", 0.5, all_but(federated, {"fedgia"}, true)},
      {"baseline.epochs", 3, {}},
      {"gan.latent_dim", 8, {"fedgan"}},
      {"gan.grid", 2, {"fedgan"}},
      {"compression.density", 0.5, federated},
      {"secure_aggregation.weighting", "uniform",
       all_but(all_but(federated, {"fednova", "fedsparse", "fedgia", "afl"}, false), personalized, false)},
  };
  const std::vector<std::string> algorithms = Algorithms();
  REQUIRE(algorithms.size() == federated.size() + 1);
  for (const auto& c : cases) {
    for (const auto& a : algorithms) {
      INFO(c.key << " with algorithm.name=" << a);
      const std::string error = ErrorOf(With(a, c.key, c.value));
      if (c.readers.count(a)) {
        CHECK(error == "");
      } else if (a == "fedgia" && c.key.rfind("system.", 0) == 0 && c.key != "system.compute.gflops" &&
                 c.key != "system.network.latency_ms") {
        CHECK_THAT(error, Catch::StartsWith("cfg.json: system: fedgia needs every client every round"));
      } else {
        CHECK_THAT(error, Catch::StartsWith("cfg.json: " + c.key + ": not read by algorithm.name=" + a + " ("));
      }
    }
  }
  // The default value is accepted by every run, so a sweep can switch
  // algorithm.name on a config that leaves another algorithm's key alone.
  CHECK(ErrorOf(With("fedavg", "algorithm.mu", 0.01)) == "");
  CHECK(ErrorOf(With("fedgan", "model.init_scale", 1.0)) == "");
  // The whole message: the key, the run, what the key is for and the way out.
  CHECK(ErrorOf(With("centralized", "system.dropout", 0.2)) ==
        "cfg.json: system.dropout: not read by baseline.kind=centralized (a client fault of federated rounds; the "
        "baselines have none); remove it, or set it to its default 0.0");
  CHECK(ErrorOf(With("fedavg", "algorithm.mu", 0.1)) ==
        "cfg.json: algorithm.mu: not read by algorithm.name=fedavg (FedProx's proximal weight, read by fedprox only); "
        "remove it, or set it to its default 0.01");
  // Every key of FedGAN's unused classifier (but those whose non-default
  // value another rule rejects first). FedGAN reads system.*: its rounds
  // run on the simulated system like every algorithm's.
  const std::set<std::string> other_rule = {"model.hidden", "model.input_shape", "model.layers"};
  int checked = 0;
  for (const auto& k : fedsim::ListConfigKeys()) {
    if (k.path.rfind("model.", 0) != 0) continue;
    if (other_rule.count(k.path)) continue;
    INFO(k.path);
    const json& d = k.default_value;
    const json value = d.is_number()    ? json(d.get<double>() == 0.0 ? 0.25 : d.get<double>() * 0.75)
                       : d.is_boolean() ? json(!d.get<bool>())
                                        : json("cnn_lenet");  // model.kind
    CHECK_THAT(ErrorOf(With("fedgan", k.path, value)),
               Catch::StartsWith("cfg.json: " + k.path + ": not read by algorithm.name=fedgan ("));
    ++checked;
  }
  CHECK(checked >= 2);
  json profiles = With("fedgan", "system.compute.distribution", "profiles");
  profiles["system"]["profiles"] = {
      {"share", {1.0}}, {"gflops", {1.0}}, {"up_mbps", {1.0}}, {"down_mbps", {1.0}}, {"latency_ms", {1.0}}};
  CHECK(ErrorOf(profiles) == "");
}

TEST_CASE("config: a baseline rejects what it cannot run and accepts the federated run's own settings",
          "[core][config]") {
  for (const std::string kind : {"centralized", "data_parallel"}) {
    INFO(kind);
    CHECK_THAT(ErrorOf(With(kind, "system.dropout", 0.1)),
               Catch::StartsWith("cfg.json: system.dropout: not read by baseline.kind=" + kind + " ("));
    CHECK_THAT(ErrorOf(With(kind, "system.deadline_s", 3.0)), Catch::StartsWith("cfg.json: system.deadline_s: not"));
    CHECK_THAT(ErrorOf(With(kind, "privacy.input_perturbation.features", "gaussian")),
               Catch::StartsWith("cfg.json: privacy.input_perturbation.features: not read by baseline.kind=" + kind));
    CHECK_THAT(ErrorOf(With(kind, "gan.grid", 2)), Catch::StartsWith("cfg.json: gan.grid: not read"));
    CHECK_THAT(ErrorOf(With(kind, "compression.kind", "topk")), Catch::StartsWith("cfg.json: compression.kind: not"));
    CHECK_THAT(ErrorOf(With(kind, "secure_aggregation.bits", 16)),
               Catch::StartsWith("cfg.json: secure_aggregation.bits"));
    // Read: devices, network, the model, evaluation, the baseline's own keys.
    CHECK(ErrorOf(With(kind, "system.compute.gflops", 5.0)) == "");
    CHECK(ErrorOf(With(kind, "system.network.up_mbps", 5.0)) == "");
    CHECK(ErrorOf(With(kind, "metrics.eval_train", true)) == "");
    CHECK(ErrorOf(With(kind, "experiment.target_accuracy", 0.5)) == "");
    CHECK(ErrorOf(With(kind, "baseline.lr", 0.1)) == "");
    // The same config runs as the federated experiment and as its baseline: the
    // federated run's settings are checked as that run would check them.
    json shared = With(kind, "algorithm.name", "fedprox");
    shared["algorithm"]["mu"] = 1.0;
    shared["algorithm"]["local_epochs"] = 5;
    shared["experiment"] = {{"rounds", 50}, {"checkpoint_every", 5}};
    CHECK(ErrorOf(shared) == "");
    CHECK_THAT(ErrorOf(With(kind, "algorithm.mu", 1.0)),
               Catch::StartsWith("cfg.json: algorithm.mu: not read by algorithm.name=fedavg"));
  }
  CHECK_THAT(ErrorOf(With("centralized", "baseline.workers", 3)),
             Catch::StartsWith("cfg.json: baseline.workers: not read by baseline.kind=centralized"));
  CHECK_THAT(ErrorOf(With("centralized", "baseline.topology", "parameter_server")),
             Catch::StartsWith("cfg.json: baseline.topology: not read by baseline.kind=centralized"));
  CHECK(ErrorOf(With("data_parallel", "baseline.workers", 3)) == "");
  CHECK_THAT(ErrorOf(With("fedavg", "baseline.epochs", 3)),
             Catch::StartsWith("cfg.json: baseline.epochs: not read by algorithm.name=fedavg"));
}

TEST_CASE("config: every config in configs/ parses, and so does its resolved config", "[core][config]") {
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(std::string(FEDSIM_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".json") continue;
    INFO(e.path().string());
    ++n;
    const Config c = ParseConfig(fedsim::ReadConfigJson(e.path().string()), e.path().string());
    CHECK(fedsim::ToJson(ParseConfig(fedsim::ToJson(c), "resolved")) == fedsim::ToJson(c));
  }
  CHECK(n >= 20);
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
